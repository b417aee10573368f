//! The m-coherence of one batch: per-example gradient quantities from one backward pass.
//!
//! Builds the `mlp` network (784-64-10) and the bundled MNIST sample through the plugin
//! registry, gathers 128 training digits into a `Batch` and runs one forward and backward pass
//! with `GradRequest::SQ_NORMS`. Besides the summed gradient `S = sum_i g_i`, the model then
//! returns every example's squared gradient norm `|g_i|^2`, layer by layer, without forming any
//! `g_i`. The m-coherence `|S|^2 / Q`, with `Q = sum_i |g_i|^2`, follows: 1 when the examples'
//! gradients are orthogonal, `m` when they are identical. The `coherence` metric plugin
//! measures the same sample streamed in chunks, as the runner does, and agrees.
//!
//! Run it with `cargo run --release --example 01-coherence-of-a-batch`.
//! Next: `02-training-loop-with-a-suppression-strategy.rs` turns gradients into training steps.

use coherent_core::{Batch, BatchGrads, GradRequest, Measurements, ModelSpec, PluginArgs, Rng};
use std::error::Error;

/// Examples in the batch (the `m` of m-coherence).
const M: usize = 128;
/// Examples per backward pass when the metric plugin streams the same batch.
const CHUNK: usize = 32;

/// One row of the comparison: what is measured (`network` or a layer's name), the m-coherence by
/// hand and by the metric.
type Row = (String, f64, f64);

/// Measures the m-coherence of one batch by hand and with the metric, and returns both for the
/// whole network and for each layer.
fn run() -> Result<Vec<Row>, Box<dyn Error>> {
    // Plugins are found by name, with their parameters given as TOML text.
    let registry = coherent_plugins::registry()?;
    let data = (registry.datasets["mnist"].build)(&PluginArgs::empty())?;
    let spec = ModelSpec::classifier(data.input_shape(), data.outputs());
    let mut model =
        (registry.networks["mlp"].build)(&PluginArgs::from_toml("hidden = [64]")?, &spec)?;
    let train = data.train();
    println!(
        "mlp 784-64-10: {} parameters; {} training digits",
        model.num_params(),
        train.len()
    );

    // One backward pass of the summed loss over the batch, with per-example squared norms.
    let indices = Rng::new(1).sample_indices(train.len(), M);
    let mut batch = Batch::default();
    batch.gather(train, &indices);
    let mut grads = BatchGrads::default();
    model.forward_backward(&batch, &GradRequest::SQ_NORMS, &mut grads);

    let layers = model.layers().to_vec();
    let names: Vec<&str> = layers.iter().map(|l| l.name.as_str()).collect();
    let header = ("example", "label", "loss", "|g_i|^2", names.join(" + "));
    println!(
        "\n{:>7}  {:>5}  {:>5}  {:>7} = {}",
        header.0, header.1, header.2, header.3, header.4
    );
    for i in 0..4 {
        let parts: Vec<String> = grads
            .sq_norms
            .iter()
            .map(|l| format!("{:.4}", l[i]))
            .collect();
        let (label, loss, sq_norm) = (batch.labels[i], grads.losses[i], grads.example_sq_norm(i));
        println!(
            "{:>7}  {label:>5}  {loss:>5.3}  {sq_norm:>7.4} = {}",
            indices[i],
            parts.join(" + ")
        );
    }

    // m-coherence by hand: |S_l|^2 and Q_l per layer; the whole network sums both.
    let s2: Vec<f64> = grads
        .sum
        .iter()
        .map(|s| s.iter().map(|&v| (v as f64).powi(2)).sum())
        .collect();
    let q: Vec<f64> = grads
        .sq_norms
        .iter()
        .map(|n| n.iter().map(|&v| v as f64).sum())
        .collect();

    // The same with the `coherence` metric: begin, accumulate one chunk at a time, finish.
    let mut metric = (registry.metrics["coherence"].build)(&PluginArgs::empty())?;
    metric.begin(&layers);
    let (mut chunk, mut chunk_grads) = (Batch::default(), BatchGrads::default());
    for rows in indices.chunks(CHUNK) {
        chunk.gather(train, rows);
        model.forward_backward(&chunk, &metric.needs(), &mut chunk_grads);
        metric.accumulate(&chunk_grads, &chunk);
    }
    let mut measured = Measurements::new(true);
    metric.finish(&mut measured);
    println!("\nthe `coherence` metric, {M} examples in chunks of {CHUNK}:");
    for (name, value) in measured.values() {
        println!("  {name:<16} {value:.6}");
    }

    // Side by side: the whole network, then each layer (|S_l|^2 / Q_l).
    let mut rows = vec![(
        "network".to_string(),
        s2.iter().sum::<f64>() / q.iter().sum::<f64>(),
        measured.get("coherence").ok_or("no coherence measured")?,
    )];
    for (l, info) in layers.iter().enumerate() {
        let name = format!("coherence/{}", info.name);
        let by_metric = measured.get(&name).ok_or("no per-layer coherence")?;
        rows.push((info.name.clone(), s2[l] / q[l], by_metric));
    }
    println!(
        "\nm-coherence |S|^2 / Q  by hand      by the metric  (1: orthogonal, {M}: identical)"
    );
    for (name, by_hand, by_metric) in &rows {
        println!("  {name:<19} {by_hand:<12.6} {by_metric:.6}");
    }
    let largest = rows
        .iter()
        .map(|(_, a, b)| (a - b).abs() / b)
        .fold(0.0, f64::max);
    println!("largest relative difference: {largest:.1e}");
    Ok(rows)
}

fn main() -> Result<(), Box<dyn Error>> {
    run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example runs, and the m-coherence by hand and by the metric agree to 1e-6
    /// (relative), for the whole network and each of its two layers.
    #[test]
    fn runs_and_both_coherences_agree() {
        let rows = super::run().unwrap();
        assert_eq!(rows.len(), 3, "{rows:?}");
        for (name, by_hand, by_metric) in &rows {
            assert!(
                *by_hand > 1.0 && *by_hand < super::M as f64,
                "{name}: {by_hand}"
            );
            let error = (by_hand - by_metric).abs() / by_metric;
            assert!(error <= 1e-6, "{name}: {by_hand} vs {by_metric}");
        }
    }
}
