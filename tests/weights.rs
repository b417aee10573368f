//! Weights files and checkpoints in safetensors: what a run keeps, a logged m-coherence
//! recomputed from the weights in NumPy (`tests/python/coherence_from_weights.py`), a run
//! started from given weights, and checkpoints of earlier versions.
//!
//! The NumPy test needs `python3` with `numpy` and `safetensors`; without them it prints
//! `SKIPPED: ...` straight to the terminal and returns, unless `COHERENT_REQUIRE_NUMPY` is set
//! (as `.ci/run` does once it has installed them): then it fails.

use crate::common::{coherent_in, metrics, root, run_ok, run_ok_in, scratch_manifest, stderr};
use coherent_record::{files, Samples, TensorFile};
use std::path::Path;
use std::process::Command;

/// A small MLP on the bundled MNIST sample: 20 steps, coherence of 100 examples at the start
/// and the end, weights every 5 steps.
const MLP: &str = r#"
name = "w"
seed = 5
[dataset]
plugin = "mnist"
train_limit = 500
test_limit = 100
[model]
plugin = "mlp"
hidden = [32]
[training]
batch_size = 50
epochs = 2
checkpoint_every = 5
[[metrics]]
plugin = "coherence"
every_steps = 1000
sample = 100
[record]
weights_every = 5
[evaluation]
plots = false
"#;

/// The last value of `key` in the run's `metrics.jsonl`.
fn last(run: &Path, key: &str) -> f64 {
    let lines = metrics(run);
    let line = lines.iter().rev().find(|l| l.get(key).is_some()).unwrap();
    line[key].as_f64().unwrap()
}

#[test]
fn a_logged_coherence_is_recomputed_from_the_weights_in_numpy() {
    let (dir, m) = scratch_manifest("weights-numpy", "w.toml", MLP);
    run_ok_in(&dir, &["run", &m, "--out", "runs"]);
    let run = dir.join("runs/w/000");
    let weights = run.join(files::WEIGHTS);
    for name in [
        "initial", "step-5", "step-10", "step-15", "step-20", "final",
    ] {
        assert!(
            weights.join(format!("{name}.safetensors")).exists(),
            "{name}"
        );
    }
    assert!(!run.join(files::CHECKPOINT).exists());
    let final_weights = TensorFile::read(&weights.join(files::FINAL_WEIGHTS)).unwrap();
    assert_eq!(final_weights.meta("format"), Some("coherent-weights"));
    assert_eq!(final_weights.meta("step"), Some("20"));
    let names: Vec<&str> = final_weights
        .tensors
        .iter()
        .map(|t| t.name.as_str())
        .collect();
    assert_eq!(names, ["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"]);
    assert_eq!(final_weights.tensor("fc1.weight").unwrap().shape, [32, 784]);
    let samples = Samples::read(&run.join(files::SAMPLES)).unwrap();
    assert_eq!(samples.get("coherence").unwrap().len(), 100);

    if !crate::common::numpy_available() {
        return;
    }
    let script = root().join("tests/python/coherence_from_weights.py");
    let data = root().join("plugins/datasets/mnist/data");
    let numpy = |file: &str| -> serde_json::Value {
        let out = Command::new("python3")
            .arg(&script)
            .arg(&run)
            .arg(&data)
            .arg("500")
            .arg(weights.join(file))
            .output()
            .expect("python3 runs");
        assert!(out.status.success(), "{}", stderr(&out));
        serde_json::from_slice(&out.stdout).expect("the script prints JSON")
    };
    let logged = metrics(&run);
    let first = &logged[0];
    let (at_start, at_end) = (numpy(files::INITIAL_WEIGHTS), numpy(files::FINAL_WEIGHTS));
    assert_eq!(at_end["m"], 100);
    for key in ["coherence", "coherence/fc1", "coherence/fc2", "sample_loss"] {
        for (numpy, rust) in [
            (&at_start[key], first[key].as_f64().unwrap()),
            (&at_end[key], last(&run, key)),
        ] {
            let numpy = numpy.as_f64().unwrap();
            let rel = (numpy - rust).abs() / rust.abs();
            assert!(
                rel < 1e-4,
                "{key}: NumPy {numpy} vs logged {rust} ({rel:e})"
            );
        }
    }
    // the run moved away from its initialisation: the two recomputations differ
    assert!(at_start["sample_loss"].as_f64() > at_end["sample_loss"].as_f64());
}

#[test]
fn a_run_starts_from_given_weights_and_what_does_not_fit_is_located() {
    let (dir, m) = scratch_manifest("weights-start", "w.toml", MLP);
    run_ok_in(&dir, &["run", &m, "--out", "runs"]);
    let trained = "runs/w/000/weights/final.safetensors";
    let from = MLP.replace("name = \"w\"", "name = \"from\"").replace(
        "hidden = [32]",
        &format!("hidden = [32]\nweights = \"{trained}\""),
    );
    std::fs::write(dir.join("from.toml"), &from).unwrap();
    // from another working directory: the path is the manifest's
    let out = dir.join("runs").to_string_lossy().into_owned();
    run_ok(&[
        "run",
        &dir.join("from.toml").to_string_lossy(),
        "--out",
        &out,
    ]);
    let (a, b) = (dir.join("runs/w/000"), dir.join("runs/from/000"));
    let read = |p: &Path| TensorFile::read(p).unwrap().tensors;
    assert_eq!(
        read(&a.join("weights/final.safetensors")),
        read(&b.join("weights/initial.safetensors")),
        "the run starts from the given weights"
    );
    let start = &metrics(&b)[0];
    for key in ["train_loss", "test_acc", "coherence"] {
        assert_eq!(start[key].as_f64().unwrap(), last(&a, key), "{key}");
    }

    // another network: every tensor that does not fit, at the `weights` value
    let wider = from.replace("hidden = [32]", "hidden = [16, 8]");
    std::fs::write(dir.join("wider.toml"), &wider).unwrap();
    let out = coherent_in(&dir, &["run", "wider.toml", "--out", "runs"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    let line = wider
        .lines()
        .position(|l| l.starts_with("weights"))
        .unwrap()
        + 1;
    // (the file as resolved, next to the manifest)
    assert!(
        text.contains(&format!("wider.toml:{line}:11: error: `")),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "{trained}`: tensor `fc1.weight` is [32, 784] in the file but [16, 784] in the network"
        )),
        "{text}"
    );
    assert!(
        text.contains("tensor `fc3.weight` [10, 8] of the network is missing"),
        "{text}"
    );
    assert!(
        text.contains("help: the network's tensors: fc1.weight [16, 784], fc1.bias [16]"),
        "{text}"
    );
    // a missing file, named
    let missing = from.replace(trained, "nowhere/final.safetensors");
    std::fs::write(dir.join("missing.toml"), missing).unwrap();
    let out = coherent_in(&dir, &["check", "missing.toml"]);
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(
        text.contains("error: cannot read the weights: ")
            && text.contains("nowhere/final.safetensors: No such file"),
        "{text}"
    );
}

#[test]
fn checkpoints_of_earlier_versions_and_garbled_ones_start_the_run_over() {
    let (dir, m) = scratch_manifest("weights-old-checkpoint", "w.toml", MLP);
    let run = dir.join("runs/w/000");
    std::fs::create_dir_all(&run).unwrap();
    std::fs::write(
        run.join(files::OLD_CHECKPOINT),
        "coherent-checkpoint 2\n{}\n",
    )
    .unwrap();
    run_ok_in(&dir, &["run", &m, "--out", "runs", "--resume"]);
    let log = std::fs::read_to_string(run.join(files::LOG)).unwrap();
    assert!(
        log.contains(
            "checkpoint.bin: a checkpoint of an earlier version of coherent; not resumed from it"
        ),
        "{log}"
    );
    assert!(
        log.contains("no usable checkpoint; the run starts over"),
        "{log}"
    );
    assert!(!run.join(files::OLD_CHECKPOINT).exists());
    let first = metrics(&run);
    assert_eq!(first[0]["step"], 0);

    // A garbled checkpoint never fails the run: it starts over, and says why in run.json.
    std::fs::remove_file(run.join(files::DONE)).unwrap();
    std::fs::write(run.join(files::CHECKPOINT), b"\x10\0\0\0\0\0\0\0{\"a\":").unwrap();
    run_ok_in(&dir, &["run", &m, "--out", "runs", "--resume"]);
    let meta: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(run.join(files::RUN)).unwrap()).unwrap();
    let refused = meta["resume_refused"][0].as_str().unwrap_or_default();
    assert!(
        refused.contains("checkpoint.safetensors: not a safetensors file, or a truncated one"),
        "{meta}"
    );
    let without_time = |lines: Vec<serde_json::Value>| -> Vec<serde_json::Value> {
        lines
            .into_iter()
            .map(|mut l| {
                l.as_object_mut().unwrap().remove("elapsed_s");
                l
            })
            .collect()
    };
    assert_eq!(without_time(metrics(&run)), without_time(first));
}
