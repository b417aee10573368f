//! A training loop written by hand, with a suppression strategy as its aggregator.
//!
//! Half of 1,000 MNIST digits have their labels shuffled among themselves (`label_noise = 0.5`
//! in the dataset's parameters; `Split::corrupted` marks them). Each step asks the model for
//! what the aggregator `needs()`, runs one forward and backward pass, turns the per-example
//! gradients into a direction with `aggregate_step` and moves the parameters against it by
//! plain SGD on `model.params_mut()`. The same steps run twice, from the same initial weights
//! and over the same batches: with `mean` (plain SGD) and with `winsorized`, which clips every
//! coordinate of the per-example gradients to the batch's `c`-th and `(100 - c)`-th percentiles
//! before averaging (`c = 5`: five values per side over a batch of 100). Directions that few
//! examples support, those that memorise one corrupt label, are suppressed: the corrupt
//! examples are fitted far less than with the mean, while the pristine ones are still learned.
//!
//! Run it with `cargo run --release --example 02-training-loop-with-a-suppression-strategy`.
//! Next: `03-a-network-with-a-custom-layer.rs` writes a layer of its own.

use coherent_core::{
    aggregate_step, Batch, BatchGrads, Dataset, Model, ModelSpec, OptimizerSettings, PluginArgs,
    Registry, Rng, Split,
};
use std::error::Error;

/// Optimisation steps of each run.
const STEPS: usize = 400;
/// Examples per step.
const BATCH: usize = 100;
/// Learning rate of plain SGD.
const LR: f32 = 0.3;
/// Steps between evaluations (the loss printed is the mean over them).
const EVAL_EVERY: usize = 50;

/// Accuracies against the labels trained on: on the pristine and on the corrupt training
/// examples (the latter is memorisation), and on the test split.
#[derive(Clone, Copy, Debug)]
struct Accuracies {
    pristine: f64,
    corrupt: f64,
    test: f64,
}

/// The fraction of the examples of `split` that `keep` selects which `model` classifies
/// correctly (forward passes only, no gradients).
fn accuracy(model: &dyn Model, split: &Split, keep: impl Fn(usize) -> bool) -> f64 {
    let (mut batch, mut losses, mut correct) = (Batch::default(), vec![], vec![]);
    let rows: Vec<usize> = (0..split.len()).filter(|&i| keep(i)).collect();
    batch.gather(split, &rows);
    model.evaluate(&batch, &mut losses, &mut correct);
    correct.iter().filter(|&&c| c).count() as f64 / rows.len() as f64
}

/// Trains the `mlp` with `aggregator` (its parameters as TOML) and returns its accuracies.
fn train(
    registry: &Registry,
    data: &dyn Dataset,
    aggregator: &str,
    args: &str,
) -> Result<Accuracies, Box<dyn Error>> {
    let spec = ModelSpec::classifier(data.input_shape(), data.outputs());
    let mut model =
        (registry.networks["mlp"].build)(&PluginArgs::from_toml("hidden = [64]")?, &spec)?;
    let mut agg = (registry.aggregators[aggregator].build)(&PluginArgs::from_toml(args)?)?;
    // the aggregator checks its parameters against the batch size (trimmed_mean's `b`, ...)
    let settings = OptimizerSettings::sgd(LR as f64, BATCH);
    agg.configure(settings)?;
    agg.begin(model.layers());
    let request = agg.needs();
    let mut direction: Vec<Vec<f32>> = model.layers().iter().map(|l| vec![0.0; l.params]).collect();

    let train = data.train();
    let (mut order, steps_per_epoch) = ((0..train.len()).collect::<Vec<_>>(), train.len() / BATCH);
    let mut shuffle = Rng::new(7);
    let (mut batch, mut grads) = (Batch::default(), BatchGrads::default());
    println!("\n{}", format!("{aggregator} {args}").trim_end());
    println!("  step  train loss  train pristine  train corrupt  test");
    let (mut acc, mut loss) = (None, 0.0);
    for step in 0..STEPS {
        // A new random order of the training examples at each epoch's start.
        let pos = step % steps_per_epoch * BATCH;
        if pos == 0 {
            shuffle.shuffle(&mut order);
        }
        batch.gather(train, &order[pos..pos + BATCH]);
        model.forward_backward(&batch, &request, &mut grads);
        loss += grads.losses.iter().sum::<f32>() / (BATCH * EVAL_EVERY) as f32;
        aggregate_step(
            agg.as_mut(),
            model.as_ref(),
            &grads,
            request.blocks,
            &mut direction,
        );
        for (w, d) in model.params_mut().into_iter().zip(&direction) {
            w.iter_mut().zip(d).for_each(|(w, d)| *w -= LR * d);
        }
        if (step + 1) % EVAL_EVERY == 0 {
            // Against the labels trained on: on the corrupt examples, memorisation.
            let pristine = accuracy(model.as_ref(), train, |i| !train.corrupted[i]);
            let corrupt = accuracy(model.as_ref(), train, |i| train.corrupted[i]);
            let test = accuracy(model.as_ref(), data.test(), |_| true);
            println!(
                "  {:>4}  {loss:>10.3}  {pristine:>14.3}  {corrupt:>13.3}  {test:.3}",
                step + 1
            );
            acc = Some(Accuracies {
                pristine,
                corrupt,
                test,
            });
            loss = 0.0;
        }
    }
    Ok(acc.expect("evaluated at least once"))
}

/// Both runs: `(mean, winsorized)`.
fn run() -> Result<(Accuracies, Accuracies), Box<dyn Error>> {
    let registry = coherent_plugins::registry()?;
    let args = PluginArgs::from_toml("label_noise = 0.5\ntrain_limit = 1000\ntest_limit = 1000")?;
    let data = (registry.datasets["mnist"].build)(&args)?;
    let corrupt = data.train().corrupted.iter().filter(|&&c| c).count();
    println!(
        "{} training digits, {corrupt} of them with shuffled labels; {} test digits",
        data.train().len(),
        data.test().len()
    );
    let mean = train(registry, data.as_ref(), "mean", "")?;
    let winsorized = train(registry, data.as_ref(), "winsorized", "c = 5")?;
    println!("\nafter {STEPS} steps      train pristine  train corrupt (memorised)  test");
    for (name, a) in [("mean", mean), ("winsorized c = 5", winsorized)] {
        println!(
            "  {name:<17}  {:>14.3}  {:>25.3}  {:.3}",
            a.pristine, a.corrupt, a.test
        );
    }
    Ok((mean, winsorized))
}

fn main() -> Result<(), Box<dyn Error>> {
    run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example runs; winsorization learns the pristine examples and generalises while
    /// memorising less than half as many corrupt labels as plain SGD over the same steps.
    #[test]
    fn runs_and_winsorization_memorises_less() {
        let (mean, winsorized) = super::run().unwrap();
        assert!(mean.corrupt > 0.5, "plain SGD memorises: {mean:?}");
        assert!(
            winsorized.pristine > 0.8 && winsorized.test > 0.6,
            "{winsorized:?}"
        );
        assert!(
            winsorized.corrupt < mean.corrupt / 2.0,
            "{winsorized:?} vs {mean:?}"
        );
    }
}
