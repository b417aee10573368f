//! The engine benchmark runs and reports every case, in both forms.

use crate::common::{coherent, stderr, stdout};

#[test]
fn bench_reports_every_case_as_json_and_as_a_table() {
    let out = coherent(&["bench", "--json", "--reps", "1", "--min-ms", "1"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    let cases: Vec<&str> = report["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    assert_eq!(
        cases,
        ["plain", "coherence", "materialize", "loop", "loop_engine"]
    );
    for c in report["cases"].as_array().unwrap() {
        assert!(c["ms_per_step"].as_f64().unwrap() > 0.0);
        assert!(c["vs_plain"].as_f64().unwrap() > 0.0);
    }
    assert_eq!(report["cases"][0]["vs_plain"], 1.0);
    assert_eq!(report["sample"]["examples"], 10_000);
    assert!(report["sample"]["coherence"].as_f64().unwrap() > 1.0);

    let table = coherent(&["bench", "--reps", "1", "--min-ms", "1"]);
    assert!(table.status.success());
    assert!(stdout(&table).contains("vs plain") && stdout(&table).contains("10000-example sample"));
}

#[test]
fn bench_rejects_zero_repetitions() {
    let out = coherent(&["bench", "--reps", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
