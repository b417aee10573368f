//! Protocol plugin `easy_hard`: easy vs hard examples (Zielinski et al. 2020; Chatterjee &
//! Zielinski 2022). Examples that are learned early have much in common with others, so a
//! network trained on them generalises better than one trained on the examples learned late.
//!
//! A manifest with an `[easy_hard]` section carries out each run in three parts, each a
//! complete run directory, built on the public training API of `coherent-runner`:
//!
//! ```text
//! <run>/probe/   the manifest's run, recording every training example's learning time
//! <run>/easy/    a fresh model trained on the earliest-learned `fraction` of the examples
//! <run>/hard/    a fresh model trained on the latest-learned `fraction` (never-learned last)
//! <run>/summary.json, DONE   the probe's summary plus `easy_hard`, written last
//! ```
//!
//! Each of the easy and hard splits is shuffled (with the run's seed) and divided into a
//! training part and a held-out part (`held_out`); the part's "test" split is its held-out
//! part, so its `test_acc` measures generalisation within the split. Every training example is
//! ranked, so `[evaluation] train_limit` is refused.

use coherent_core::{ConfigError, Dataset, InputShape, PluginArgs, PluginConfig, Rng, Split};
use coherent_record::learning_times::{order_by_learning_time, read};
use coherent_record::{files, write_atomic, write_json_atomic, RecordError, Summary};
use coherent_runner::{Protocol, ProtocolContext, ProtocolEntry, ProtocolIssue, RunPlan};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};
use std::sync::Arc;

coherent_core::plugin_crate!();

/// Parameters of `[easy_hard]`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct EasyHardConfig {
    /// Share of the training set in each of the easy and the hard split, in (0, 0.5].
    #[serde(default = "quarter")]
    pub fraction: f64,
    /// Share of each split held out to measure generalisation, in (0, 1).
    #[serde(default = "quarter")]
    pub held_out: f64,
    /// Epochs of the easy and hard models (`[training] max_steps` then applies to the probe
    /// only).
    #[serde(default)]
    #[param(default = "those of [training]")]
    pub epochs: Option<usize>,
}

fn quarter() -> f64 {
    0.25
}

/// The protocol.
#[derive(Clone, Debug)]
pub struct EasyHard {
    config: EasyHardConfig,
}

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
    RecordError::malformed(path, None, problem)
}

impl EasyHard {
    /// The plan of the `name` part (`easy` or `hard`) on the training examples `members`; its
    /// aggregator is configured again for the part's batches (`Err`: it refuses them).
    fn part_plan(
        &self,
        mut p: RunPlan,
        name: &str,
        mut members: Vec<usize>,
    ) -> Result<(RunPlan, usize, usize), String> {
        let k = members.len();
        Rng::derived(p.seed, &format!("easy-hard-{name}")).shuffle(&mut members);
        let held = ((self.config.held_out * k as f64).round() as usize).clamp(1, k - 1);
        let full = p.dataset.train();
        p.dataset = Arc::new(SubsetData {
            shape: p.dataset.input_shape(),
            outputs: p.dataset.outputs(),
            train: full.select(&members[held..]),
            held_out: full.select(&members[..held]),
        });
        let n = k - held;
        p.metrics.retain(|m| {
            let fits = m.schedule.sample <= n;
            if !fits {
                log::warn!("{name} split: metric `{}` samples more than its {n} training examples; left out", m.plugin);
            }
            fits
        });
        if let Some(epochs) = self.config.epochs {
            (p.training.epochs, p.training.max_steps) = (epochs, None);
        }
        p.training.batch_size = p.training.batch_size.min(n);
        p.optimizer = p
            .aggregator
            .configure(p.training.optimizer(Some(n)))
            .map_err(|r| {
                format!(
                    "the {name} split ({n} training examples in batches of {}) does not fit [aggregator]: {r}",
                    p.training.batch_size
                )
            })?;
        Ok((p, n, held))
    }
}

impl Protocol for EasyHard {
    fn check(&self, plan: &RunPlan) -> Vec<ProtocolIssue> {
        let mut issues = Vec::new();
        if plan.evaluation.train_limit.is_some() {
            issues.push(ProtocolIssue {
                key: "evaluation.train_limit",
                message: "`train_limit`: cannot be used with [easy_hard]".into(),
                help: Some("the easy and hard splits rank every training example by its learning time, so every example is evaluated; remove `train_limit` (or `[dataset] train_limit` shrinks the training set itself)".into()),
            });
        }
        if let Some(epochs) = self.config.epochs {
            // the easy and hard parts train on fewer examples than the probe: bounded by it
            let mut parts = plan.training.clone();
            (parts.epochs, parts.max_steps) = (epochs, None);
            if let Err(r) = parts.steps(plan.dataset.train().len()) {
                issues.push(ProtocolIssue {
                    key: "easy_hard.epochs",
                    message: format!("`epochs`: {}", r.message),
                    help: Some(coherent_runner::settings::STEPS_HELP.into()),
                });
            }
        }
        if !plan.observers.iter().any(|o| o.name == "learning_times") {
            issues.push(ProtocolIssue {
                key: "easy_hard",
                message: "[easy_hard] ranks examples by their learning times, but the `learning_times` observer is off".into(),
                help: Some("remove `enabled = false` of the `learning_times` observer".into()),
            });
        }
        issues
    }

    fn run(
        &mut self,
        probe: RunPlan,
        dir: &Path,
        cx: &mut ProtocolContext<'_, '_>,
    ) -> Result<Summary, RecordError> {
        coherent_record::remove_stale(dir, &[files::SUMMARY, files::DONE, files::FAILED])?;
        let probe_dir = dir.join("probe");
        let mut summary = cx.train(probe, &probe_dir)?;
        let times = read(&probe_dir.join(files::LEARNING_TIMES))?;
        let order: Vec<usize> = order_by_learning_time(&times)
            .into_iter()
            .map(|r| times[r].index)
            .collect();
        let k = ((self.config.fraction * order.len() as f64).round() as usize).min(order.len() / 2);
        if k < 2 {
            return Err(failure(dir, format!(
                "[easy_hard] fraction {} of {} training examples leaves fewer than 2 examples per split",
                self.config.fraction,
                order.len()
            )));
        }
        let mut parts = Map::new();
        for (name, members) in [
            ("easy", order[..k].to_vec()),
            ("hard", order[order.len() - k..].to_vec()),
        ] {
            let fresh = cx.replan().map_err(|e| failure(dir, e))?;
            let (plan, n, held) = self
                .part_plan(fresh, name, members)
                .map_err(|e| failure(dir, e))?;
            let s = cx.train(plan, &dir.join(name))?;
            let (tr, te) = (
                s.last.get("train_acc").copied(),
                s.last.get("test_acc").copied(),
            );
            parts.insert(
                name.into(),
                json!({
                    "train_examples": n,
                    "held_out_examples": held,
                    "train_acc": tr,
                    "held_out_acc": te,
                    "held_out_loss": s.last.get("test_loss"),
                    "generalisation_gap": tr.zip(te).map(|(a, b)| a - b),
                    "status": s.status,
                }),
            );
        }
        let acc = ["easy", "hard"].map(|n| parts[n]["held_out_acc"].as_f64());
        if let [Some(e), Some(h)] = acc {
            log::info!("easy vs hard: held-out accuracy {e:.3} (easy) vs {h:.3} (hard)");
            parts.insert("easy_minus_hard_held_out_acc".into(), json!(e - h));
        }
        for (name, acc) in ["easy", "hard"].iter().zip(acc) {
            let cell = acc.map_or("-".into(), |v| format!("{v:.3}"));
            summary.table.push((format!("{name} held-out acc"), cell));
        }
        summary
            .parts
            .insert("easy_hard".into(), Value::Object(parts));
        write_json_atomic(&dir.join(files::SUMMARY), &summary)?;
        write_atomic(&dir.join(files::DONE), b"")?;
        Ok(summary)
    }

    fn run_dirs(&self, dir: &Path) -> Vec<PathBuf> {
        ["probe", "easy", "hard"]
            .iter()
            .map(|p| dir.join(p))
            .collect()
    }
}

/// Builds the `easy_hard` protocol from its manifest section.
pub fn build(args: &PluginArgs) -> Result<Box<dyn Protocol>, ConfigError> {
    let config: EasyHardConfig = args.parse()?;
    if !(config.fraction > 0.0 && config.fraction <= 0.5) {
        return Err(args.invalid(
            "fraction",
            format!(
                "must be in (0, 0.5] (the easy and hard splits do not overlap), got {}",
                config.fraction
            ),
        ));
    }
    if !(config.held_out > 0.0 && config.held_out < 1.0) {
        return Err(args.invalid(
            "held_out",
            format!("must be in (0, 1), got {}", config.held_out),
        ));
    }
    if config.epochs == Some(0) {
        return Err(args.invalid("epochs", "must be at least 1"));
    }
    Ok(Box::new(EasyHard { config }))
}

coherent_core::register! {
    ProtocolEntry {
        name: "easy_hard",
        description: "Easy vs hard examples: a probe run's earliest- and latest-learned training examples each train a fresh model, and their held-out accuracies are compared.",
        params: EasyHardConfig::params,
        build,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_checked_where_written() {
        let text = "fraction = 0.7";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "0.7");
        let text = "held_out = 1.0";
        let err = build(&PluginArgs::from_toml(text).unwrap()).err().unwrap();
        assert_eq!(&text[err.span.unwrap()], "1.0");
        assert!(build(&PluginArgs::empty()).is_ok());
    }
}
