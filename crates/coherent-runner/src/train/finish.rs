//! The end of a run: the final weights, the observers' parts, `summary.json`, `run.json`,
//! `DONE`.

use super::{Status, Trainer};
use crate::meta::utc_timestamp;
use coherent_core::RunEnd;
use coherent_record::{files, RecordError, RunStatus, Summary, SCHEMA};
use std::time::SystemTime;

impl Trainer<'_> {
    /// Writes the record of the run that ended with `status` and returns its summary.
    pub(super) fn finish(mut self, status: Status) -> Result<Summary, RecordError> {
        let name = self.plan.spec.dir_name();
        self.write_weights(files::FINAL_WEIGHTS)?;
        let mut summary = self.summary(status);
        let train = self.data.train();
        let end = RunEnd {
            steps: self.progress.step,
            diverged: matches!(status, Status::Diverged(_)),
            train,
        };
        for o in &mut self.plan.observers {
            let out = o.observer.finish(&end);
            for (file, bytes) in &out.files {
                self.run.write(file, bytes)?;
            }
            if let Some(part) = out.summary {
                summary.parts.insert(o.name.clone(), part);
            }
            summary.table.extend(out.table);
        }
        if let Status::Diverged(s) = status {
            log::warn!(
                "run {name} diverged at step {s} (non-finite loss, update or measurement); stopped"
            );
        }
        self.meta.ended = Some(utc_timestamp(SystemTime::now()));
        self.meta.status = Some(summary.status);
        self.run.write_json(files::RUN, &self.meta)?;
        self.run.write_json(files::SUMMARY, &summary)?;
        self.run.finish()?;
        let checkpoints = [
            files::CHECKPOINT,
            files::PREVIOUS_CHECKPOINT,
            files::OLD_CHECKPOINT,
        ];
        let _ = coherent_record::remove_stale(self.run.path(), &checkpoints);
        Ok(summary)
    }

    /// The summary's own part: status, sizes, final and peak values.
    fn summary(&self, status: Status) -> Summary {
        let (run_status, diverged_at) = match status {
            Status::Completed => (RunStatus::Completed, None),
            Status::Diverged(s) => (RunStatus::Diverged, Some(s)),
        };
        let train = self.data.train();
        let n = train.len();
        let eps = train.corrupted.iter().filter(|&&c| c).count() as f64 / n.max(1) as f64;
        let tracker = &self.progress.tracker;
        let mut last = tracker.finals().clone();
        if let (Some(tr), Some(te)) = (tracker.last("train_acc"), tracker.last("test_acc")) {
            let classes = self.data.outputs().max(1) as f64;
            last.insert(
                "adjusted_overfit".into(),
                adjusted_overfit(tr, te, eps, classes),
            );
        }
        let mut headline: Vec<String> = Vec::new();
        for q in self.plan.metrics.iter().flat_map(|m| m.headline.iter()) {
            if !headline.iter().any(|h| h == q) {
                headline.push(q.to_string());
            }
        }
        let mut summary = Summary::new(run_status);
        summary.schema = SCHEMA;
        summary.id = self.meta.id.clone();
        summary.diverged_at_step = diverged_at;
        summary.steps = self.progress.step;
        summary.epochs = self.progress.step as f64 / self.sizes.steps_per_epoch as f64;
        summary.elapsed_s = self.elapsed();
        summary.corrupted_fraction = eps;
        summary.headline = headline;
        summary.last = last;
        summary.peak = tracker.peaks().clone();
        summary
    }
}

/// Adjusted overfit (Chatterjee 2020): training accuracy above what the pristine share and the
/// test accuracy explain, `train_acc - (eps / classes + (1 - eps) test_acc)`, with `eps` the
/// fraction of training examples whose labels were corrupted.
pub fn adjusted_overfit(train_acc: f64, test_acc: f64, eps: f64, classes: f64) -> f64 {
    train_acc - (eps / classes + (1.0 - eps) * test_acc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adjusted_overfit_follows_its_definition() {
        // clean data: train minus test
        assert!((adjusted_overfit(0.9, 0.8, 0.0, 10.0) - 0.1).abs() < 1e-12);
        // half the labels random over 10 classes: 0.05 + 0.5 * 0.8 = 0.45 explained
        assert!((adjusted_overfit(0.6, 0.8, 0.5, 10.0) - 0.15).abs() < 1e-12);
    }
}
