//! `run.json`: what ran, where and when.

use crate::ordered::{self, Text};
use crate::{RunStatus, SCHEMA};
use serde::{Deserialize, Serialize};

/// One parameterised layer of the model.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerMeta {
    /// Its name (`fc1`, `conv2`, ...), the suffix of per-layer quantities.
    pub name: String,
    /// Its kind (`dense`, `conv2d`, `group_norm`, ...).
    #[serde(default)]
    pub kind: String,
    /// Its number of parameters.
    #[serde(default)]
    pub params: usize,
    /// Its parameters as named tensors, in the order of its flat parameters: the tensors
    /// `<name>.<tensor>` of its weights files (empty in records written before they were).
    #[serde(default)]
    pub tensors: Vec<TensorMeta>,
}

impl LayerMeta {
    /// The layer's tensors: [`LayerMeta::tensors`] if they hold its parameters, else one flat
    /// tensor `weight` `[params]`.
    pub fn described(&self) -> Vec<TensorMeta> {
        let held: usize = self.tensors.iter().map(TensorMeta::len).sum();
        match held == self.params && !self.tensors.is_empty() {
            true => self.tensors.clone(),
            false => vec![TensorMeta {
                name: "weight".into(),
                shape: vec![self.params],
            }],
        }
    }
}

/// One named parameter tensor of a layer.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TensorMeta {
    /// Its name within the layer (`weight`, `bias`).
    pub name: String,
    /// Its shape (row-major: PyTorch's layout).
    pub shape: Vec<usize>,
}

impl TensorMeta {
    /// Number of values.
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether it holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Which run a record is of: its experiment, its directory name, its place and values in the
/// sweep (the first fields of `run.json` and `summary.json` alike).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunId {
    /// The experiment (the manifest's name).
    #[serde(default)]
    pub experiment: String,
    /// The run's directory name.
    #[serde(default)]
    pub run: String,
    /// The run's index in the sweep.
    #[serde(default)]
    pub index: usize,
    /// The run's sweep values, `section.key` -> value as written in the manifest.
    #[serde(default, with = "ordered")]
    pub params: Vec<(String, Text)>,
}

/// A crate by name and version.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CrateMeta {
    /// The package name (`coherent-mlp`).
    pub name: String,
    /// Its version.
    pub version: String,
}

/// One plugin a run used, and the crate that provided it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PluginUse {
    /// Its role: `dataset`, `model`, `aggregator`, `metric`, `observer` or `protocol`.
    pub role: String,
    /// Its registry name.
    pub plugin: String,
    /// The crate that provided it.
    #[serde(rename = "crate")]
    pub krate: CrateMeta,
}

/// The contents of `run.json`, written when a run starts and again when it ends.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunMeta {
    /// Record schema ([`SCHEMA`]; 1 when absent).
    #[serde(default = "schema_one")]
    pub schema: u32,
    /// The program that ran it (`coherent`, or a researcher's own binary).
    #[serde(default)]
    pub program: String,
    /// coherent's version.
    #[serde(default)]
    pub version: String,
    /// The framework's git commit, captured when the program was built (if it was built from a
    /// git checkout).
    #[serde(default)]
    pub git_commit: Option<String>,
    /// Every crate of plugins linked into the program, with its version.
    #[serde(default)]
    pub plugin_crates: Vec<CrateMeta>,
    /// Each plugin the run used, and the crate that provided it.
    #[serde(default)]
    pub plugins: Vec<PluginUse>,
    /// The machine.
    #[serde(default)]
    pub host: String,
    /// Which run.
    #[serde(flatten)]
    pub id: RunId,
    /// The run's seed.
    #[serde(default)]
    pub seed: u64,
    /// Number of model parameters.
    #[serde(default)]
    pub num_params: usize,
    /// The model's parameterised layers.
    #[serde(default)]
    pub layers: Vec<LayerMeta>,
    /// Sample size `m` of each metric plugin.
    #[serde(default, with = "ordered")]
    pub metric_samples: Vec<(String, usize)>,
    /// When the run first started (UTC, `YYYY-MM-DDThh:mm:ssZ`).
    #[serde(default)]
    pub started: String,
    /// The step a resumed attempt continued from.
    #[serde(default)]
    pub resumed_at_step: Option<usize>,
    /// When the resumed attempt started.
    #[serde(default)]
    pub resumed: Option<String>,
    /// Why the checkpoints found when resuming could not be used (the run then started over):
    /// one line per checkpoint.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub resume_refused: Vec<String>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RunStatus>,
}

fn schema_one() -> u32 {
    1
}

impl Default for RunMeta {
    fn default() -> RunMeta {
        RunMeta {
            schema: SCHEMA,
            program: String::new(),
            version: String::new(),
            git_commit: None,
            plugin_crates: Vec::new(),
            plugins: Vec::new(),
            host: String::new(),
            id: RunId::default(),
            seed: 0,
            num_params: 0,
            layers: Vec::new(),
            metric_samples: Vec::new(),
            started: String::new(),
            resumed_at_step: None,
            resumed: None,
            resume_refused: Vec::new(),
            ended: None,
            status: None,
        }
    }
}

impl RunMeta {
    /// The sample size of the metric `plugin`, if the run had it.
    pub fn metric_sample(&self, plugin: &str) -> Option<usize> {
        self.metric_samples
            .iter()
            .find(|(p, _)| p == plugin)
            .map(|(_, m)| *m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_one_record_reads_with_numbers_as_sweep_values() {
        let text = r#"{"program": "coherent", "experiment": "e", "run": "001-seed=1",
            "params": {"seed": 1, "dataset.label_noise": "0.5"},
            "layers": [{"name": "fc1", "kind": "dense", "params": 10}],
            "metric_samples": {"coherence": 1000}, "started": "2026-01-01T00:00:00Z"}"#;
        let meta: RunMeta = serde_json::from_str(text).unwrap();
        assert_eq!(meta.schema, 1);
        assert_eq!(meta.id.params[0], ("seed".into(), Text("1".into())));
        assert_eq!(meta.id.params[1].1 .0, "0.5");
        assert_eq!(
            (meta.id.experiment.as_str(), meta.id.run.as_str()),
            ("e", "001-seed=1")
        );
        assert_eq!(meta.metric_sample("coherence"), Some(1000));
        assert!(
            meta.layers[0].tensors.is_empty(),
            "records before tensors read"
        );
        assert_eq!(
            meta.layers[0].described(),
            [TensorMeta {
                name: "weight".into(),
                shape: vec![10]
            }]
        );
        let back: RunMeta = serde_json::from_str(&serde_json::to_string(&meta).unwrap()).unwrap();
        assert_eq!(back, meta);
    }
}
