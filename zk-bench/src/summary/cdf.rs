//! CDF math for the latency plots: the stored `(percentile, µs)` pairs of a run turned
//! into a drawable curve, and the axis range over several curves.

/// The points of a latency CDF, x = latency in µs (at least 1, for a log axis), y =
/// percentile: sorted by percentile, latencies made non-decreasing (a histogram's
/// quantiles are, but rounded input may not be), non-finite pairs dropped.
pub fn curve(cdf: &[(f64, f64)]) -> Vec<(f64, f64)> {
    let mut pts: Vec<(f64, f64)> = cdf
        .iter()
        .filter(|(p, us)| p.is_finite() && us.is_finite() && (0.0..=100.0).contains(p))
        .map(|&(p, us)| (us.max(1.0), p))
        .collect();
    pts.sort_by(|a, b| a.1.total_cmp(&b.1));
    let mut floor = 1.0f64;
    for pt in &mut pts {
        floor = floor.max(pt.0);
        pt.0 = floor;
    }
    pts
}

/// The latency span (µs) covered by `curves`, widened to whole decades for a log axis;
/// `(1, 10)` when there is nothing to draw.
pub fn decades(curves: &[Vec<(f64, f64)>]) -> (f64, f64) {
    let xs = curves.iter().flatten().map(|p| p.0);
    let lo = xs.clone().fold(f64::INFINITY, f64::min);
    let hi = xs.fold(0.0f64, f64::max);
    if !lo.is_finite() || hi <= 0.0 {
        return (1.0, 10.0);
    }
    let lo = 10f64.powf(lo.max(1.0).log10().floor());
    let hi = 10f64.powf(hi.max(1.0).log10().ceil()).max(lo * 10.0);
    (lo, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn curve_sorts_clamps_and_is_monotone() {
        let raw = [
            (50.0, 200.0),
            (0.0, 0.0),
            (99.0, 150.0),
            (100.0, 900.0),
            (f64::NAN, 5.0),
        ];
        let c = curve(&raw);
        assert_eq!(
            c,
            vec![(1.0, 0.0), (200.0, 50.0), (200.0, 99.0), (900.0, 100.0)]
        );
    }

    #[test]
    fn decades_cover_all_curves() {
        let a = curve(&[(0.0, 120.0), (100.0, 950.0)]);
        let b = curve(&[(0.0, 80.0), (100.0, 15_000.0)]);
        assert_eq!(decades(&[a, b]), (10.0, 100_000.0));
        assert_eq!(decades(&[]), (1.0, 10.0));
        let flat = curve(&[(0.0, 100.0), (100.0, 100.0)]);
        assert_eq!(decades(&[flat]), (100.0, 1000.0));
    }
}
