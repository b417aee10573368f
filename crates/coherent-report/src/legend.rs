//! Legend labels: what tells the runs of a plot apart.
//!
//! A run is labelled by its sweep values, `label_noise=1.0 seed=0`, with each axis's section
//! (`dataset.`) dropped unless two axes would then share a name. A run without sweep values is
//! labelled by its name; runs of different experiments are prefixed by the experiment when
//! their labels would otherwise coincide.

use crate::run::Run;
use std::collections::{BTreeMap, BTreeSet, HashSet};

/// The axis name without its section: `dataset.label_noise` -> `label_noise`.
pub fn short_key(key: &str) -> &str {
    key.rsplit_once('.').map_or(key, |(_, k)| k)
}

/// One label per run, unique whenever the runs' names or experiments differ.
pub fn labels(runs: &[Run]) -> Vec<String> {
    // Which short names stand for more than one full key?
    let mut full_keys: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for run in runs {
        for (k, _) in &run.params {
            full_keys.entry(short_key(k)).or_default().insert(k);
        }
    }
    let from_params = |run: &Run| {
        if run.params.is_empty() {
            return run.name.clone();
        }
        let parts: Vec<String> = run
            .params
            .iter()
            .map(|(k, v)| {
                let short = short_key(k);
                let key = if full_keys[short].len() > 1 { k } else { short };
                format!("{key}={v}")
            })
            .collect();
        parts.join(" ")
    };
    let mut labels: Vec<String> = runs.iter().map(from_params).collect();
    let experiments: HashSet<&str> = runs.iter().map(|r| r.experiment.as_str()).collect();
    if !all_unique(&labels) && experiments.len() > 1 {
        labels = runs
            .iter()
            .zip(&labels)
            .map(|(r, l)| format!("{}: {l}", r.experiment))
            .collect();
    }
    if !all_unique(&labels) {
        labels = runs
            .iter()
            .map(|r| match experiments.len() {
                1 => r.name.clone(),
                _ => format!("{}/{}", r.experiment, r.name),
            })
            .collect();
    }
    labels
}

fn all_unique(labels: &[String]) -> bool {
    let set: HashSet<&String> = labels.iter().collect();
    set.len() == labels.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(experiment: &str, name: &str, params: &[(&str, &str)]) -> Run {
        Run::named(experiment, name).with_params(params)
    }

    #[test]
    fn sweep_values_without_their_section() {
        let runs = [
            run("e", "000", &[("dataset.label_noise", "0.0"), ("seed", "0")]),
            run("e", "001", &[("dataset.label_noise", "1.0"), ("seed", "0")]),
        ];
        assert_eq!(
            labels(&runs),
            ["label_noise=0.0 seed=0", "label_noise=1.0 seed=0"]
        );
    }

    #[test]
    fn sections_stay_when_two_axes_share_a_name() {
        let runs = [run(
            "e",
            "000",
            &[("model.plugin", "mlp"), ("aggregator.plugin", "mean")],
        )];
        assert_eq!(labels(&runs), ["model.plugin=mlp aggregator.plugin=mean"]);
    }

    #[test]
    fn runs_without_sweep_values_use_their_name() {
        let runs = [run("toy", "000", &[]), run("quick", "000", &[])];
        assert_eq!(labels(&runs), ["toy: 000", "quick: 000"]);
        let runs = [
            run("a", "000", &[("seed", "0")]),
            run("b", "000", &[("seed", "1")]),
        ];
        assert_eq!(
            labels(&runs),
            ["seed=0", "seed=1"],
            "distinct without the experiment"
        );
    }

    #[test]
    fn equal_labels_in_one_experiment_fall_back_to_run_names() {
        let runs = [
            run("e", "000-x", &[("seed", "0")]),
            run("e", "001-y", &[("seed", "0")]),
        ];
        assert_eq!(labels(&runs), ["000-x", "001-y"]);
    }
}
