//! Observers driven by hand: the hooks through which research protocols watch a training run.
//!
//! The plain-SGD loop of `02-training-loop-with-a-suppression-strategy.rs` (half the labels
//! shuffled) is watched by two observer plugins, called where the runner calls them: `begin`
//! with a `RunInfo`; at each step `needs`, whose request joins the step's own (`loss_fractions`
//! asks for the summed gradient of the batch's pristine examples and of a random "null world"
//! set of the same size), then `after_step` with the gradients before the update; at each
//! evaluation `on_evaluation`, with the values measured there (test accuracy, accuracy on the
//! corrupt examples, the m-coherence of a fixed sample of 250) and a `Measurements` to add its
//! own values to; at the end `finish`.
//!
//! `loss_fractions` shows which examples supply each step's loss reduction: while the pristine
//! digits are being learned, more of it than the same number of random examples would
//! (`f_pristine` against `f_pristine_null`); once they are fitted, less, as the corrupt labels
//! are being memorised. `early_stopping` finds that test accuracy peaks before that
//! memorisation starts.
//!
//! Run it with `cargo run --release --example 04-observers-driven-by-hand`.
//! Next: the observer plugins themselves, under `plugins/observers/`.

use coherent_core::{
    Batch, BatchGrads, Evaluation, GradRequest, Measurements, Model, ModelSpec, PluginArgs, Rng,
    RunEnd, RunInfo, Split, StepGrads, StepInfo,
};
use serde_json::Value;
use std::error::Error;

/// Examples per step.
const BATCH: usize = 100;
/// Learning rate of plain SGD.
const LR: f32 = 0.3;
/// The evaluations: after this many steps (the last one ends the run).
const EVALUATIONS: [usize; 7] = [10, 50, 100, 150, 200, 300, 400];
/// Steps of the run.
const STEPS: usize = EVALUATIONS[EVALUATIONS.len() - 1];

/// The accuracy of `model` on the examples of `split` that `keep` selects.
fn accuracy(model: &dyn Model, split: &Split, keep: impl Fn(usize) -> bool) -> f64 {
    let (mut batch, mut losses, mut correct) = (Batch::default(), vec![], vec![]);
    let rows: Vec<usize> = (0..split.len()).filter(|&i| keep(i)).collect();
    batch.gather(split, &rows);
    model.evaluate(&batch, &mut losses, &mut correct);
    correct.iter().filter(|&&c| c).count() as f64 / rows.len() as f64
}

/// Trains, and returns what the observers reported at each evaluation and the summary of
/// `early_stopping`.
fn run() -> Result<(Vec<Measurements>, Value), Box<dyn Error>> {
    let registry = coherent_plugins::registry()?;
    let args = PluginArgs::from_toml("label_noise = 0.5\ntrain_limit = 1000\ntest_limit = 1000")?;
    let data = (registry.datasets["mnist"].build)(&args)?;
    let spec = ModelSpec::classifier(data.input_shape(), data.outputs());
    let mut model =
        (registry.networks["mlp"].build)(&PluginArgs::from_toml("hidden = [64]")?, &spec)?;
    let mut coherence = (registry.metrics["coherence"].build)(&PluginArgs::empty())?;
    let mut observers = vec![
        (registry.observers["loss_fractions"].build)(&PluginArgs::from_toml("every = 1")?)?,
        (registry.observers["early_stopping"].build)(&PluginArgs::empty())?,
    ];
    let (train, layers) = (data.train(), model.layers().to_vec());
    for observer in &mut observers {
        observer.begin(&RunInfo::new(0, &layers, data.as_ref(), STEPS))?;
    }

    let sample = Rng::new(3).sample_indices(train.len(), 250);
    let mut order: Vec<usize> = (0..train.len()).collect();
    let (mut shuffle, mut batch, mut grads) =
        (Rng::new(7), Batch::default(), BatchGrads::default());
    let mut direction: Vec<Vec<f32>> = layers.iter().map(|l| vec![0.0; l.params]).collect();
    let mut reported = Vec::new();
    println!(" step  test acc  corrupt acc  coherence  f_pristine  f_pristine_null");
    for step in 0..STEPS {
        let pos = step % (train.len() / BATCH) * BATCH;
        if pos == 0 {
            shuffle.shuffle(&mut order);
        }
        let info = StepInfo {
            step,
            indices: &order[pos..pos + BATCH],
            train,
        };
        // Plain SGD needs the summed gradient only (an aggregator: its `needs()`); each
        // observer's request joins it, its subsets after those before it (from `offsets[k]`).
        let (mut request, mut offsets) = (GradRequest::SUM, vec![0]);
        for observer in &mut observers {
            request = request.union(&observer.needs(&info));
            offsets.push(request.subsets.len());
        }
        batch.gather(train, info.indices);
        model.forward_backward(&batch, &request, &mut grads);
        grads.mean_into(&mut direction);
        for (k, observer) in observers.iter_mut().enumerate() {
            let subsets = &grads.subset_sums[offsets[k]..offsets[k + 1]];
            let step_grads = StepGrads {
                batch: &grads,
                subsets,
                direction: &direction,
            };
            observer.after_step(&info, &step_grads);
        }
        for (w, d) in model.params_mut().into_iter().zip(&direction) {
            w.iter_mut().zip(d).for_each(|(w, d)| *w -= LR * d);
        }

        if EVALUATIONS.contains(&(step + 1)) {
            let mut values = Measurements::default();
            values.push("test_acc", accuracy(model.as_ref(), data.test(), |_| true));
            values.push(
                "corrupt_acc",
                accuracy(model.as_ref(), train, |i| train.corrupted[i]),
            );
            let mut sample_batch = Batch::default();
            sample_batch.gather(train, &sample);
            coherence.begin(&layers);
            model.forward_backward(&sample_batch, &coherence.needs(), &mut grads);
            coherence.accumulate(&grads, &sample_batch);
            coherence.finish(&mut values);
            let mut out = Measurements::default();
            let mut eval = Evaluation::new(step + 1, &values, model.as_mut(), train);
            for observer in &mut observers {
                observer.on_evaluation(&mut eval, &mut out);
            }
            let get = |m: &Measurements, name| m.get(name).unwrap_or(f64::NAN);
            println!(
                "{:>5}  {:>8.3}  {:>11.3}  {:>9.3}  {:>10.3}  {:>15.3}",
                step + 1,
                get(&values, "test_acc"),
                get(&values, "corrupt_acc"),
                get(&values, "coherence"),
                get(&out, "f_pristine"),
                get(&out, "f_pristine_null"),
            );
            reported.push(out);
        }
    }
    let end = RunEnd {
        steps: STEPS,
        diverged: false,
        train,
    };
    let summary = observers[1]
        .finish(&end)
        .summary
        .ok_or("early_stopping reported nothing")?;
    println!(
        "\nearly_stopping: {}",
        serde_json::to_string_pretty(&summary)?
    );
    Ok((reported, summary))
}

fn main() -> Result<(), Box<dyn Error>> {
    run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example runs; at first the pristine examples supply more of the loss reduction than
    /// in the null world, at the end less (they are fitted, the corrupt ones are being
    /// memorised); and test accuracy peaks before the corrupt labels start to be memorised.
    #[test]
    fn runs_and_the_observers_report() {
        let (reported, summary) = super::run().unwrap();
        let f = |k: usize, name| reported[k].get(name).unwrap();
        assert!(
            f(0, "f_pristine") > f(0, "f_pristine_null") + 0.02,
            "{reported:?}"
        );
        let last = reported.len() - 1;
        assert!(
            f(last, "f_pristine") < f(last, "f_pristine_null") - 0.02,
            "{reported:?}"
        );
        assert_eq!(summary["peak_before_rise"], true, "{summary}");
    }
}
