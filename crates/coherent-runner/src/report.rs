//! The comparison table printed after a manifest's runs.

use serde_json::Value;

fn number(v: &Value, path: &[&str]) -> Option<f64> {
    path.iter()
        .try_fold(v, |v, k| v.get(k))
        .and_then(Value::as_f64)
}

fn cell(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".into(), |v| format!("{v:.digits$}"))
}

/// One line per run: status, peak and final m-coherence, final train and test accuracy; under
/// label noise the pristine and corrupt accuracy, the adjusted overfit and the early-stopping
/// steps (peak test accuracy, rise of the corrupt accuracy); with `[easy_hard]` the held-out
/// accuracy of the easy and the hard model.
pub fn comparison_table(summaries: &[Value]) -> String {
    let noisy = summaries
        .iter()
        .any(|s| number(s, &["final", "corrupt_acc"]).is_some());
    let mut header = vec![
        "run",
        "status",
        "peak coherence (step)",
        "final coherence",
        "train acc",
        "test acc",
    ];
    let easy_hard = summaries.iter().any(|s| s.get("easy_hard").is_some());
    if noisy {
        header.extend([
            "pristine acc",
            "corrupt acc",
            "adj. overfit",
            "peak test (step)",
            "corrupt rise",
        ]);
    }
    if easy_hard {
        header.extend(["easy held-out acc", "hard held-out acc"]);
    }
    let rows: Vec<Vec<String>> = summaries
        .iter()
        .map(|s| {
            let peak = match (
                number(s, &["peak", "coherence", "value"]),
                number(s, &["peak", "coherence", "step"]),
            ) {
                (Some(v), Some(step)) => format!("{v:.2} ({step})"),
                _ => "-".into(),
            };
            let mut row = vec![
                s["run"].as_str().unwrap_or("?").to_string(),
                s["status"].as_str().unwrap_or("?").to_string(),
                peak,
                cell(number(s, &["final", "coherence"]), 2),
                cell(number(s, &["final", "train_acc"]), 3),
                cell(number(s, &["final", "test_acc"]), 3),
            ];
            if noisy {
                for key in ["pristine_acc", "corrupt_acc", "adjusted_overfit"] {
                    row.push(cell(number(s, &["final", key]), 3));
                }
                let e = |k: &str| number(s, &["early_stopping", k]);
                row.push(match (e("peak_test_acc"), e("peak_test_step")) {
                    (Some(v), Some(step)) => format!("{v:.3} ({step})"),
                    _ => "-".into(),
                });
                row.push(cell(e("corrupt_rise_step"), 0));
            }
            if easy_hard {
                for part in ["easy", "hard"] {
                    row.push(cell(number(s, &["easy_hard", part, "held_out_acc"]), 3));
                }
            }
            row
        })
        .collect();
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].len())
                .chain([header[c].len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let line = |cells: &[String]| {
        let parts: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        parts.join("  ").trim_end().to_string() + "\n"
    };
    let mut out = line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    out.push_str(&line(
        &widths.iter().map(|w| "-".repeat(*w)).collect::<Vec<_>>(),
    ));
    for r in &rows {
        out.push_str(&line(r));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn table_lists_peak_final_and_accuracies() {
        let s = json!({"run": "000-seed=0", "status": "completed",
            "peak": {"coherence": {"value": 12.345, "step": 40}},
            "final": {"coherence": 3.0, "train_acc": 0.9, "test_acc": 0.85}});
        let t = comparison_table(&[s]);
        assert!(
            t.contains("12.35 (40)") && t.contains("3.00") && t.contains("0.850"),
            "{t}"
        );
        assert_eq!(t.lines().count(), 3);
        assert!(!t.contains("corrupt acc"));
    }

    #[test]
    fn noisy_runs_add_pristine_corrupt_and_adjusted_overfit() {
        let s = json!({"run": "000", "status": "completed",
            "final": {"train_acc": 0.9, "test_acc": 0.8, "pristine_acc": 0.95, "corrupt_acc": 0.4, "adjusted_overfit": 0.05}});
        let t = comparison_table(&[s]);
        assert!(
            t.contains("corrupt acc") && t.contains("0.400") && t.contains("0.050"),
            "{t}"
        );
        let s = json!({"run": "000", "status": "completed",
            "final": {"corrupt_acc": 0.4},
            "early_stopping": {"peak_test_acc": 0.91, "peak_test_step": 400, "corrupt_rise_step": 640},
            "easy_hard": {"easy": {"held_out_acc": 0.98}, "hard": {"held_out_acc": 0.7}}});
        let t = comparison_table(&[s]);
        assert!(t.contains("0.910 (400)") && t.contains("640"), "{t}");
        assert!(
            t.contains("easy held-out acc") && t.contains("0.980") && t.contains("0.700"),
            "{t}"
        );
    }
}
