//! SVG plots with `plotters` (SVG backend only: text is written as SVG `<text>`, so no
//! system fonts are needed): per topology and inflight, throughput vs clients and the
//! latency CDF at one client count, a panel per workload, a line per column.

use std::path::Path;

use plotters::prelude::*;

use super::cdf;
use super::input::{workload_rank, Column, Results};
use super::tables::topologies;

fn color(c: Column) -> RGBColor {
    match c {
        Column::Native => RGBColor(31, 119, 180),
        Column::ZkProto => RGBColor(44, 160, 44),
        Column::Apache => RGBColor(214, 39, 40),
    }
}

fn err(e: impl std::fmt::Debug) -> String {
    format!("plot: {e:?}")
}

/// Writes every plot into `dir`; returns the file names.
pub fn write_all(r: &Results, dir: &Path) -> Result<Vec<String>, String> {
    let mut files = Vec::new();
    for topology in topologies(r) {
        for inflight in r.distinct(|l| l.inflight) {
            let mut workloads: Vec<String> = r
                .loads
                .iter()
                .filter(|l| l.topology == topology && l.inflight == inflight && !l.failed)
                .map(|l| l.workload.clone())
                .collect();
            workloads.sort_by_key(|w| (workload_rank(w), w.clone()));
            workloads.dedup();
            if workloads.is_empty() {
                continue;
            }
            let name = format!("throughput-{topology}-inflight{inflight}.svg");
            throughput(r, &topology, inflight, &workloads, &dir.join(&name))?;
            files.push(name);
            let clients = r.distinct(|l| l.clients);
            let at = if clients.contains(&16) {
                16
            } else {
                clients.last().copied().unwrap_or(1)
            };
            let name = format!("latency-cdf-{topology}-inflight{inflight}-clients{at}.svg");
            latency_cdf(r, &topology, inflight, at, &workloads, &dir.join(&name))?;
            files.push(name);
        }
    }
    Ok(files)
}

/// The (rows, columns) of a grid of `n` panels.
fn grid(n: usize) -> (usize, usize) {
    let cols = n.clamp(1, 3);
    (n.div_ceil(cols), cols)
}

fn throughput(
    r: &Results,
    topology: &str,
    inflight: u64,
    workloads: &[String],
    path: &Path,
) -> Result<(), String> {
    let (rows, cols) = grid(workloads.len());
    let root = SVGBackend::new(path, (420 * cols as u32, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(
            &format!("Throughput vs clients, {topology}, inflight {inflight}"),
            ("sans-serif", 20),
        )
        .map_err(err)?;
    for (area, w) in root.split_evenly((rows, cols)).iter().zip(workloads) {
        let series: Vec<(Column, Vec<(f64, f64)>)> = Column::ALL
            .iter()
            .map(|&col| {
                let mut pts: Vec<(f64, f64)> = r
                    .loads
                    .iter()
                    .filter(|l| {
                        l.topology == topology
                            && l.inflight == inflight
                            && &l.workload == w
                            && l.column == col
                            && !l.failed
                    })
                    .map(|l| (l.clients as f64, l.ops_per_sec))
                    .collect();
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                pts.dedup_by(|a, b| a.0 == b.0);
                (col, pts)
            })
            .filter(|(_, p)| !p.is_empty())
            .collect();
        let xmax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.0))
            .fold(1.0f64, f64::max)
            .max(2.0);
        let ymax = series
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(1.0f64, f64::max)
            * 1.1;
        let mut chart = ChartBuilder::on(area)
            .caption(w, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(55)
            .build_cartesian_2d((1f64..xmax).log_scale(), 0f64..ymax)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("clients")
            .y_desc("ops/s")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| ops_label(*y))
            .draw()
            .map_err(err)?;
        for (col, pts) in series {
            let c = color(col);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)).point_size(3))
                .map_err(err)?
                .label(col.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

fn latency_cdf(
    r: &Results,
    topology: &str,
    inflight: u64,
    clients: u64,
    workloads: &[String],
    path: &Path,
) -> Result<(), String> {
    let (rows, cols) = grid(workloads.len());
    let root = SVGBackend::new(path, (420 * cols as u32, 320 * rows as u32)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let root = root
        .titled(
            &format!("Latency CDF, {clients} clients, {topology}, inflight {inflight}"),
            ("sans-serif", 20),
        )
        .map_err(err)?;
    for (area, w) in root.split_evenly((rows, cols)).iter().zip(workloads) {
        let curves: Vec<(Column, Vec<(f64, f64)>)> = Column::ALL
            .iter()
            .filter_map(|&col| {
                r.load(topology, col, w, clients, inflight)
                    .map(|l| (col, cdf::curve(&l.cdf)))
            })
            .filter(|(_, c)| !c.is_empty())
            .collect();
        let all: Vec<Vec<(f64, f64)>> = curves.iter().map(|(_, c)| c.clone()).collect();
        let (lo, hi) = cdf::decades(&all);
        let mut chart = ChartBuilder::on(area)
            .caption(w, ("sans-serif", 16))
            .margin(8)
            .x_label_area_size(30)
            .y_label_area_size(45)
            .build_cartesian_2d((lo..hi).log_scale(), 0f64..100f64)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("latency µs")
            .y_desc("percentile")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(err)?;
        for (col, pts) in curves {
            let c = color(col);
            chart
                .draw_series(LineSeries::new(pts, c.stroke_width(2)))
                .map_err(err)?
                .label(col.label())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], c.stroke_width(2))
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(err)?;
    }
    root.present().map_err(err)
}

/// An ops/s axis label: thousands as `12k` (`1.5k` below 10k), plain below 1000.
pub(super) fn ops_label(y: f64) -> String {
    if y >= 10_000.0 {
        format!("{:.0}k", y / 1000.0)
    } else if y >= 1000.0 {
        format!("{:.1}k", y / 1000.0)
    } else {
        format!("{y:.0}")
    }
}
