//! `coherent report` through the binary: a real run turned into plots and pages, and its
//! errors.

use crate::common::{coherent, root, run_ok, run_ok_in, scratch, stderr, stdout, write_manifest};

/// The quickstart manifest made tiny: fewer examples, a narrower network, a few steps.
fn tiny_quickstart() -> String {
    let text = std::fs::read_to_string(root().join("experiments/quickstart.toml")).unwrap();
    let replace = |text: String, from: &str, to: &str| {
        assert!(
            text.contains(from),
            "quickstart.toml no longer has `{from}`"
        );
        text.replacen(from, to, 1)
    };
    let text = replace(
        text,
        "label_noise = 0.0",
        "label_noise = 0.0\ntrain_limit = 400\ntest_limit = 200",
    );
    let text = replace(text, "hidden = [256]", "hidden = [16]");
    let text = replace(text, "epochs = 10", "epochs = 1\nmax_steps = 8");
    let text = replace(text, "every_steps = 20", "every_steps = 4");
    replace(text, "sample = 1000", "sample = 50")
}

#[test]
fn a_run_of_the_quickstart_becomes_a_report() {
    let dir = scratch("report");
    let m = write_manifest(&dir, "quickstart.toml", &tiny_quickstart());
    let runs = dir.join("runs");
    run_ok(&["run", &m, "--out", &runs.to_string_lossy()]);

    // One experiment directory: its runs, and the report inside it.
    let experiment = runs.join("quickstart");
    let out = run_ok(&["report", &experiment.to_string_lossy()]);
    let report = experiment.join("report");
    let html = std::fs::read_to_string(report.join("report.html")).expect("report.html");
    assert!(html.contains("<svg") && html.contains("<td>000-label_noise=0.0</td>"));
    assert!(html.contains("<td>001-label_noise=1.0</td>"));
    for file in [
        "coherence.svg",
        "accuracy.svg",
        "layer-coherence.svg",
        "report.md",
    ] {
        assert!(report.join(file).exists(), "{file}");
        assert!(stdout(&out).contains(file), "the files written are listed");
    }
    let svg = std::fs::read_to_string(report.join("coherence.svg")).unwrap();
    assert!(svg.contains("label_noise=0.0") && svg.contains("label_noise=1.0"));

    // Two run directories, from elsewhere: the report goes to ./report.
    let (a, b) = (
        experiment.join("000-label_noise=0.0"),
        experiment.join("001-label_noise=1.0"),
    );
    run_ok_in(
        &dir,
        &[
            "report",
            &a.to_string_lossy(),
            &b.to_string_lossy(),
            "--log-scale",
        ],
    );
    assert!(dir.join("report/report.html").exists());
    assert!(std::fs::read_to_string(dir.join("report/coherence.svg"))
        .unwrap()
        .contains("m = 50"));
}

#[test]
fn directories_without_runs_and_torn_files_fail_with_exit_code_1() {
    let dir = scratch("report-errors");
    let empty = dir.join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let out = coherent(&["report", &empty.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("empty: no runs"), "{}", stderr(&out));

    let run = dir.join("run");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join("metrics.jsonl"),
        "{\"step\": 0, \"coherence\": 2}\n{\"step\": 4, \"co",
    )
    .unwrap();
    let out = coherent(&["report", &run.to_string_lossy()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("metrics.jsonl:2: invalid JSON line"),
        "{}",
        stderr(&out)
    );
}
