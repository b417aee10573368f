//! The out-of-tree example `examples/own-plugins`: a researcher's own crate with one plugin of
//! each kind and a five-line binary, built as a user builds it (its own workspace, path
//! dependencies, the framework's target directory shared) and used through every command.

use crate::common::{
    cargo_in, root, scratch, stderr, stdout, strings_of_each, summary, target_dir,
};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const PLUGINS: [(&str, &str); 5] = [
    ("csv", "dataset"),
    ("fourier_net", "model"),
    ("norm_trimmed", "aggregator"),
    ("max_share", "metric"),
    ("update_norm", "observer"),
];

fn example() -> PathBuf {
    root().join("examples/own-plugins")
}

/// Runs the example's binary with `args` from the example's directory; asserts success.
fn own(args: &[&str]) -> Output {
    let binary = target_dir().join("release/own-coherent");
    let out = Command::new(&binary)
        .args(args)
        .current_dir(example())
        .env("RUST_LOG", "warn")
        .output()
        .expect("own-coherent runs");
    assert!(
        out.status.success(),
        "own-coherent {args:?}:\n{}",
        stderr(&out)
    );
    out
}

/// Every line of a run's `metrics.jsonl` without its wall-clock time.
fn values(out: &Path, run: &str) -> Vec<serde_json::Value> {
    crate::common::metrics(&out.join("spirals").join(run))
        .into_iter()
        .map(|mut line| {
            line.as_object_mut().unwrap().remove("elapsed_s");
            line
        })
        .collect()
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn a_crate_of_own_plugins_builds_lists_runs_sweeps_and_reports() {
    // The example's own tests (each plugin against a brute-force reference), then its binary.
    let tests = stdout(&cargo_in(&example(), &["test", "--release"]));
    assert!(tests.contains("test result: ok. 8 passed"), "{tests}");
    cargo_in(&example(), &["build", "--release"]);

    // `plugins` lists the crate's plugins with their parameters' docs and their crate.
    let listing = stdout(&own(&["plugins"]));
    for (name, _) in PLUGINS {
        let line = listing
            .lines()
            .find(|l| l.trim_start().starts_with(&format!("{name} ")));
        let line = line.unwrap_or_else(|| panic!("{name} is not listed:\n{listing}"));
        assert!(line.ends_with("[own-plugins 0.1.0]"), "{line}");
    }
    for doc in [
        "Number of Fourier features.",
        "Field separator.",
        "label_noise",
    ] {
        assert!(listing.contains(doc), "{doc}:\n{listing}");
    }
    assert!(
        listing.contains("[coherent-coherence 0.1.0]"),
        "the bundled plugins are kept"
    );

    // `run`: both runs of the manifest, every plugin of the crate recorded with its crate.
    let dir = scratch("own-plugins");
    let (a, b) = (dir.join("run"), dir.join("sweep"));
    own(&["run", "spirals.toml", "--out", &a.to_string_lossy()]);
    let runs = ["000-aggregator=mean", "001-aggregator=norm_trimmed_drop10"];
    let meta = json(&a.join("spirals").join(runs[1]).join("run.json"));
    assert_eq!(meta["program"], "own-coherent");
    let crates = strings_of_each(&meta["plugin_crates"], "name");
    assert!(
        crates.contains(&"own-plugins") && crates.contains(&"coherent-mlp"),
        "{crates:?}"
    );
    let uses = meta["plugins"].as_array().unwrap();
    for (name, role) in PLUGINS {
        let used = uses.iter().find(|u| u["plugin"] == name);
        let used = used.unwrap_or_else(|| panic!("{name} not in {uses:?}"));
        assert_eq!(
            (used["role"].as_str(), used["crate"]["name"].as_str()),
            (Some(role), Some("own-plugins"))
        );
    }

    // `sweep --jobs 2` relaunches the same binary per run: the same numbers as `run`.
    let swept = stdout(&own(&[
        "sweep",
        "spirals.toml",
        "--jobs",
        "2",
        "--out",
        &b.to_string_lossy(),
    ]));
    assert!(swept.contains("2 runs: 2 done, 0 failed"), "{swept}");
    for run in runs {
        let (x, y) = (values(&a, run), values(&b, run));
        assert!(x == y, "{run}: `run` and `sweep` measured different values");
    }
    let line =
        std::fs::read_to_string(b.join("spirals").join(runs[0]).join("metrics.jsonl")).unwrap();
    for value in ["\"max_share\"", "\"max_share/fourier1\"", "\"update_norm\""] {
        assert!(line.contains(value), "{value}");
    }

    // `report` over the two runs.
    let dirs: Vec<String> = runs
        .iter()
        .map(|r| b.join("spirals").join(r).to_string_lossy().into_owned())
        .collect();
    let out = dir.join("report");
    let report = stdout(&own(&[
        "report",
        &dirs[0],
        &dirs[1],
        "--out",
        &out.to_string_lossy(),
    ]));
    assert!(
        out.join("report.html").is_file() && report.contains("report.html"),
        "{report}"
    );

    // The final weights, named as PyTorch would name them, load outside Rust: NumPy gives the
    // same test accuracy from them.
    let final_weights = b
        .join("spirals")
        .join(runs[0])
        .join("weights/final.safetensors");
    let file = coherent_record::weights::TensorFile::read(&final_weights).unwrap();
    let shape = |name: &str| file.tensor(name).map(|t| t.shape.clone());
    assert_eq!(shape("fourier1.weight"), Some(vec![128, 2]));
    assert_eq!(shape("fc1.weight"), Some(vec![256, 128]));
    if crate::common::numpy_available() {
        let script = example().join("check_weights.py");
        let run = b.join("spirals").join(runs[0]);
        let out = Command::new("python3")
            .arg(&script)
            .arg(&run)
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        let numpy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        let logged = summary(&run)["final"]["test_acc"].as_f64().unwrap();
        assert!(
            (numpy["test_acc"].as_f64().unwrap() - logged).abs() < 1e-9,
            "{numpy} vs {logged}"
        );
    }

    // What the manifest says it shows: with half of the labels shuffled, plain SGD memorises
    // more of them than norm_trimmed, and tests worse.
    let s: Vec<serde_json::Value> = runs
        .iter()
        .map(|r| summary(&b.join("spirals").join(r)))
        .collect();
    let at = |k: usize, key: &str| {
        s[k]["final"][key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {}", s[k]))
    };
    assert!(at(0, "corrupt_acc") > at(1, "corrupt_acc") + 0.05, "{s:?}");
    assert!(at(1, "test_acc") > at(0, "test_acc"), "{s:?}");
}
