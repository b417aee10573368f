//! Manifest validation: every experiment is valid; every bad fixture gets the diagnostic it
//! deserves, with its location, and exit code 2.

use crate::common::{fails, root, run_ok_in, scratch, stdout};

/// Writes a synthetic CIFAR-10 binary directory (`records` per file) under `dir`.
pub fn synthetic_cifar(dir: &std::path::Path, records: usize) {
    std::fs::create_dir_all(dir).unwrap();
    let files = coherent_cifar10::TRAIN_FILES
        .iter()
        .chain([&coherent_cifar10::TEST_FILE]);
    for (f, name) in files.enumerate() {
        let mut bytes = Vec::with_capacity(records * coherent_cifar10::RECORD);
        for r in 0..records {
            bytes.push(((r + f) % 10) as u8);
            bytes.extend((0..3072).map(|p| ((p * 7 + r * 13 + f) % 256) as u8));
        }
        std::fs::write(dir.join(name), bytes).unwrap();
    }
}

/// Every manifest in `experiments/` is valid. Those that read CIFAR-10 (which cannot be
/// shipped) are checked in a copy of `experiments/` next to a synthetic CIFAR-10 at the
/// documented place, `data/cifar-10-batches-bin` at the repository root; the check runs from
/// elsewhere, as the manifests' data paths resolve against their own directory. Those on the
/// full Fashion-MNIST are checked when its package is installed (see `fashion_mnist.rs`).
#[test]
fn every_experiment_manifest_passes_check() {
    let work = scratch("experiments-check");
    std::fs::create_dir_all(work.join("experiments")).unwrap();
    let fashion = crate::fashion_mnist::real_files().is_some();
    let mut paths: Vec<std::path::PathBuf> = Vec::new();
    for entry in std::fs::read_dir(root().join("experiments")).unwrap() {
        let from = entry.unwrap().path();
        let on_fashion = || {
            let text = std::fs::read_to_string(&from).unwrap();
            text.contains(crate::fashion_mnist::INSTALLED)
        };
        if from.extension().is_some_and(|e| e == "toml") && (fashion || !on_fashion()) {
            let to = work.join("experiments").join(from.file_name().unwrap());
            std::fs::copy(&from, &to).unwrap();
            paths.push(to);
        }
    }
    paths.sort();
    assert!(paths.len() >= 5, "{paths:?}");
    synthetic_cifar(&work.join("data/cifar-10-batches-bin"), 1200);
    let names: Vec<String> = paths
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let mut args = vec!["check"];
    args.extend(names.iter().map(String::as_str));
    let out = run_ok_in(&work, &args);
    for p in &names {
        assert!(
            stdout(&out).contains(&format!("ok: {p}")),
            "{}",
            stdout(&out)
        );
    }
}

/// `(fixture, pieces the diagnostics must contain)`.
const BAD: &[(&str, &[&str])] = &[
    ("unknown-plugin", &["unknown-plugin.toml:7:10: error: unknown plugin `mpl` for [model]", "7 | plugin = \"mpl\"", "^^^^^", "help: valid plugins: alexnet, lenet, mlp, resnet, vgg"]),
    ("unknown-key", &["unknown-key.toml:6:1: error: unknown field `hiden`", "`hidden`", "`activation`"]),
    ("unknown-section", &["unknown-section.toml:7:2: error: unknown key `optimiser`", "help: valid top-level keys:", "training"]),
    ("wrong-type", &["wrong-type.toml:8:14: error: invalid type: string \"large\"", "8 | batch_size = \"large\""]),
    ("label-noise-range", &["label-noise-range.toml:3:15: error: `label_noise`: must be a fraction in [0, 1], got 1.5"]),
    ("batch-size-zero", &["batch-size-zero.toml:8:14: error: `batch_size`: must be at least 1"]),
    ("sample-too-large", &["sample-too-large.toml:9:10: error: metric `coherence` samples 9000 examples but the training set has only 8000"]),
    ("syntax-error", &["syntax-error.toml:3:15: error:", "label_noise = = 0.5"]),
    ("bad-sweep", &["bad-sweep.toml:8:31: error: `label_noise`: must be a fraction in [0, 1], got 1.5"]),
    (
        "momentum-with-rm3",
        &["momentum-with-rm3.toml:10:1: error: `rm3` runs without momentum", "set `momentum = 0` in [training]"],
    ),
    (
        "easy-hard-train-limit",
        &["easy-hard-train-limit.toml:8:15: error: `train_limit`: cannot be used with [easy_hard]", "help: the easy and hard splits rank every training example"],
    ),
    (
        "epochs-overflow",
        &["epochs-overflow.toml:12:10: error: `epochs`: 1,844,674,407,370,955,162 epochs are at least as many steps, more than a run may have (at most 1,000,000,000,000)", "help: a run has at most 10^12 steps"],
    ),
    (
        "epochs-product",
        &["epochs-product.toml:11:10: error: `epochs`: 200,000,000 epochs of 8,000 steps (8000 training examples in batches of 1) are 1,600,000,000,000 steps, more than a run may have"],
    ),
    (
        "epochs-sweep",
        &["epochs-sweep.toml:10:25: error: `epochs`: 9,223,372,036,854,775,807 epochs", "note: in run 001-epochs=9223372036854775807 of the sweep (training.epochs = 9223372036854775807)"],
    ),
    (
        "trimmed-b-batch",
        &["trimmed-b-batch.toml:11:5: error: `b`: dropping 60 values at each end of a coordinate leaves none of a batch of 100 (`batch_size`); `b` must be in 0..=49", "help: lower `b`"],
    ),
    (
        "trimmed-last-batch",
        &["trimmed-last-batch.toml:15:5: error: `b`: dropping 120 values at each end of a coordinate leaves none of the last batch of each epoch, 200 examples (the training set is not a multiple of `batch_size = 300`); `b` must be in 0..=99"],
    ),
    (
        "median-of-means-k",
        &["median-of-means-k.toml:14:5: error: `k`: 32 groups cannot be made of a batch of 20 (`batch_size`): every group needs an example; `k` must be in 1..=20"],
    ),
    (
        "winsorized-clip-count-sweep",
        &["winsorized-clip-count-sweep.toml:14:31: error: `clip_count`: clipping 50 values at each end of a coordinate crosses the middle of a batch of 100 (`batch_size`); `clip_count` must be in 0..=49", "note: in run 001-clip_count=50 of the sweep"],
    ),
    (
        "hidden-huge",
        &["hidden-huge.toml:7:10: error: the network (`mlp` on 1x28x28 inputs) has 79,500,000,010 parameters, more than a run may have (at most 1,000,000,000)", "help: a network has at most 10^9 parameters"],
    ),
    (
        "hidden-overflow",
        &["hidden-overflow.toml:7:10: error: the network (`mlp` on 1x28x28 inputs) has more than 18,446,744,073,709,551,615 parameters"],
    ),
    (
        "resnet-depth",
        &["resnet-depth.toml:7:9: error: the network (`resnet` on 1x28x28 inputs) has more than 100,000 layers"],
    ),
    (
        "hidden-sweep",
        &[
            "hidden-sweep.toml:9:25: error: the network (`mlp` on 1x28x28 inputs) has 79,500,000,010 parameters",
            "note: in run 001-hidden=100000000 of the sweep",
        ],
    ),
    (
        "metric-twice",
        &["metric-twice.toml:12:10: error: metric `coherence` is listed twice", "help: list each metric plugin once"],
    ),
    (
        "many-errors",
        &[
            "many-errors.toml:4:15: error: `label_noise`",
            "many-errors.toml:8:14: error: unknown variant `gelu`, expected `relu` or `tanh`",
            "many-errors.toml:12:10: error: `epochs`: must be at least 1",
            "3 errors in the manifest",
        ],
    ),
];

#[test]
fn bad_manifests_get_located_diagnostics_and_exit_code_2() {
    for (name, pieces) in BAD {
        let path = format!("tests/fixtures/bad/{name}.toml");
        for command in ["check", "run"] {
            let args = [command, &path, "--out", "target/never-written"];
            let what = format!("{command} {name}");
            let text = fails(2, &args[..if command == "run" { 4 } else { 2 }], &what);
            for piece in *pieces {
                assert!(
                    text.contains(piece),
                    "{command} {name}: missing {piece:?} in\n{text}"
                );
            }
        }
    }
    assert!(
        !root().join("target/never-written").exists(),
        "nothing is written for a bad manifest"
    );
}

#[test]
fn every_fixture_is_covered() {
    let count = std::fs::read_dir(root().join("tests/fixtures/bad"))
        .unwrap()
        .count();
    assert_eq!(count, BAD.len());
}

#[test]
fn missing_manifest_and_bad_index_are_usage_errors() {
    let text = fails(
        2,
        &["check", "experiments/no-such.toml"],
        "a missing manifest",
    );
    assert!(
        text.contains("no-such.toml: error: cannot read the manifest"),
        "{text}"
    );
    let args = ["run", "experiments/toy-linear.toml", "--index", "7"];
    let text = fails(2, &args, "an index past the runs");
    assert!(text.contains("--index 7 is out of range"), "{text}");
}

/// Makes a FIFO (named pipe) at `path`.
pub fn mkfifo(path: &std::path::Path) {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(path.as_os_str().as_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0, "mkfifo");
}

/// A directory, a FIFO with no writer, a device and an oversized file given as the manifest
/// are refused by what they are, at once (no hang, no reading `/dev/zero` without end), with
/// exit code 2, for `check` and `run` alike.
#[test]
fn a_manifest_that_is_not_a_small_regular_file_is_refused_by_what_it_is() {
    let dir = scratch("not-a-file");
    let fifo = dir.join("pipe.toml");
    mkfifo(&fifo);
    let big = dir.join("big.toml");
    std::fs::write(&big, "#".repeat((1 << 20) + 1)).unwrap();
    let cases = [
        (dir.clone(), "is a directory, not a file"),
        (fifo, "is a FIFO (named pipe), not a file"),
        ("/dev/zero".into(), "is a character device, not a file"),
        (big, "is 1048577 bytes; a manifest is at most 1 MiB"),
    ];
    for (path, what) in cases {
        let path = path.to_string_lossy().into_owned();
        for command in ["check", "run"] {
            let args = [command, &path, "--out", "target/never-written"];
            let out = crate::common::coherent_limited(
                &args[..if command == "run" { 4 } else { 2 }],
                std::time::Duration::from_secs(20),
            );
            assert!(!out.timed_out, "{command} {path} hangs");
            assert_eq!(out.code, Some(2), "{command} {path}: {}", out.stderr);
            let first = out.stderr.lines().next().unwrap_or_default();
            assert!(
                first.starts_with(&format!("{path}: error: the manifest {what}")),
                "{command} {path}: {}",
                out.stderr
            );
            assert!(
                out.peak_kib < 100_000,
                "{command} {path}: {} KiB",
                out.peak_kib
            );
            assert!(!out.stdout.contains("ok:"), "{}", out.stdout);
        }
    }
}
