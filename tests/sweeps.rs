//! `coherent sweep` on this machine: listing, parallel runs with a failing run, the stable
//! index -> directory mapping, and the Slurm script (without Slurm; see `slurm.rs` for a real
//! cluster).

use crate::common::{
    coherent, coherent_in, fails, run_ok, run_ok_in, scratch, scratch_manifest, stderr, stdout,
    write_manifest,
};
use std::path::Path;

/// Four tiny runs: the toy example, real and random, two seeds, 20 steps each.
pub const FOUR_RUNS: &str = r#"
name = "NAME"
[dataset]
plugin = "toy-linear"
[model]
plugin = "mlp"
hidden = []
bias = false
init = "zeros"
[training]
lr = 0.01
batch_size = 4
epochs = 100
max_steps = 20
[[metrics]]
plugin = "coherence"
every_steps = 10
sample = 4
[sweep]
"dataset.variant" = ["real", "random"]
seeds = [0, 1]
"#;

/// The run directories of [`FOUR_RUNS`], in index order.
pub const FOUR_DIRS: [&str; 4] = [
    "000-variant=real-seed=0",
    "001-variant=real-seed=1",
    "002-variant=random-seed=0",
    "003-variant=random-seed=1",
];

/// Writes [`FOUR_RUNS`] named `name` into `dir`.
pub fn four_runs(dir: &Path, name: &str) -> String {
    write_manifest(dir, "sweep.toml", &FOUR_RUNS.replace("NAME", name))
}

/// [`FOUR_RUNS`] named `name`, with the sweep's `seeds` line replaced by `axes`.
fn four_runs_sweeping(name: &str, axes: &str) -> String {
    FOUR_RUNS
        .replace("NAME", name)
        .replace("seeds = [0, 1]", axes)
}

#[test]
fn parallel_runs_survive_a_failing_run_and_a_rerun_does_only_what_is_missing() {
    let dir = scratch("sweep-jobs");
    let m = four_runs(&dir, "jobs");
    let out = dir.join("runs");
    let out_s = out.to_string_lossy().to_string();
    let exp = out.join("jobs");
    // Run 2 passes `check` but cannot write its metrics: a directory is in the way.
    std::fs::create_dir_all(exp.join(FOUR_DIRS[2]).join("metrics.jsonl")).unwrap();

    let listed = coherent(&["sweep", &m, "--out", &out_s, "--list"]);
    assert!(listed.status.success(), "{}", stderr(&listed));
    let text = stdout(&listed);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 5, "a header and one line per run:\n{text}");
    assert!(lines[0].starts_with("index") && lines[0].ends_with("state"));
    let cells: Vec<&str> = lines[3].split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "2",
            FOUR_DIRS[2],
            "dataset.variant=random",
            "seed=0",
            "started"
        ]
    );
    assert!(lines[1].ends_with("missing"), "{text}");

    let first = coherent(&["sweep", &m, "--out", &out_s, "--jobs", "2"]);
    assert_eq!(first.status.code(), Some(1), "a failed run fails the sweep");
    let text = stdout(&first);
    assert_eq!(text.matches("] 00").count(), 4, "one line per run:\n{text}");
    assert!(
        text.contains("4 runs: 3 done, 1 failed, 0 started, 0 missing"),
        "{text}"
    );
    assert!(
        text.contains("2 at a time with 1 thread each"),
        "2 cores / 2 jobs: {text}"
    );
    let row = text
        .lines()
        .find(|l| l.starts_with(FOUR_DIRS[2]) && l.contains("failed"));
    assert!(row.is_some(), "the table shows the failed run:\n{text}");
    for (k, run) in FOUR_DIRS.iter().enumerate() {
        let rd = exp.join(run);
        assert!(rd.join("stdout.txt").exists() && rd.join("stderr.txt").exists());
        assert_eq!(rd.join("DONE").exists(), k != 2, "{run}");
    }
    let failure = std::fs::read_to_string(exp.join(FOUR_DIRS[2]).join("FAILED")).unwrap();
    assert!(failure.contains("metrics.jsonl"), "{failure}");
    assert!(exp.join("comparison.txt").exists());

    let status = coherent(&["sweep", &m, "--out", &out_s, "--status"]);
    assert_eq!(status.status.code(), Some(1), "not all done");
    assert!(stdout(&status).contains(&format!("{}  failed: error:", FOUR_DIRS[2])));

    // Fixed, the rerun runs only the failed run and leaves the others untouched.
    std::fs::remove_dir(exp.join(FOUR_DIRS[2]).join("metrics.jsonl")).unwrap();
    let before = std::fs::read(exp.join(FOUR_DIRS[0]).join("metrics.jsonl")).unwrap();
    let second = coherent(&["sweep", &m, "--out", &out_s, "--jobs", "2"]);
    assert!(second.status.success(), "{}", stderr(&second));
    let text = stdout(&second);
    assert!(text.contains("running 1 of 4 runs"), "{text}");
    assert!(text.contains(&format!("[1/1] {}", FOUR_DIRS[2])), "{text}");
    assert!(text.contains("4 runs: 4 done"), "{text}");
    assert!(!exp.join(FOUR_DIRS[2]).join("FAILED").exists());
    assert_eq!(
        before,
        std::fs::read(exp.join(FOUR_DIRS[0]).join("metrics.jsonl")).unwrap()
    );
    let status = coherent(&["sweep", &m, "--out", &out_s, "--status"]);
    assert!(status.status.success(), "{}", stdout(&status));
}

#[test]
fn a_run_index_names_the_same_directory_on_every_invocation() {
    let dir = scratch("sweep-stable");
    let text = four_runs_sweeping("stable", "\"training.lr\" = [0.01, 0.02]\nseeds = [7, 3]");
    let m = write_manifest(&dir, "stable.toml", &text);
    let names = |out: &std::process::Output| -> Vec<String> {
        stdout(out)
            .lines()
            .skip(1)
            .map(|l| l.split_whitespace().nth(1).unwrap().to_string())
            .collect()
    };
    let first = names(&coherent(&["sweep", &m, "--list"]));
    assert_eq!(first.len(), 8);
    assert_eq!(first[0], "000-variant=real-lr=0.01-seed=7");
    assert_eq!(first[1], "001-variant=real-lr=0.01-seed=3");
    assert_eq!(first[2], "002-variant=real-lr=0.02-seed=7");
    assert_eq!(first[7], "007-variant=random-lr=0.02-seed=3");
    assert_eq!(first, names(&coherent(&["sweep", &m, "--list"])));
    // `run --index` writes exactly the directory the listing names.
    let out = dir.join("runs");
    let run = coherent(&["run", &m, "--index", "5", "--out", &out.to_string_lossy()]);
    assert!(run.status.success(), "{}", stderr(&run));
    let made: Vec<String> = std::fs::read_dir(out.join("stable"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n != "comparison.txt")
        .collect();
    assert_eq!(made, [first[5].clone()]);
}

#[test]
fn the_slurm_script_covers_only_the_runs_not_done() {
    let dir = scratch("sweep-dry");
    let text = four_runs_sweeping("dry-run", "seeds = [0, 1, 2]");
    write_manifest(&dir, "m.toml", &text);
    for index in ["1", "2"] {
        let _out = run_ok_in(&dir, &["run", "m.toml", "--index", index, "--out", "rel"]);
    }
    // A failed run and a started one (running, or killed) are covered again.
    let exp = dir.join("rel/dry-run");
    std::fs::create_dir_all(exp.join("004-variant=random-seed=1")).unwrap();
    std::fs::create_dir_all(exp.join("003-variant=random-seed=0")).unwrap();
    std::fs::write(exp.join("003-variant=random-seed=0/FAILED"), "error: x").unwrap();
    let args = [
        "sweep",
        "m.toml",
        "--out",
        "rel",
        "--slurm",
        "--dry-run",
        "--partition",
        "short",
        "--time",
        "00:10:00",
        "--cpus-per-task",
        "2",
        "--mem",
        "1G",
        "--max-parallel",
        "3",
        "--account",
        "lab",
        "--sbatch-arg",
        "--exclusive",
        "--sbatch-arg=--qos=low",
    ];
    let out = run_ok_in(&dir, &args);
    let abs = std::fs::canonicalize(&dir).unwrap();
    let script_path = abs.join("rel/dry-run/slurm/sweep.sbatch");
    let script = std::fs::read_to_string(&script_path).expect("the script is written");
    assert!(stdout(&out).starts_with(&format!("{}\n", script_path.display())));
    assert!(stdout(&out).contains(&script));
    let logs = abs.join("rel/dry-run/slurm");
    for line in [
        "#SBATCH --job-name=dry-run".to_string(),
        "#SBATCH --array=0,3-5%3".into(),
        format!("#SBATCH --output={}/%A_%a.out", logs.display()),
        format!("#SBATCH --chdir={}", abs.display()),
        "#SBATCH --partition=short".into(),
        "#SBATCH --account=lab".into(),
        "#SBATCH --time=00:10:00".into(),
        "#SBATCH --mem=1G".into(),
        "#SBATCH --cpus-per-task=2".into(),
        "#SBATCH --exclusive".into(),
        "#SBATCH --qos=low".into(),
        format!(
            "exec '{}' run '{}' --index \"$SLURM_ARRAY_TASK_ID\" --out '{}' --resume",
            std::fs::canonicalize(env!("CARGO_BIN_EXE_coherent"))
                .unwrap()
                .display(),
            abs.join("m.toml").display(),
            abs.join("rel").display()
        ),
    ] {
        assert!(script.lines().any(|l| l == line), "{line} not in\n{script}");
    }

    // With every run done, nothing is submitted.
    for index in ["0", "3", "4", "5"] {
        let _out = run_ok_in(&dir, &["run", "m.toml", "--index", index, "--out", "rel"]);
    }
    let none = coherent_in(
        &dir,
        &["sweep", "m.toml", "--out", "rel", "--slurm", "--dry-run"],
    );
    assert!(none.status.success(), "{}", stderr(&none));
    assert!(
        stdout(&none).contains("nothing to submit"),
        "{}",
        stdout(&none)
    );
}

#[test]
fn sweep_modes_and_slurm_options_are_checked() {
    for args in [
        &["sweep", "experiments/toy-linear.toml", "--list", "--status"][..],
        &["sweep", "experiments/toy-linear.toml", "--partition", "x"],
        &["sweep", "experiments/toy-linear.toml", "--jobs", "0"],
        &[
            "sweep",
            "experiments/toy-linear.toml",
            "--jobs",
            "2",
            "--slurm",
        ],
    ] {
        let out = coherent(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
}

#[test]
fn an_axis_of_whole_plugin_tables_runs_each_plugin_with_its_parameters() {
    let (dir, m) = scratch_manifest(
        "sweep-plugin-tables",
        "tables.toml",
        &four_runs_sweeping(
            "tables",
            "aggregator = [{ plugin = \"mean\" }, { plugin = \"winsorized\", c = 2 }]",
        ),
    );
    let out = dir.join("runs");
    run_ok(&["sweep", &m, "--jobs", "2", "--out", &out.to_string_lossy()]);
    let names = [
        "000-variant=real-aggregator=mean",
        "001-variant=real-aggregator=winsorized_c2",
        "002-variant=random-aggregator=mean",
        "003-variant=random-aggregator=winsorized_c2",
    ];
    for (k, name) in names.iter().enumerate() {
        let run = out.join("tables").join(name);
        let resolved = std::fs::read_to_string(run.join("manifest.toml")).unwrap();
        let meta: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(run.join("run.json")).unwrap()).unwrap();
        let (plugin, label) = if k % 2 == 0 {
            ("mean", "mean")
        } else {
            ("winsorized", "winsorized c=2")
        };
        assert!(
            resolved.contains(&format!("plugin = \"{plugin}\"")),
            "{resolved}"
        );
        assert_eq!(resolved.contains("c = 2"), k % 2 == 1, "{resolved}");
        assert_eq!(meta["params"]["aggregator"], label, "{meta}");
        let uses = meta["plugins"].as_array().unwrap();
        assert!(uses
            .iter()
            .any(|u| u["role"] == "aggregator" && u["plugin"] == plugin));
    }
    // A bad value is located in the sweep and the error names the run and its values.
    let (_, bad) = scratch_manifest(
        "sweep-plugin-tables-bad",
        "bad.toml",
        &four_runs_sweeping(
            "bad",
            "aggregator = [{ plugin = \"mean\" }, { plugin = \"winsorized\", c = \"two\" }]",
        ),
    );
    let text = fails(2, &["check", &bad], "a bad value of a table axis");
    assert!(text.contains("bad.toml:21:65:"), "{text}");
    assert!(
        text.contains("note: in run 001-variant=real-aggregator=winsorized_ctwo of the sweep (dataset.variant = real, aggregator = winsorized c=two)"),
        "{text}"
    );
}
