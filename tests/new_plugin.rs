//! `coherent new plugin KIND NAME --out DIR` end to end: one plugin of each kind in one crate of
//! plugins outside the repository, whose generated tests pass, whose program lists the plugins
//! with their parameters and trains with each of them, recording that they came from it.
//!
//! The crate is built once, with `cargo test --release` and `cargo build --release`, in this
//! repository's target directory, so the dependencies compiled for the repository are reused.
//! Its path dependencies on coherent's crates are compiled once more (Cargo keys a path
//! dependency outside a crate's workspace by its absolute path), but only once per target
//! directory: later runs of this test compile the crate of plugins alone.

use crate::common::{cargo_in, fails, run_ok, scratch, stderr, stdout, target_dir};
use std::process::Command;
use std::time::Instant;

/// The crate of plugins, named after its directory.
const LAB: &str = "new-plugin-lab";

/// `(kind, name, role in run.json, a parameter, words of its documentation)` of each plugin.
const PLUGINS: [(&str, &str, &str, &str, &str); 5] = [
    (
        "network",
        "res_net",
        "model",
        "width",
        "Width of every hidden layer",
    ),
    (
        "dataset",
        "blobs",
        "dataset",
        "classes",
        "Number of classes",
    ),
    (
        "metric",
        "grad_norm",
        "metric",
        "root",
        "root-mean-square norms",
    ),
    (
        "aggregator",
        "inv_norm",
        "aggregator",
        "power",
        "Exponent of the weights",
    ),
    (
        "observer",
        "forgetting",
        "observer",
        "per_example",
        "forgetting.csv",
    ),
];

/// The sum of `N passed` and of `N failed` over the `test result:` lines of cargo's output.
fn test_counts(text: &str) -> (usize, usize) {
    let count = |line: &str, word: &str| -> usize {
        line.split(';')
            .find_map(|part| part.trim().strip_suffix(word))
            .and_then(|n| n.trim().rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    text.lines()
        .filter(|l| l.starts_with("test result:"))
        .fold((0, 0), |(p, f), l| {
            (p + count(l, " passed"), f + count(l, " failed"))
        })
}

#[test]
fn a_crate_of_plugins_of_every_kind_is_tested_listed_and_trains() {
    let start = Instant::now();
    let dir = scratch("new-plugin");
    let lab = dir.join(LAB);
    let lab_arg = lab.to_string_lossy().into_owned();
    for (kind, name, ..) in PLUGINS {
        let out = run_ok(&["new", "plugin", kind, name, "--out", &lab_arg]);
        let text = stdout(&out);
        assert!(text.contains(&format!("src/{name}.rs")), "{text}");
        assert!(text.contains(&format!("run {name}.toml")), "{text}");
    }
    let again = fails(
        2,
        &["new", "plugin", "observer", "grad_norm", "--out", &lab_arg],
        "a module that exists",
    );
    assert!(again.contains("already"), "{again}");
    let generated = start.elapsed();

    // the plugins' own tests, each against its brute-force reference
    let test = cargo_in(&lab, &["test", "--release"]);
    let text = stdout(&test);
    let (passed, failed) = test_counts(&text);
    assert_eq!(failed, 0, "{text}");
    assert!(passed >= 11, "{passed} tests passed:\n{text}");
    for (_, name, ..) in PLUGINS {
        let ok = text
            .lines()
            .filter(|l| l.starts_with(&format!("test {name}::tests::")) && l.ends_with(" ok"))
            .count();
        assert!(ok >= 2, "{name}: {ok} tests passed:\n{text}");
    }
    let tested = start.elapsed();
    cargo_in(&lab, &["build", "--release"]);
    let built = start.elapsed();

    // the program lists each plugin, from this crate, with its parameters
    let program = target_dir().join("release").join(LAB);
    let run = |args: &[&str]| {
        let out = Command::new(&program)
            .args(args)
            .current_dir(&lab)
            .env("RUST_LOG", "warn")
            .output()
            .expect("the crate's program runs");
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stdout(&out)
    };
    let listing = run(&["plugins"]);
    for (_, name, _, param, doc) in PLUGINS {
        let at = listing
            .find(&format!("\n  {name}  "))
            .unwrap_or_else(|| panic!("{name} is not listed:\n{listing}"));
        let mut lines = listing[at + 1..].lines();
        let head = lines.next().unwrap();
        assert!(head.ends_with(&format!("[{LAB} 0.1.0]")), "{head}");
        // its parameters are the indented lines that follow
        let params: Vec<&str> = lines.take_while(|l| l.starts_with("      ")).collect();
        assert!(
            params
                .iter()
                .any(|l| l.trim_start().starts_with(param) && l.contains(doc)),
            "{name}: no `{param}` documented in {params:?}"
        );
    }

    // each generated manifest trains, and the run records the plugin's crate
    for (_, name, role, ..) in PLUGINS {
        run(&["run", &format!("{name}.toml"), "--out", "runs"]);
        let run_dir = lab.join("runs").join(name).join("000");
        let meta: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(run_dir.join("run.json")).expect("run.json"),
        )
        .unwrap();
        assert_eq!(meta["program"], LAB);
        let uses = meta["plugins"].as_array().unwrap();
        let used = uses
            .iter()
            .find(|u| u["plugin"] == name)
            .unwrap_or_else(|| panic!("{name} not in {uses:?}"));
        assert_eq!(used["role"], role, "{used}");
        assert_eq!(used["crate"]["name"], LAB, "{used}");
        let summary = crate::common::summary(&run_dir);
        assert_eq!(summary["status"], "completed", "{name}");
    }
    let summary = crate::common::summary(&lab.join("runs/forgetting/000"));
    assert!(
        summary["forgetting"]["events"].as_u64().is_some(),
        "{summary}"
    );
    let lines = crate::common::metrics(&lab.join("runs/grad_norm/000"));
    let last = lines.last().unwrap();
    assert!(last["grad_norm"].as_f64().unwrap() > 0.0, "{last}");
    eprintln!(
        "new_plugin: generated in {:.1?}, cargo test {:.1?}, cargo build {:.1?}, listed and trained {:.1?}",
        generated,
        tested - generated,
        built - tested,
        start.elapsed() - built
    );
    let _ = std::fs::remove_dir_all(&dir);
}
