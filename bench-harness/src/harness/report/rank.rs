//! Comparisons that respect uncertainty: drivers are ranked only where their intervals
//! separate them, identical values are ties, and a slope is a finding only when its interval
//! excludes zero.
//!
//! A value's interval is its point's `[low, high]` (the order-statistic interval of the
//! median over repetitions, [`crate::harness::stats`]; a single point for deterministic
//! values). Two values are **not distinguishable** when their intervals overlap (or they are
//! equal to 1 part in 10⁹). Tiers are the connected groups of that relation, ordered: no
//! value of one tier overlaps a value of another, so ordering tiers never ranks two values
//! whose intervals overlap.

use super::Point;

/// Relative tolerance under which two values are the same value.
const SAME: f64 = 1e-9;

/// The interval of a point, widened to hold its median.
fn interval(p: &Point) -> (f64, f64) {
    let lo = if p.low.is_finite() {
        p.low.min(p.y)
    } else {
        p.y
    };
    let hi = if p.high.is_finite() {
        p.high.max(p.y)
    } else {
        p.y
    };
    (lo, hi)
}

/// True when two values cannot be told apart: their intervals overlap, or they are equal
/// within `SAME`.
pub fn indistinguishable(a: &Point, b: &Point) -> bool {
    let (al, ah) = interval(a);
    let (bl, bh) = interval(b);
    let tol = SAME * al.abs().max(ah.abs()).max(bl.abs()).max(bh.abs());
    al <= bh + tol && bl <= ah + tol
}

/// One tier: labels that cannot be told apart, by median.
#[derive(Debug, Clone, PartialEq)]
pub struct Tier<'a> {
    /// The members, best median first.
    pub members: Vec<(&'a str, Point)>,
}

impl Tier<'_> {
    /// `overlay2 = aufs = overlay2+metacopy`.
    pub fn names(&self) -> String {
        self.members
            .iter()
            .map(|m| m.0)
            .collect::<Vec<_>>()
            .join(" = ")
    }

    /// The tier's best member's value.
    pub fn best(&self) -> Option<Point> {
        self.members.first().map(|m| m.1)
    }
}

/// Orders labelled values into tiers, best first (smallest, or largest with
/// `higher_is_better`). Values that are not finite are left out.
pub fn tiers<'a>(items: &[(&'a str, Point)], higher_is_better: bool) -> Vec<Tier<'a>> {
    let mut items: Vec<(&'a str, Point)> = items
        .iter()
        .copied()
        .filter(|(_, p)| p.y.is_finite())
        .collect();
    // by the interval's low end: a component grows while the next interval starts before
    // the component's highest end
    items.sort_by(|a, b| interval(&a.1).0.total_cmp(&interval(&b.1).0));
    let mut out: Vec<(f64, Vec<(&'a str, Point)>)> = Vec::new();
    for (label, p) in items {
        let (lo, hi) = interval(&p);
        match out.last_mut() {
            Some((reach, members)) if lo <= *reach + SAME * reach.abs().max(lo.abs()) => {
                *reach = reach.max(hi);
                members.push((label, p));
            }
            _ => out.push((hi, vec![(label, p)])),
        }
    }
    let mut tiers: Vec<Tier<'a>> = out
        .into_iter()
        .map(|(_, mut members)| {
            members.sort_by(|a, b| a.1.y.total_cmp(&b.1.y));
            if higher_is_better {
                members.reverse();
            }
            Tier { members }
        })
        .collect();
    if higher_is_better {
        tiers.reverse();
    }
    tiers
}

/// A least-squares slope with its interval: the slope of the medians, and the smallest and
/// largest slopes any values within the points' intervals give (interval arithmetic on
/// the least-squares weights, so the range is exact for the intervals, not an
/// approximation). `None` with fewer than two distinct x.
pub fn slope(points: &[Point], x_div: f64) -> Option<(f64, f64, f64)> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let xs: Vec<f64> = points.iter().map(|p| p.x / x_div).collect();
    let mx = xs.iter().sum::<f64>() / n;
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx <= 0.0 || !sxx.is_finite() {
        return None;
    }
    let (mut b, mut lo, mut hi) = (0.0, 0.0, 0.0);
    for (x, p) in xs.iter().zip(points) {
        let w = (x - mx) / sxx;
        let (pl, ph) = interval(p);
        b += w * p.y;
        lo += w * if w >= 0.0 { pl } else { ph };
        hi += w * if w >= 0.0 { ph } else { pl };
    }
    Some((b, lo, hi))
}

/// True when a slope's interval holds zero: no growth that the repetitions can show.
pub fn flat(slope: (f64, f64, f64)) -> bool {
    slope.1 <= 0.0 && slope.2 >= 0.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(y: f64, low: f64, high: f64) -> Point {
        Point {
            x: 0.0,
            y,
            low,
            high,
            n: 5,
        }
    }

    #[test]
    fn overlapping_intervals_are_one_tier() {
        let items = [
            ("a", p(10.0, 8.0, 12.0)),
            ("b", p(11.0, 9.0, 20.0)),
            ("c", p(30.0, 25.0, 35.0)),
        ];
        let t = tiers(&items, false);
        assert_eq!(t.len(), 2);
        assert_eq!(t[0].names(), "a = b");
        assert_eq!(t[1].names(), "c");
        let t = tiers(&items, true);
        assert_eq!(t[0].names(), "c");
        assert_eq!(t[1].names(), "b = a");
    }

    /// No ranking between overlapping intervals: whatever the values, two members of
    /// different tiers never overlap.
    #[test]
    fn no_ranking_between_overlapping_intervals() {
        let mut x: u64 = 11;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % 1000) as f64
        };
        for _ in 0..300 {
            let items: Vec<(&str, Point)> = ["a", "b", "c", "d", "e", "f"]
                .iter()
                .map(|l| {
                    let y = next();
                    let spread = next() / 10.0;
                    (*l, p(y, (y - spread).max(0.0), y + spread / 2.0))
                })
                .collect();
            let t = tiers(&items, false);
            assert_eq!(t.iter().map(|t| t.members.len()).sum::<usize>(), 6);
            for (i, a) in t.iter().enumerate() {
                for b in &t[i + 1..] {
                    for ma in &a.members {
                        for mb in &b.members {
                            assert!(!indistinguishable(&ma.1, &mb.1), "{t:?}");
                            assert!(ma.1.y < mb.1.y, "tiers are ordered: {t:?}");
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn equal_exact_values_tie() {
        let items = [("x", p(5.0, 5.0, 5.0)), ("y", p(5.0, 5.0, 5.0))];
        assert_eq!(tiers(&items, false).len(), 1);
        let items = [("x", p(5.0, 5.0, 5.0)), ("y", p(6.0, 6.0, 6.0))];
        assert_eq!(tiers(&items, false).len(), 2);
    }

    #[test]
    fn slope_interval_and_flatness() {
        let pts = |ys: &[(f64, f64, f64)]| -> Vec<Point> {
            ys.iter()
                .enumerate()
                .map(|(i, &(y, lo, hi))| Point {
                    x: i as f64,
                    y,
                    low: lo,
                    high: hi,
                    n: 5,
                })
                .collect()
        };
        let exact = pts(&[(1.0, 1.0, 1.0), (3.0, 3.0, 3.0), (5.0, 5.0, 5.0)]);
        assert_eq!(slope(&exact, 1.0), Some((2.0, 2.0, 2.0)));
        let noisy = pts(&[(1.0, 0.0, 4.0), (1.2, 0.0, 4.0), (1.1, 0.0, 4.0)]);
        let s = slope(&noisy, 1.0).unwrap_or_default();
        assert!(flat(s), "{s:?}");
        assert!(!flat(slope(&exact, 1.0).unwrap_or_default()));
    }
}
