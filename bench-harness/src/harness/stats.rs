//! Statistics over repetitions, per group of rows: median, p99, min, max, mean, and a
//! distribution-free confidence interval of the median.
//!
//! The interval is the order-statistic (binomial) interval: with the values sorted,
//! `[x(k), x(n+1-k)]` for the largest `k` whose two tails `P(B < k)`, `B ~ Binomial(n, 1/2)`,
//! leave at least 95% coverage; with fewer than 6 values no such `k` exists and the interval
//! is `[min, max]` (coverage `1 - 2^(1-n)`: 93.75% for 5 values), and its achieved level is
//! reported beside it (`ci_level`). It is a percentile interval: its ends are values that
//! were measured, so it never leaves the range of the data (never below zero for a time),
//! and it assumes no distribution (no normal, no Student's t).

use super::results::{PointKey, Row, Summary};
use std::collections::HashMap;

/// The median of sorted values (the mean of the two middle ones for an even count).
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

/// The nearest-rank percentile `p` (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `P(B <= k)` for `B ~ Binomial(n, 1/2)`.
fn binomial_half_cdf(n: usize, k: usize) -> f64 {
    let mut term = 0.5f64.powi(n as i32); // C(n, 0) / 2^n
    let mut sum = term;
    for i in 1..=k.min(n) {
        term *= (n + 1 - i) as f64 / i as f64;
        sum += term;
    }
    sum
}

/// The order-statistic interval of the median of `sorted` values: (low, high, achieved
/// confidence level). Equal ends for a single value.
pub fn median_interval(sorted: &[f64]) -> (f64, f64, f64) {
    let n = sorted.len();
    if n == 0 {
        return (f64::NAN, f64::NAN, 0.0);
    }
    // the largest k (1-based) with coverage 1 - 2 P(B <= k-1) >= 0.95
    let mut k = 1;
    while k < n.div_ceil(2) && 1.0 - 2.0 * binomial_half_cdf(n, k) >= 0.95 {
        k += 1;
    }
    let level = (1.0 - 2.0 * binomial_half_cdf(n, k - 1)).max(0.0);
    (
        sorted[k - 1],
        sorted[n - k],
        if n == 1 { 0.0 } else { level },
    )
}

/// Summarises rows over repetitions: one `Summary` per driver, workload, parameter,
/// variant, metric, profile and source, in the order the groups first appear.
pub fn summarise(rows: &[Row]) -> Vec<Summary> {
    let mut index: HashMap<PointKey, usize> = HashMap::new();
    let mut groups: Vec<(&Row, Vec<f64>)> = Vec::new();
    for r in rows {
        let k = r.point();
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
            let mean = v.iter().sum::<f64>() / n.max(1) as f64;
            let (ci_low, ci_high, ci_level) = median_interval(&v);
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
                p99: percentile(&v, 99.0),
                min: v.first().copied().unwrap_or(f64::NAN),
                max: v.last().copied().unwrap_or(f64::NAN),
                mean,
                ci_low,
                ci_high,
                ci_level,
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
            unit: "µs".into(),
            value,
        }
    }

    #[test]
    fn summary_of_three() {
        let s = summarise(&[row(0, 1.0), row(1, 3.0), row(2, 2.0)]);
        assert_eq!(s.len(), 1);
        let s = &s[0];
        assert_eq!(
            (s.n, s.median, s.min, s.max, s.mean, s.p99),
            (3, 2.0, 1.0, 3.0, 2.0, 3.0)
        );
        assert_eq!((s.ci_low, s.ci_high), (1.0, 3.0));
        assert_eq!(s.ci_level, 0.75);
    }

    #[test]
    fn single_value() {
        let s = summarise(&[row(0, 5.0)]);
        assert_eq!((s[0].ci_low, s[0].median, s[0].ci_high), (5.0, 5.0, 5.0));
        assert_eq!(median(&[1.0, 2.0, 3.0, 4.0]), 2.5);
    }

    #[test]
    fn order_statistic_interval_levels() {
        let v: Vec<f64> = (1..=10).map(f64::from).collect();
        // n = 10: [x(2), x(9)], coverage 1 - 2 * 11/1024
        let (lo, hi, level) = median_interval(&v);
        assert_eq!((lo, hi), (2.0, 9.0));
        assert!((level - (1.0 - 22.0 / 1024.0)).abs() < 1e-12);
        // n = 5: [min, max], 93.75%
        let (lo, hi, level) = median_interval(&v[..5]);
        assert_eq!((lo, hi, level), (1.0, 5.0, 0.9375));
        // n = 6: [min, max] reaches 96.9%
        let (lo, hi, level) = median_interval(&v[..6]);
        assert_eq!((lo, hi), (1.0, 6.0));
        assert!(level >= 0.95);
    }

    /// Times are never negative, however skewed: the interval of a time never goes below
    /// zero (it is made of measured values), and it holds the median.
    #[test]
    fn no_interval_below_zero_for_a_time() {
        let mut x: u64 = 7;
        for n in 1..=40u32 {
            let rows: Vec<Row> = (0..n)
                .map(|i| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    // mostly small, a few huge outliers (a skew that took the old mean ± t
                    // interval below zero)
                    let v = if x.is_multiple_of(7) {
                        900_000.0
                    } else {
                        (x % 1000) as f64
                    };
                    row(i, v)
                })
                .collect();
            for s in summarise(&rows) {
                assert!(s.ci_low >= 0.0, "n={n}: {s:?}");
                assert!(s.ci_low <= s.median && s.median <= s.ci_high, "{s:?}");
                assert!(s.min <= s.ci_low && s.ci_high <= s.max, "{s:?}");
            }
        }
    }
}
