//! A measurement point: evaluation of the training and test splits, the metrics due, the
//! observers; one line of `metrics.jsonl`, the log line and the progress bar's message.

use super::{Pass, Trainer};
use crate::evaluate::evaluate;
use coherent_core::{Evaluation, Measurements};
use coherent_record::{MetricsLine, RecordError};

impl Trainer<'_> {
    /// Measures at `step`; `false` if a value is not finite (the run diverged).
    pub(super) fn measure(&mut self, step: usize) -> Result<bool, RecordError> {
        let (train, test) = (self.data.train(), self.data.test());
        let plan = &mut self.plan;
        let model = plan.model.as_mut();
        let train_eval = evaluate(model, train, self.sizes.eval_limit, "train");
        let test_eval = evaluate(model, test, usize::MAX, "test");
        let mut values = train_eval.values.clone();
        values.extend(test_eval.values.clone());
        let pass = Pass {
            model: &mut *model,
            layers: &self.layers,
            train,
        };
        self.metrics
            .measure(&mut plan.metrics, step, self.sizes.total, pass, &mut values);
        let mut observed = Measurements::new(true);
        for o in &mut plan.observers {
            let mut eval = Evaluation {
                step,
                train_losses: &train_eval.losses,
                train_correct: &train_eval.correct,
                test_losses: &test_eval.losses,
                test_correct: &test_eval.correct,
                values: &values,
                model: &mut *model,
                train,
            };
            o.observer.on_evaluation(&mut eval, &mut observed);
        }
        values.extend(observed);
        let finite = values.values().iter().all(|(_, v)| v.is_finite());
        let values = values.into_values();
        let named = values.iter().map(|(k, v)| (k.as_str(), *v));
        self.progress.tracker.record(step, named);
        let line = MetricsLine {
            step,
            epoch: step as f64 / self.sizes.steps_per_epoch as f64,
            values,
            elapsed_s: self.elapsed(),
        };
        self.run.append_metrics(&line)?;
        self.show(step);
        Ok(finite)
    }

    /// The log line and the progress bar's message: accuracies and the headline quantities.
    fn show(&self, step: usize) {
        let show = |k: &str| {
            let v = self.progress.tracker.last(k);
            v.map_or("-".into(), |v| format!("{v:.3}"))
        };
        let headline: Vec<String> = self
            .plan
            .metrics
            .iter()
            .flat_map(|m| m.headline.iter())
            .map(|q| format!("  {q} {}", show(q)))
            .collect();
        log::info!(
            "step {step:>6}  train_acc {}  test_acc {}{}",
            show("train_acc"),
            show("test_acc"),
            headline.concat()
        );
        self.options.bar.set_message(format!(
            "{}{}  test_acc {}",
            self.plan.spec.dir_name(),
            headline.concat(),
            show("test_acc")
        ));
    }
}
