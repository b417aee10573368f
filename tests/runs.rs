//! End-to-end runs through the binary: run directories, sweeps, skipping, divergence.

use crate::common::{
    coherent, metrics, run_ok, scratch, scratch_manifest, stderr, stdout, summary, write_manifest,
};

const SMOKE: &str = r#"
name = "smoke"
[dataset]
plugin = "mnist"
train_limit = 400
test_limit = 200
label_noise = 0.5

[model]
plugin = "mlp"
hidden = [32]

[training]
lr = 0.1
batch_size = 50
epochs = 2

[[metrics]]
plugin = "coherence"
every_steps = 4
sample = 100

[sweep]
seeds = [0, 1]
"#;

#[test]
fn a_sweep_writes_one_complete_directory_per_run() {
    let (dir, m) = scratch_manifest("smoke", "smoke.toml", SMOKE);
    let out_dir = dir.join("runs");
    let out = run_ok(&["run", &m, "--out", &out_dir.to_string_lossy()]);
    for run in ["000-seed=0", "001-seed=1"] {
        let rd = out_dir.join("smoke").join(run);
        for f in [
            "manifest.toml",
            "run.json",
            "metrics.jsonl",
            "summary.json",
            "log.txt",
            "DONE",
        ] {
            assert!(rd.join(f).exists(), "{run}/{f}");
        }
        let lines = metrics(&rd);
        let steps: Vec<u64> = lines.iter().map(|l| l["step"].as_u64().unwrap()).collect();
        assert_eq!(
            steps,
            vec![0, 4, 8, 12, 16],
            "400 examples / 50 per batch x 2 epochs"
        );
        for l in &lines {
            for key in [
                "epoch",
                "train_loss",
                "train_acc",
                "test_loss",
                "test_acc",
                "coherence",
                "alpha_m",
                "coherence/fc1",
                "coherence/fc2",
                "sample_loss",
                "sample_acc",
                "pristine_acc",
                "corrupt_acc",
            ] {
                assert!(l[key].is_number(), "{run}: {key} in {l}");
            }
            let c = l["coherence"].as_f64().unwrap();
            assert!((0.0..=100.0).contains(&c), "coherence within [0, m]");
        }
        let s = summary(&rd);
        assert_eq!(s["status"], "completed");
        let eps = s["corrupted_fraction"].as_f64().unwrap();
        assert!(
            (0.35..0.65).contains(&eps),
            "label_noise 0.5 selects about half: {eps}"
        );
        let f = |k: &str| s["final"][k].as_f64().unwrap();
        let want = f("train_acc") - (eps / 10.0 + (1.0 - eps) * f("test_acc"));
        assert!((f("adjusted_overfit") - want).abs() < 1e-9);
        assert_eq!(s["steps"], 16);
        assert_eq!(s["final"]["coherence"], lines[4]["coherence"]);
        let peak = lines
            .iter()
            .map(|l| l["coherence"].as_f64().unwrap())
            .fold(f64::MIN, f64::max);
        assert_eq!(s["peak"]["coherence"]["value"].as_f64().unwrap(), peak);
        let resolved = std::fs::read_to_string(rd.join("manifest.toml")).unwrap();
        assert!(
            resolved.contains(&format!("seed = {}", &run[9..])),
            "{resolved}"
        );
        assert!(!resolved.contains("[sweep]"));
        let log = std::fs::read_to_string(rd.join("log.txt")).unwrap();
        assert!(log.contains("training examples"), "{log}");
    }
    let table = stdout(&out);
    assert!(
        table.contains("peak coherence")
            && table.contains("000-seed=0")
            && table.contains("001-seed=1"),
        "{table}"
    );
    assert!(out_dir.join("smoke/comparison.txt").exists());

    // A second invocation skips the complete runs and reprints their results.
    let before = std::fs::read_to_string(out_dir.join("smoke/000-seed=0/metrics.jsonl")).unwrap();
    let again = coherent(&["run", &m, "--out", &out_dir.to_string_lossy()]);
    assert!(again.status.success());
    assert!(stdout(&again).contains("000-seed=0"));
    assert_eq!(
        before,
        std::fs::read_to_string(out_dir.join("smoke/000-seed=0/metrics.jsonl")).unwrap()
    );

    // Forced, the same seed gives the same numbers.
    let forced = coherent(&[
        "run",
        &m,
        "--out",
        &out_dir.to_string_lossy(),
        "--index",
        "0",
        "--force",
    ]);
    assert!(forced.status.success(), "{}", stderr(&forced));
    let redo = metrics(&out_dir.join("smoke/000-seed=0"));
    let first: Vec<serde_json::Value> = before
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    for (a, b) in first.iter().zip(&redo) {
        assert_eq!(a["coherence"], b["coherence"]);
        assert_eq!(a["train_loss"], b["train_loss"]);
    }
}

#[test]
fn index_selects_one_run() {
    let dir = scratch("index");
    run_ok(&[
        "run",
        "experiments/toy-linear.toml",
        "--out",
        &dir.to_string_lossy(),
        "--index",
        "1",
    ]);
    assert!(dir.join("toy-linear/001-variant=random/DONE").exists());
    assert!(!dir.join("toy-linear/000-variant=real").exists());
}

#[test]
fn a_diverging_run_is_recorded_as_diverged() {
    let dir = scratch("diverge");
    let m = write_manifest(
        &dir,
        "diverge.toml",
        "[dataset]\nplugin = \"toy-linear\"\n[model]\nplugin = \"mlp\"\nhidden = []\nbias = false\n[training]\nlr = 10.0\nbatch_size = 4\nepochs = 1000\n[[metrics]]\nplugin = \"coherence\"\nevery_steps = 10\nsample = 4\n",
    );
    let out = run_ok(&["run", &m, "--out", &dir.to_string_lossy()]);
    assert!(
        out.status.success(),
        "a divergence is a result, not a crash: {}",
        stderr(&out)
    );
    let rd = dir.join("diverge/000");
    let s = summary(&rd);
    assert_eq!(s["status"], "diverged");
    let at = s["diverged_at_step"].as_u64().expect("step recorded");
    assert!(at > 0 && at < 1000, "{at}");
    assert!(rd.join("DONE").exists());
    assert!(stdout(&out).contains("diverged"));
    let weights = coherent_record::TensorFile::read(&rd.join("weights/final.safetensors")).unwrap();
    assert_eq!(
        weights.meta("step"),
        Some(at.to_string().as_str()),
        "the weights at the stop"
    );
    for line in std::fs::read_to_string(rd.join("metrics.jsonl"))
        .unwrap()
        .lines()
    {
        serde_json::from_str::<serde_json::Value>(line).expect("no torn line");
    }
}

/// The quickstart prints, and saves as `comparison.txt`, exactly the table the README shows.
#[test]
fn the_quickstart_gives_the_readme_table() {
    let dir = scratch("quickstart");
    let out = coherent(&[
        "run",
        "experiments/quickstart.toml",
        "--out",
        &dir.to_string_lossy(),
    ]);
    let readme = std::fs::read_to_string(crate::common::root().join("README.md")).unwrap();
    let start = readme
        .find("\nrun                  status")
        .expect("the README shows the table")
        + 1;
    let end = start + readme[start..].find("```").unwrap();
    let table = &readme[start..end];
    assert!(stdout(&out).contains(table), "{}", stdout(&out));
    let saved = std::fs::read_to_string(dir.join("quickstart/comparison.txt")).unwrap();
    assert_eq!(saved, table);
}
