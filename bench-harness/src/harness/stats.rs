//! Statistics over repetitions: median, min, max, mean and the 95% confidence interval of
//! the mean (Student's t), per group of rows.

use super::results::{Row, Summary};
use std::collections::HashMap;

/// Student's t, two-sided 95%, for 1..=30 degrees of freedom.
const T95: [f64; 30] = [
    12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
    2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
    2.052, 2.048, 2.045, 2.042,
];

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub fn t95(df: usize) -> f64 {
    match df {
        0 => f64::NAN,
        1..=30 => T95[df - 1],
        31..=40 => 2.021,
        41..=60 => 2.000,
        61..=120 => 1.980,
        _ => 1.960,
    }
}

/// The median of some values (the mean of the two middle ones for an even count).
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n == 0 {
        return f64::NAN;
    }
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

type Key = (
    String,
    String,
    String,
    u64,
    String,
    String,
    String,
    super::results::Source,
    String,
);

fn key(r: &Row) -> Key {
    (
        r.driver.clone(),
        r.workload.clone(),
        r.parameter.clone(),
        r.x.to_bits(),
        r.variant.clone(),
        r.metric.clone(),
        r.profile.clone(),
        r.source,
        r.experiment.clone(),
    )
}

/// Summarises rows over repetitions: one `Summary` per driver, workload, parameter,
/// variant, metric, profile and source, in the order the groups first appear.
pub fn summarise(rows: &[Row]) -> Vec<Summary> {
    let mut index: HashMap<Key, usize> = HashMap::new();
    let mut groups: Vec<(&Row, Vec<f64>)> = Vec::new();
    for r in rows {
        let k = key(r);
        match index.get(&k) {
            Some(&i) => groups[i].1.push(r.value),
            None => {
                index.insert(k, groups.len());
                groups.push((r, vec![r.value]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(r, mut v)| {
            v.sort_by(f64::total_cmp);
            let n = v.len();
            let min = v.first().copied().unwrap_or(f64::NAN);
            let max = v.last().copied().unwrap_or(f64::NAN);
            let (mean, half) = if n == 0 {
                (f64::NAN, 0.0)
            } else if min == max {
                (min, 0.0)
            } else {
                let mean = v.iter().sum::<f64>() / n as f64;
                let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
                (mean, t95(n - 1) * (var / n as f64).sqrt())
            };
            Summary {
                experiment: r.experiment.clone(),
                driver: r.driver.clone(),
                workload: r.workload.clone(),
                parameter: r.parameter.clone(),
                x: r.x,
                variant: r.variant.clone(),
                metric: r.metric.clone(),
                profile: r.profile.clone(),
                source: r.source,
                unit: r.unit.clone(),
                n,
                median: median(&v),
                min,
                max,
                mean,
                ci95_low: mean - half,
                ci95_high: mean + half,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::results::Source;

    fn row(rep: u32, value: f64) -> Row {
        Row {
            experiment: "e".into(),
            driver: "vfs".into(),
            workload: "copy-up".into(),
            parameter: "4KiB".into(),
            x: 4096.0,
            variant: String::new(),
            repetition: rep,
            metric: "measured_us".into(),
            profile: String::new(),
            source: Source::Measured,
            unit: "us".into(),
            value,
        }
    }

    #[test]
    fn summary_of_three() {
        let s = summarise(&[row(0, 1.0), row(1, 3.0), row(2, 2.0)]);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(
            (s.n, s.median, s.min, s.max, s.mean),
            (3, 2.0, 1.0, 3.0, 2.0)
        );
        // sd = 1, se = 1/sqrt(3), t(2) = 4.303
        let half = 4.303 / 3f64.sqrt();
        assert!((s.ci95_high - (2.0 + half)).abs() < 1e-9);
        assert!((s.ci95_low - (2.0 - half)).abs() < 1e-9);
    }

    #[test]
    fn single_value() {
        let s = summarise(&[row(0, 5.0)]);
        assert_eq!((s[0].ci95_low, s[0].mean, s[0].ci95_high), (5.0, 5.0, 5.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }
}
