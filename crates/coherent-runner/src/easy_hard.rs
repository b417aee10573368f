//! Easy vs hard examples (Zielinski et al. 2020; Chatterjee & Zielinski 2022): examples that
//! are learned early have much in common with others, so a network trained on them
//! generalises better than one trained on the examples learned late.
//!
//! A run with an `[easy_hard]` section has three parts, each a complete run directory:
//!
//! ```text
//! <run>/probe/   the manifest's run, recording every training example's learning time
//! <run>/easy/    a fresh model trained on the earliest-learned `fraction` of the examples
//! <run>/hard/    a fresh model trained on the latest-learned `fraction` (never-learned last)
//! <run>/summary.json, DONE   the probe's summary plus `easy_hard`, written last
//! ```
//!
//! Each of the easy and hard splits is shuffled (with the run's seed) and divided into a
//! training part and a held-out part (`held_out`); the sub-run's "test" split is its held-out
//! part, so its `test_acc` measures generalisation within the split.

use crate::learning::order_by_learning_time;
use crate::manifest::Manifest;
use crate::plan::{plan, RunPlan};
use crate::record::{
    read_summary, remove_stale, write_atomic, write_json_atomic, RecordError, RunDir, DONE, FAILED,
};
use crate::sweep::RunSpec;
use crate::train::train;
use coherent_core::{Dataset, InputShape, Registry, Rng, Split};
use indicatif::ProgressBar;
use serde_json::{json, Value};
use std::path::Path;

/// A training set cut into a training part and a held-out part.
struct SubsetData {
    shape: InputShape,
    outputs: usize,
    train: Split,
    held_out: Split,
}

impl Dataset for SubsetData {
    fn input_shape(&self) -> InputShape {
        self.shape
    }
    fn train(&self) -> &Split {
        &self.train
    }
    fn test(&self) -> &Split {
        &self.held_out
    }
    fn outputs(&self) -> usize {
        self.outputs
    }
}

fn failure(path: &Path, problem: String) -> RecordError {
    RecordError {
        path: path.to_path_buf(),
        source: std::io::Error::other(problem),
    }
}

/// Reads the `learned_step` column of a `learning_times.csv`.
pub fn read_learning_times(path: &Path) -> Result<Vec<Option<usize>>, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|source| RecordError {
        path: path.to_path_buf(),
        source,
    })?;
    text.lines()
        .skip(1)
        .enumerate()
        .map(|(k, line)| {
            let field = line.rsplit(',').next().unwrap_or("");
            match field {
                "" => Ok(None),
                f => f
                    .parse()
                    .map(Some)
                    .map_err(|_| failure(path, format!("line {}: `{f}` is not a step", k + 2))),
            }
        })
        .collect()
}

/// Trains `plan` into `dir`, or reads the summary of a complete run there when resuming.
fn run_part(
    plan: RunPlan,
    experiment: &str,
    dir: &Path,
    bar: &ProgressBar,
    resume: bool,
) -> Result<Value, RecordError> {
    if resume && RunDir::is_done(dir) {
        return read_summary(dir);
    }
    train(plan, experiment, dir, bar, resume)
}

/// Runs the probe, the easy and the hard model of `spec` into `dir`; returns the summary.
pub fn run(
    manifest: &Manifest,
    spec: &RunSpec,
    registry: &Registry,
    mut probe: RunPlan,
    dir: &Path,
    bar: &ProgressBar,
    resume: bool,
) -> Result<Value, RecordError> {
    let config = probe.easy_hard.clone().expect("an [easy_hard] run");
    let seed = probe.seed;
    probe.evaluation.learning_times = true;
    remove_stale(dir, &["summary.json", DONE, FAILED])?;
    let probe_dir = dir.join("probe");
    let mut summary = run_part(probe, &manifest.name, &probe_dir, bar, resume)?;
    let times = read_learning_times(&probe_dir.join("learning_times.csv"))?;
    let order = order_by_learning_time(&times);
    let k = ((config.fraction * order.len() as f64).round() as usize).min(order.len() / 2);
    if k < 2 {
        return Err(failure(
            dir,
            format!(
                "[easy_hard] fraction {} of {} training examples leaves fewer than 2 examples per split",
                config.fraction,
                order.len()
            ),
        ));
    }
    let mut parts = serde_json::Map::new();
    for (name, mut members) in [
        ("easy", order[..k].to_vec()),
        ("hard", order[order.len() - k..].to_vec()),
    ] {
        let mut p = plan(manifest, spec, registry).map_err(|e| failure(dir, e.to_string()))?;
        Rng::derived(seed, &format!("easy-hard-{name}")).shuffle(&mut members);
        let held = ((config.held_out * k as f64).round() as usize).clamp(1, k - 1);
        let full = p.dataset.train();
        p.dataset = Box::new(SubsetData {
            shape: p.dataset.input_shape(),
            outputs: p.dataset.outputs(),
            train: full.select(&members[held..]),
            held_out: full.select(&members[..held]),
        });
        let n = k - held;
        p.metrics.retain(|(plugin, m)| {
            let fits = m.sample_size() <= n;
            if !fits {
                log::warn!("{name} split: metric `{plugin}` samples more than its {n} training examples; left out");
            }
            fits
        });
        if let Some(epochs) = config.epochs {
            // `[easy_hard] epochs` sets the length of these runs; `max_steps` is the probe's.
            (p.training.epochs, p.training.max_steps) = (epochs, None);
        }
        p.training.batch_size = p.training.batch_size.min(n);
        p.easy_hard = None;
        let s = run_part(p, &manifest.name, &dir.join(name), bar, resume)?;
        let f = &s["final"];
        parts.insert(
            name.into(),
            json!({
                "train_examples": n,
                "held_out_examples": held,
                "train_acc": f["train_acc"],
                "held_out_acc": f["test_acc"],
                "held_out_loss": f["test_loss"],
                "generalisation_gap": f["train_acc"].as_f64().zip(f["test_acc"].as_f64()).map(|(a, b)| a - b),
                "status": s["status"],
            }),
        );
    }
    let acc = |n: &str| parts[n]["held_out_acc"].as_f64();
    if let (Some(e), Some(h)) = (acc("easy"), acc("hard")) {
        log::info!("easy vs hard: held-out accuracy {e:.3} (easy) vs {h:.3} (hard)");
        parts.insert("easy_minus_hard_held_out_acc".into(), json!(e - h));
    }
    summary["easy_hard"] = Value::Object(parts);
    write_json_atomic(&dir.join("summary.json"), &summary)?;
    write_atomic(&dir.join(DONE), b"")?;
    Ok(summary)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_learning_times_and_names_the_bad_line() {
        let dir = std::env::temp_dir().join(format!("coherent-lt-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("learning_times.csv");
        std::fs::write(
            &path,
            "index,label,corrupted,learned_step\n0,1,0,40\n1,2,1,\n",
        )
        .unwrap();
        assert_eq!(read_learning_times(&path).unwrap(), vec![Some(40), None]);
        std::fs::write(&path, "index,label,corrupted,learned_step\n0,1,0,4x\n").unwrap();
        let err = read_learning_times(&path).unwrap_err().to_string();
        assert!(
            err.contains("learning_times.csv") && err.contains("line 2"),
            "{err}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
