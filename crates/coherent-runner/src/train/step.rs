//! One optimisation step: the batch, one backward pass with what the aggregator and the
//! observers ask for, the aggregated direction, the observers, the update.

use super::Trainer;
use coherent_core::{aggregate_step, StepGrads, StepInfo};

impl Trainer<'_> {
    /// Makes step `step`; `false` if its loss or its update is not finite (the run diverged).
    pub(super) fn step(&mut self, step: usize) -> bool {
        self.next_batch(step);
        let train = self.data.train();
        let plan = &mut self.plan;
        let work = &mut self.work;
        let info = StepInfo {
            step,
            indices: &work.indices,
            train,
        };
        // The observers' subsets follow the aggregator's, each observer's at its offset.
        let mut request = plan.aggregator.needs();
        work.offsets.clear();
        for o in &mut plan.observers {
            work.offsets.push(request.subsets.len());
            request = request.union(&o.observer.needs(&info));
        }
        work.offsets.push(request.subsets.len());
        work.batch.gather(train, &work.indices);
        plan.model
            .forward_backward(&work.batch, &request, &mut work.grads);
        if !work.grads.losses.iter().all(|l| l.is_finite()) {
            return false;
        }
        let (model, aggregator) = (plan.model.as_ref(), plan.aggregator.as_mut());
        aggregate_step(
            aggregator,
            model,
            &work.grads,
            request.blocks,
            &mut work.direction,
        );
        if !work.direction.iter().flatten().all(|v| v.is_finite()) {
            return false;
        }
        for (k, o) in plan.observers.iter_mut().enumerate() {
            let subsets = &work.grads.subset_sums[work.offsets[k]..work.offsets[k + 1]];
            let grads = StepGrads {
                batch: &work.grads,
                subsets,
                direction: &work.direction,
            };
            o.observer.after_step(&info, &grads);
        }
        self.sgd.step(plan.model.params_mut(), &work.direction);
        true
    }

    /// The examples of step `step` (in `work.indices`), reshuffling at each epoch's start.
    fn next_batch(&mut self, step: usize) {
        let (n, b) = (self.progress.order.len(), self.plan.training.batch_size);
        let pos = (step % self.sizes.steps_per_epoch) * b;
        if pos == 0 {
            self.progress.shuffle.shuffle(&mut self.progress.order);
        }
        self.work.indices.clear();
        self.work
            .indices
            .extend_from_slice(&self.progress.order[pos..(pos + b).min(n)]);
    }
}
