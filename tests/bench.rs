//! The engine benchmark runs and reports every case of both networks, in both forms.

use crate::common::{coherent, run_ok, stdout};

#[test]
fn bench_reports_every_case_as_json_and_as_a_table() {
    let out = run_ok(&[
        "bench", "--json", "--reps", "1", "--min-ms", "1", "--batch", "32",
    ]);
    let report: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("JSON report");
    let networks = report["networks"].as_array().unwrap();
    assert_eq!(networks.len(), 2);
    let expected: [&[&str]; 2] = [
        &["plain", "coherence", "materialize", "loop", "loop_engine"],
        &["plain", "coherence", "materialize", "loop_engine"],
    ];
    for (n, want) in networks.iter().zip(expected) {
        let cases: Vec<&str> = n["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["case"].as_str().unwrap())
            .collect();
        assert_eq!(cases, want, "{}", n["network"]);
        for c in n["cases"].as_array().unwrap() {
            assert!(c["ms_per_step"].as_f64().unwrap() > 0.0);
            assert!(c["vs_plain"].as_f64().unwrap() > 0.0);
        }
        assert_eq!(n["cases"][0]["vs_plain"], 1.0);
        assert_eq!(n["sample"]["examples"], 10_000);
        assert!(n["sample"]["coherence"].as_f64().unwrap() > 1.0);
    }

    let aggregators: Vec<&str> = report["aggregators"]["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["case"].as_str().unwrap())
        .collect();
    assert_eq!(
        aggregators,
        [
            "mean",
            "winsorized",
            "coordinate_median",
            "trimmed_mean",
            "median_of_means",
            "rm3",
            "clip"
        ]
    );

    let table = coherent(&["bench", "--reps", "1", "--min-ms", "1", "--network", "mlp"]);
    assert!(table.status.success());
    let text = stdout(&table);
    assert!(
        text.contains("vs plain") && text.contains("10000-example sample") && !text.contains("cnn")
    );
}

#[test]
fn bench_rejects_zero_repetitions() {
    let out = coherent(&["bench", "--reps", "0"]);
    assert_eq!(out.status.code(), Some(2));
}
