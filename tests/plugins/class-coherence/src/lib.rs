//! Observer plugin `class_coherence`, a small research protocol written the way a researcher
//! would write one, without touching the runner: the m-coherence `|sum_i g_i|^2 / sum_i
//! |g_i|^2` of the first `sample` training examples of one class (their labels as trained
//! on), at every evaluation, whole network. The tests enable it from a manifest and check it
//! against a brute-force computation from per-example gradients.

use coherent_core::{
    squared_norm, Batch, BatchGrads, ConfigError, Evaluation, GradRequest, Measurements,
    ObserverEntry, ObserverOutput, PluginArgs, PluginConfig, RunEnd, RunInfo, RunObserver, Split,
    Targets,
};
use serde::Deserialize;

coherent_core::plugin_crate!();

/// Parameters of `class_coherence`.
#[derive(Clone, Debug, Deserialize, PluginConfig)]
#[serde(deny_unknown_fields)]
pub struct ClassCoherenceConfig {
    /// The class.
    pub class: u32,
    /// How many of its training examples (the first ones).
    #[serde(default = "hundred")]
    pub sample: usize,
}

fn hundred() -> usize {
    100
}

/// The observer.
#[derive(Debug, Default)]
pub struct ClassCoherence {
    config: Option<ClassCoherenceConfig>,
    members: Vec<usize>,
    peak: Option<(f64, usize)>,
    batch: Batch,
    grads: BatchGrads,
}

/// `|S|^2 / Q` of one pass's gradients (whole network).
pub fn m_coherence(grads: &BatchGrads) -> f64 {
    let s2 = squared_norm(&grads.sum);
    let q: f64 = grads.sq_norms.iter().flatten().map(|&v| v as f64).sum();
    s2 / q
}

/// The first `sample` training examples of `class` (by the labels trained on).
pub fn members(train: &Split, class: u32, sample: usize) -> Result<Vec<usize>, String> {
    let Targets::Classes { labels, .. } = &train.targets else {
        return Err("needs class labels".into());
    };
    let of_class = (0..labels.len()).filter(|&i| labels[i] == class);
    Ok(of_class.take(sample).collect())
}

impl RunObserver for ClassCoherence {
    fn begin(&mut self, run: &RunInfo<'_>) -> Result<(), String> {
        let config = self.config.as_ref().expect("built with a config");
        self.members = members(run.train, config.class, config.sample)?;
        match self.members.len() {
            0 => Err(format!("no training example has class {}", config.class)),
            _ => Ok(()),
        }
    }

    fn on_evaluation(&mut self, eval: &mut Evaluation<'_>, out: &mut Measurements) {
        self.batch.gather(eval.train, &self.members);
        let request = GradRequest::SQ_NORMS;
        eval.model
            .forward_backward(&self.batch, &request, &mut self.grads);
        let c = m_coherence(&self.grads);
        if self.peak.is_none_or(|(p, _)| c > p) {
            self.peak = Some((c, eval.step));
        }
        out.push("class_coherence", c);
    }

    fn finish(&mut self, _end: &RunEnd<'_>) -> ObserverOutput {
        let config = self.config.as_ref().expect("built with a config");
        ObserverOutput {
            summary: Some(coherent_core::serde_json::json!({
                "class": config.class,
                "examples": self.members.len(),
                "peak": self.peak.map(|p| p.0),
                "peak_step": self.peak.map(|p| p.1),
            })),
            ..ObserverOutput::default()
        }
    }
}

/// Builds the observer from its manifest table.
pub fn build(args: &PluginArgs) -> Result<Box<dyn RunObserver>, ConfigError> {
    let config: ClassCoherenceConfig = args.parse()?;
    if config.sample < 2 {
        return Err(args.invalid("sample", "must be at least 2"));
    }
    Ok(Box::new(ClassCoherence {
        config: Some(config),
        ..ClassCoherence::default()
    }))
}

coherent_core::register! {
    ObserverEntry {
        name: "class_coherence",
        description: "m-coherence of the first examples of one class (a test observer).",
        params: ClassCoherenceConfig::params,
        build,
        default_on: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use coherent_core::{ModelSpec, Split};

    /// The observer's value against per-example gradients from one backward pass per example.
    #[test]
    fn matches_a_brute_force_computation() {
        let data =
            (coherent_mnist::build)(&PluginArgs::from_toml("train_limit = 400").unwrap()).unwrap();
        let spec = ModelSpec::classifier(data.input_shape(), 10).with_seed(7);
        let mut model =
            coherent_mlp::build(&PluginArgs::from_toml("hidden = [20]").unwrap(), &spec).unwrap();
        let mut observer =
            build(&PluginArgs::from_toml("class = 3\nsample = 12").unwrap()).unwrap();
        let train: &Split = data.train();
        let layers = model.layers().to_vec();
        let run = RunInfo::new(7, &layers, data.as_ref(), 1);
        observer.begin(&run).unwrap();
        let (values, mut out) = (Measurements::default(), Measurements::default());
        let mut eval = Evaluation::new(0, &values, model.as_mut(), train);
        observer.on_evaluation(&mut eval, &mut out);
        let got = out.get("class_coherence").unwrap();

        let members = members(train, 3, 12).unwrap();
        let mut batch = Batch::default();
        batch.gather(train, &members);
        let want = coherent_nn::check::m_coherence_by_loop(model.as_mut(), &batch);
        assert!((got - want).abs() < 1e-4 * want, "{got} vs {want}");
        assert!(got > 1.0 && got < 12.0);
    }
}
