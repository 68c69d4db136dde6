//! `zk-chaos --check-history FILE`: re-checks a saved history without a cluster.

use std::process::Command;

fn run(lines: &[&str]) -> (bool, String, String) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("history.jsonl");
    std::fs::write(&path, lines.join("\n")).expect("write history");
    let out = Command::new(env!("CARGO_BIN_EXE_zk-chaos"))
        .arg("--check-history")
        .arg(&path)
        .output()
        .expect("run zk-chaos");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

const ADD: &str = r#"{"client":1,"op":{"SetAdd":{"key":7,"elem":1}},"invoke_us":0,"complete_us":10,"outcome":{"Ok":"Done"}}"#;
const SEEN: &str = r#"{"client":2,"op":{"SetRead":{"key":7}},"invoke_us":20,"complete_us":30,"outcome":{"Ok":{"Elems":[1]}}}"#;
const LOST: &str = r#"{"client":2,"op":{"SetRead":{"key":7}},"invoke_us":40,"complete_us":50,"outcome":{"Ok":{"Elems":[]}}}"#;

#[test]
fn a_linearizable_history_passes() {
    let (ok, stdout, stderr) = run(&[ADD, SEEN]);
    assert!(ok, "{stdout}{stderr}");
    assert!(stdout.contains(r#""anomalies":0"#), "{stdout}");
    assert!(stdout.contains(r#""ops_checked":2"#), "{stdout}");
}

#[test]
fn a_lost_element_is_reported_with_its_history() {
    let (ok, stdout, stderr) = run(&[ADD, SEEN, LOST]);
    assert!(!ok, "{stdout}{stderr}");
    assert!(stdout.contains(r#""anomalies":1"#), "{stdout}");
    assert!(stderr.contains("set 7 is not linearizable"), "{stderr}");
}

#[test]
fn a_malformed_line_is_refused_with_its_line_number() {
    let (ok, _, stderr) = run(&[ADD, "{not json"]);
    assert!(!ok);
    assert!(stderr.contains(":2: not a history entry"), "{stderr}");
}
