//! The weights a run keeps: `weights/initial.safetensors` before the first step,
//! `weights/step-<N>.safetensors` every `[record] weights_every` steps and
//! `weights/final.safetensors` at the end.

use super::Trainer;
use coherent_record::weights::{weights_file, WeightsMeta};
use coherent_record::{files, RecordError};

impl Trainer<'_> {
    /// Writes the model's weights as they stand to `weights/<name>`.
    pub(super) fn write_weights(&self, name: &str) -> Result<(), RecordError> {
        let meta = WeightsMeta {
            step: self.progress.step,
            manifest_hash: self.hash,
            coherent_version: env!("CARGO_PKG_VERSION").into(),
            experiment: self.meta.id.experiment.clone(),
            run: self.meta.id.run.clone(),
        };
        let file = weights_file(&self.meta.layers, &self.plan.model.params(), &meta);
        self.run.write_weights(name, &file)
    }

    /// Writes `weights/step-<step>.safetensors` when `step` is a multiple of `[record]
    /// weights_every` (the weights after `step` steps).
    pub(super) fn weights_if_due(&self, step: usize) -> Result<(), RecordError> {
        let every = self.sizes.weights_every;
        if step == 0 || every == 0 || !step.is_multiple_of(every) {
            return Ok(());
        }
        self.write_weights(&files::step_weights(step))
    }
}
