//! Renders synthetic run directories and checks the files of the report.

use coherent_report::{expand_dirs, render, ReportError, ReportOptions};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir =
        std::env::temp_dir().join(format!("coherent-report-it-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A run directory as the runner writes it, with every optional file and a few metrics of
/// every kind; `noise` and `seed` shape the curves.
fn write_run(experiment: &Path, index: usize, noise: &str, seed: u64) -> PathBuf {
    let name = format!("{index:03}-label_noise={noise}-seed={seed}");
    let dir = experiment.join(&name);
    std::fs::create_dir_all(&dir).unwrap();
    let run_json = serde_json::json!({
        "experiment": "synthetic", "run": name, "index": index,
        "params": {"dataset.label_noise": noise, "seed": seed.to_string()}, "seed": seed,
        "layers": [{"name": "fc1", "kind": "dense", "params": 10}, {"name": "fc2", "kind": "dense", "params": 5}],
        "metric_samples": {"coherence": 100},
    });
    std::fs::write(dir.join("run.json"), run_json.to_string()).unwrap();
    let eps: f64 = noise.parse().unwrap();
    let mut lines = String::new();
    for k in 0..=20 {
        let step = 10 * k;
        let t = k as f64 / 20.0;
        let c = 1.0 + (1.0 - eps) * 20.0 * (-3.0 * t).exp() + 0.1 * seed as f64;
        let mut line = serde_json::json!({
            "step": step, "epoch": t * 4.0,
            "train_loss": 2.3 * (1.0 - 0.8 * t), "train_acc": 0.1 + 0.8 * t,
            "test_loss": 2.3 * (1.0 - 0.6 * t), "test_acc": 0.1 + 0.7 * t * (1.0 - eps / 2.0),
            "coherence": c, "alpha_m": c / 100.0,
            "coherence/fc1": c * 1.1, "coherence/fc2": c * 0.8,
            "gradient_diversity": 1.0 / c, "elapsed_s": t,
        });
        if eps > 0.0 {
            let extra = serde_json::json!({
                "pristine_acc": 0.1 + 0.85 * t, "corrupt_acc": 0.1 + 0.5 * t * t,
                "f_pristine": 0.9 - 0.3 * t, "f_corrupt": 0.1 + 0.3 * t,
                "f_pristine_null": 0.5, "f_corrupt_null": 0.5,
            });
            line.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
        }
        writeln!(lines, "{line}").unwrap();
    }
    std::fs::write(dir.join("metrics.jsonl"), lines).unwrap();
    let summary = serde_json::json!({
        "run": name, "params": run_json["params"], "status": "completed", "steps": 200,
        "final": {"train_acc": 0.9, "test_acc": 0.8 - eps / 4.0, "coherence": 1.5,
                  "adjusted_overfit": 0.05 * eps},
        "peak": {"coherence": {"value": 21.0 - 20.0 * eps, "step": 0}},
        "corrupted_fraction": eps,
        "early_stopping": {"peak_test_step": 150, "corrupt_rise_step": if eps > 0.0 { serde_json::json!(90) } else { serde_json::Value::Null },
                           "coherence_at_peak_test": 1.6, "coherence_at_corrupt_rise": 2.0},
    });
    std::fs::write(dir.join("summary.json"), summary.to_string()).unwrap();
    let mut csv = String::from("index,label,corrupted,learned_step\n");
    for i in 0..200u64 {
        let corrupted = eps > 0.0 && i % 2 == 1;
        // Pristine examples are learned in an order that mostly agrees across seeds.
        let learned = if corrupted {
            (!(i * 7 + seed * 13).is_multiple_of(5)).then(|| 100 + (i * 31 + seed * 57) % 100)
        } else {
            Some((i + seed * (i % 3) * 5) % 120)
        };
        let learned = learned.map_or(String::new(), |s| s.to_string());
        writeln!(csv, "{i},{},{},{learned}", i % 10, u8::from(corrupted)).unwrap();
    }
    std::fs::write(dir.join("learning_times.csv"), csv).unwrap();
    dir
}

#[test]
fn two_seeds_render_every_plot_the_table_and_their_agreement() {
    let root = scratch("two-seeds");
    let experiment = root.join("synthetic");
    write_run(&experiment, 1, "0.5", 1);
    write_run(&experiment, 0, "0.5", 0);
    std::fs::create_dir_all(experiment.join("report")).unwrap(); // not a run: skipped
    let runs = expand_dirs(std::slice::from_ref(&experiment)).unwrap();
    let names: Vec<_> = runs
        .iter()
        .map(|r| r.file_name().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        ["000-label_noise=0.5-seed=0", "001-label_noise=0.5-seed=1"]
    );

    let out = root.join("report");
    let files = render(&runs, &out, &ReportOptions::default()).unwrap();
    let svgs: Vec<_> = files
        .svgs
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        svgs,
        [
            "coherence.svg",
            "accuracy.svg",
            "loss.svg",
            "layer-coherence.svg",
            "fractions.svg",
            "learning-times.svg",
            "other-metrics.svg"
        ]
    );
    for path in &files.svgs {
        let svg = std::fs::read_to_string(path).unwrap();
        assert!(
            svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"),
            "{}",
            path.display()
        );
        assert!(svg.contains("<polyline"), "{}", path.display());
    }
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    let coherence = read("coherence.svg");
    for text in [
        "label_noise=0.5 seed=0",
        "label_noise=0.5 seed=1",
        "(m = 100)",
        "step",
        "m-coherence",
    ] {
        assert!(coherence.contains(text), "coherence.svg lacks {text}");
    }
    // One polyline per run (plus axes and dashed reference segments): the two runs' colours.
    assert!(coherence.contains("stroke=\"#1F77B4\"") && coherence.contains("stroke=\"#FF7F0E\""));
    let layers = read("layer-coherence.svg");
    assert!(layers.contains("fc1") && layers.contains("fc2"));
    assert!(read("fractions.svg").contains("dashed: null world"));
    let learning = read("learning-times.svg");
    assert!(
        learning.contains("never")
            && learning.contains("pristine examples")
            && learning.contains("<rect")
    );
    assert!(read("other-metrics.svg").contains("gradient_diversity"));

    let html = read("report.html");
    assert!(html.contains("<svg"), "SVGs are inlined");
    assert!(
        !html.contains("src=\"http") && !html.contains("<link"),
        "no external resources"
    );
    for row in [
        "<tr><td>000-label_noise=0.5-seed=0</td><td>completed</td><td>11.00 (0)</td><td>1.50</td><td>0.900</td><td>0.675</td>",
        "<th>peak test (step)</th><th>corrupt rise</th>",
        "<td>- (150)</td><td>90</td>",
        "Learning-time agreement across seeds",
        "<td>synthetic: label_noise=0.5</td><td>0, 1</td>",
    ] {
        assert!(html.contains(row), "report.html lacks {row}");
    }
    let md = read("report.md");
    assert!(
        md.contains("![m-coherence](coherence.svg)")
            && md.contains("| 001-label_noise=0.5-seed=1 | completed |")
    );
}

#[test]
fn log_scale_draws_the_line_at_m() {
    let root = scratch("log-scale");
    let run = write_run(&root, 0, "0.0", 0);
    let out = root.join("out");
    render(
        std::slice::from_ref(&run),
        &out,
        &ReportOptions { log_scale: true },
    )
    .unwrap();
    let svg = std::fs::read_to_string(out.join("coherence.svg")).unwrap();
    assert!(svg.contains("m = 100") && svg.contains("log scale"));
    // Without pristine / corrupt data there is no fractions plot.
    assert!(!out.join("fractions.svg").exists());
}

#[test]
fn empty_directories_and_torn_lines_are_errors_naming_the_file() {
    let root = scratch("errors");
    let empty = root.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let e = expand_dirs(std::slice::from_ref(&empty)).unwrap_err();
    assert!(matches!(e, ReportError::NoRuns { .. }));
    assert!(e.to_string().contains("empty: no runs"), "{e}");

    let run = write_run(&root, 0, "0.0", 0);
    let path = run.join("metrics.jsonl");
    let mut text = std::fs::read_to_string(&path).unwrap();
    text.push_str("{\"step\": 210, \"train_a");
    std::fs::write(&path, text).unwrap();
    let e = render(&[run], &root.join("out"), &ReportOptions::default()).unwrap_err();
    let shown = e.to_string();
    assert!(
        shown.contains("metrics.jsonl:22: invalid JSON line"),
        "{shown}"
    );
}
