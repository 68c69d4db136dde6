//! The report from a small fixture run (`tests/fixtures/report.jsonl`): parsing, the
//! targets' verdicts, the generated section spliced between hand-written ones, plots.

use super::input::Column;
use super::targets::checks;
use super::*;

const FIXTURE: &str = include_str!("../../tests/fixtures/report.jsonl");

#[test]
fn parses_every_kind_of_line() {
    let r = Results::parse(FIXTURE);
    assert_eq!(r.loads.len(), 91);
    assert_eq!(r.loads.iter().filter(|l| l.failed).count(), 1);
    assert_eq!(r.measures.len(), 16);
    assert_eq!(r.failovers.len(), 2);
    let l = r
        .load("ensemble", Column::ZkProto, "get", 64, 1)
        .expect("a zk-proto get run");
    assert_eq!(l.ops_per_sec, 1000.0 * 64.0 * 0.8 * 3.0);
    assert_eq!(l.cdf.len(), 5);
    assert!(
        r.load("standalone", Column::Native, "mixed", 16, 16)
            .is_none(),
        "failed runs have no figures"
    );
}

fn verdict(target: &str, case: &str) -> (Option<bool>, Option<bool>) {
    let r = Results::parse(FIXTURE);
    let c = checks(&r)
        .into_iter()
        .find(|c| c.target.starts_with(target) && c.case.starts_with(case))
        .unwrap_or_else(|| panic!("no check {target} / {case}"));
    (
        c.rule.met(c.native, c.reference),
        c.rule.met(c.zk_proto, c.reference),
    )
}

#[test]
fn targets_are_judged_as_ratios_against_apache() {
    // Native is exactly 2x Apache's throughput (met), zk-proto 1.6x (not met).
    assert_eq!(
        verdict("write throughput", "create, 16 clients"),
        (Some(true), Some(false))
    );
    assert_eq!(
        verdict("read throughput", "get, 64 clients, inflight 1, ensemble"),
        (Some(true), Some(false))
    );
    // p99: native half of Apache's (met), zk-proto 0.625 (not met).
    assert_eq!(
        verdict("set p99", "set, 16 clients"),
        (Some(true), Some(false))
    );
    assert_eq!(
        verdict("watch notification p99", "watch, 64 clients"),
        (Some(true), Some(false))
    );
    assert_eq!(verdict("RSS", ""), (Some(true), None));
    assert_eq!(verdict("leader failover", ""), (Some(false), None));
    assert_eq!(verdict("cold start", ""), (Some(true), None));
    // 900 µs against a floor of 400 + 30 µs: more than 1.5x.
    assert_eq!(verdict("durable", ""), (Some(false), Some(false)));
}

#[test]
fn report_keeps_hand_written_sections_and_writes_plots() {
    let dir = tempfile::tempdir().expect("tempdir");
    let input = dir.path().join("results.jsonl");
    std::fs::write(&input, FIXTURE).expect("write fixture");
    let out = dir.path().join("docs");
    std::fs::create_dir_all(&out).expect("docs dir");
    let hand = "# Benchmarks\n\nIntro.\n\n## History\n\nOld figures.\n";
    std::fs::write(out.join("benchmarks.md"), hand).expect("write doc");
    let args = ReportArgs {
        input,
        out: out.clone(),
        commands: vec!["bench/full.sh".into()],
        title: "Fixture run".into(),
    };
    for _ in 0..2 {
        let wrote = run(&args).expect("report");
        assert!(
            wrote.iter().any(|w| w.ends_with("benchmarks.md")),
            "{wrote:?}"
        );
    }
    let doc = std::fs::read_to_string(out.join("benchmarks.md")).expect("doc");
    assert_eq!(
        doc.matches(BEGIN).count(),
        1,
        "regenerating replaces the section"
    );
    assert!(doc.starts_with("# Benchmarks\n\nIntro.\n"), "{doc}");
    assert!(doc.contains("## History\n\nOld figures."), "{doc}");
    assert!(
        doc.find(END) < doc.find("## History"),
        "generated part goes before the history"
    );
    for needle in [
        "## Fixture run",
        "### Load: standalone, inflight 1",
        "### Load: ensemble, inflight 1",
        "| create | 16 | 16000 | 12800 | 8000 | 2.00x | 1.60x |",
        "(a run failed)",
        "### Server lifecycle, tree of 20000 znodes",
        "| snapshot of the tree (ms) | 50.0 | 150.0 | 3.00x |",
        "| zk-server | 20 | 150.0 | 900.0 |",
        "loopback round trip p50 30 µs",
        "```sh\nbench/full.sh\n```",
        "![throughput-ensemble-inflight1.svg](plots/throughput-ensemble-inflight1.svg)",
    ] {
        assert!(doc.contains(needle), "missing {needle:?} in\n{doc}");
    }
    for plot in [
        "throughput-standalone-inflight1.svg",
        "latency-cdf-standalone-inflight1-clients16.svg",
        "throughput-ensemble-inflight1.svg",
        "latency-cdf-ensemble-inflight1-clients16.svg",
    ] {
        let svg = std::fs::read_to_string(out.join("plots").join(plot)).expect(plot);
        assert!(svg.starts_with("<svg"), "{plot}");
        assert!(
            svg.contains("ours native") && svg.contains("Apache ZK"),
            "{plot}: legend"
        );
        assert!(svg.contains("<polyline"), "{plot}: lines");
    }
}

#[test]
fn splice_replaces_only_between_markers() {
    let doc = format!("# B\n\n{BEGIN}\nold\n{END}\n\n## Kept\n");
    let once = splice(&doc, "new\n");
    assert_eq!(once, format!("# B\n\n{BEGIN}\nnew\n{END}\n\n## Kept\n"));
    assert_eq!(splice(&once, "new\n"), once);
    let no_markers = splice("# B\n", "s");
    assert!(
        no_markers.ends_with(&format!("{BEGIN}\ns\n{END}\n")),
        "{no_markers}"
    );
}

#[test]
fn axis_labels_keep_small_rates_apart() {
    assert_eq!(super::plots::ops_label(250.0), "250");
    assert_eq!(super::plots::ops_label(1500.0), "1.5k");
    assert_eq!(super::plots::ops_label(1800.0), "1.8k");
    assert_eq!(super::plots::ops_label(45_000.0), "45k");
}
