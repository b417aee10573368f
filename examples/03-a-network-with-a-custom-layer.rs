//! A layer of your own: written outside the framework, put in a network, checked and measured.
//!
//! `coherent_nn::Layer` is the trait every network is built from. Here it is implemented for a
//! per-feature affine map `y = x (.) w + b` (one weight and one bias per feature). Its forward
//! pass computes the output and records a backward op on dfdx's tape (`Act::record`). During
//! the one backward pass of the summed loss, that op receives `Delta = dL/dy`, writes example
//! `i`'s parameter gradient `(Delta_i (.) x_i, Delta_i)` into a `MatrixTrace`, and adds the
//! input gradient `Delta (.) w`. The engine derives every per-example quantity from the trace:
//! squared norms, Gram matrices, coordinate blocks, group and subset sums.
//!
//! `NetworkBuilder::push` puts the layer between two dense layers; `check_quantities` compares
//! every quantity of one batch pass with one pass per example (`per_example_by_loop`), the
//! test a new layer needs; and the per-layer m-coherence of a batch of digits is printed.
//!
//! Run it with `cargo run --release --example 03-a-network-with-a-custom-layer`.
//! Next: `04-observers-driven-by-hand.rs` watches a training run with observer plugins.

use coherent_core::{
    Batch, BatchGrads, GradRequest, Measurements, Model, ModelSpec, PluginArgs, Rng,
};
use coherent_nn::check::check_quantities;
use coherent_nn::reference::per_example_by_loop;
use coherent_nn::{Act, Activation, CpuTape, Init, Layer, LayerGrads, MatrixTrace, NetworkBuilder};
use std::error::Error;
use std::sync::{Arc, RwLock};

/// `y = x (.) w + b` on `features` features; parameters `w` then `b`.
#[derive(Debug)]
struct FeatureAffine {
    features: usize,
    /// Shared with the backward op of the pass that read them.
    params: Arc<Vec<f32>>,
    /// The per-example gradients of the last backward pass.
    trace: Arc<RwLock<MatrixTrace>>,
}

impl FeatureAffine {
    /// The identity map to begin with: weights 1, biases 0.
    fn new(features: usize) -> FeatureAffine {
        FeatureAffine {
            features,
            params: Arc::new([vec![1.0; features], vec![0.0; features]].concat()),
            trace: Arc::default(),
        }
    }
}

impl Layer for FeatureAffine {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        if input == self.features {
            Ok(input)
        } else {
            Err(format!(
                "expects {} input features, receives {input}",
                self.features
            ))
        }
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let mut out = Vec::new();
        self.forward_slice(&x.data, x.rows, &mut out);
        let (n, input, params, trace) = (
            self.features,
            x.data.clone(),
            self.params.clone(),
            self.trace.clone(),
        );
        x.record(Arc::new(out), n, input_needs_grad, move |dy, dx| {
            let mut trace = trace.write().unwrap();
            let rows = dy.len() / n;
            // Row i of the trace is example i's gradient: (Delta_i (.) x_i, Delta_i).
            for (i, g) in trace.reset(rows, 2 * n).chunks_exact_mut(2 * n).enumerate() {
                let (dyi, xi) = (&dy[i * n..(i + 1) * n], &input[i * n..(i + 1) * n]);
                for k in 0..n {
                    (g[k], g[n + k]) = (dyi[k] * xi[k], dyi[k]);
                }
            }
            trace.compute_sum();
            if let Some(dx) = dx {
                for (j, (dx, dy)) in dx.iter_mut().zip(dy).enumerate() {
                    *dx += dy * params[j % n];
                }
            }
        })
    }

    fn forward_slice(&self, x: &[f32], _rows: usize, out: &mut Vec<f32>) {
        let (w, b) = self.params.split_at(self.features);
        out.clear();
        for row in x.chunks_exact(self.features) {
            out.extend(row.iter().zip(w).zip(b).map(|((x, w), b)| x * w + b));
        }
    }

    fn kind(&self) -> Option<&'static str> {
        Some("affine")
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        Some(Box::new(self.trace.write().unwrap()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// Builds the network, checks it, and returns its m-coherence on a batch, whole and per layer
/// (`coherence`, `coherence/<layer>`).
fn run() -> Result<Vec<(String, f64)>, Box<dyn Error>> {
    let registry = coherent_plugins::registry()?;
    let data = (registry.datasets["mnist"].build)(&PluginArgs::empty())?;
    let spec = ModelSpec::classifier(data.input_shape(), data.outputs());

    // dense 784 -> 32 + tanh, the affine layer on those 32 features, dense 32 -> 10.
    let mut builder = NetworkBuilder::new(&spec, true, Init::Uniform);
    builder.dense(32, Some(Activation::Tanh))?;
    builder.push(Box::new(FeatureAffine::new(32)), (32, 1, 1));
    builder.dense(data.outputs(), None)?;
    let mut model = builder.build()?;
    for l in model.layers() {
        println!("{:<8} {:<7} {:>6} parameters", l.name, l.kind, l.params);
    }

    // Every per-example quantity of one pass over 16 digits against 16 passes of one digit.
    let mut batch = Batch::default();
    batch.gather(data.train(), &(0..16).collect::<Vec<_>>());
    let by_loop = per_example_by_loop(&mut model, &batch);
    check_quantities(&mut model, &batch, &by_loop);
    let mut grads = BatchGrads::default();
    model.forward_backward(&batch, &GradRequest::SQ_NORMS, &mut grads);
    let l = model
        .layers()
        .iter()
        .position(|l| l.kind == "affine")
        .unwrap();
    println!(
        "\n{:<20} {:<10} one pass per example",
        "|g_i|^2 of affine1", "one pass"
    );
    for (i, g) in by_loop.iter().take(3).enumerate() {
        let alone: f32 = g[l].iter().map(|v| v * v).sum();
        let name = format!("example {i}");
        println!("  {name:<18} {:<10.6} {alone:.6}", grads.sq_norms[l][i]);
    }
    println!("every quantity of the batch pass matches one pass per example");

    // The m-coherence of 128 digits, by the `coherence` metric, for every layer.
    let mut coherence = (registry.metrics["coherence"].build)(&PluginArgs::empty())?;
    let sample = Rng::new(1).sample_indices(data.train().len(), 128);
    batch.gather(data.train(), &sample);
    coherence.begin(model.layers());
    model.forward_backward(&batch, &coherence.needs(), &mut grads);
    coherence.accumulate(&grads, &batch);
    let mut measured = Measurements::new(true);
    coherence.finish(&mut measured);
    println!("\nm-coherence of 128 digits");
    let mut rows = measured.into_values();
    rows.retain(|(name, _)| name.starts_with("coherence"));
    for (name, value) in &rows {
        println!("  {name:<18} {value:.4}");
    }
    Ok(rows)
}

fn main() -> Result<(), Box<dyn Error>> {
    run()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    /// The example runs (its quantities checked against one pass per example), names the
    /// custom layer after its kind, and measures an m-coherence in `[0, 128]` for every layer.
    #[test]
    fn runs_and_measures_every_layer() {
        let rows = super::run().unwrap();
        let names: Vec<&str> = rows.iter().map(|(n, _)| n.as_str()).collect();
        let want = [
            "coherence",
            "coherence/fc1",
            "coherence/affine1",
            "coherence/fc2",
        ];
        assert_eq!(names, want);
        assert!(
            rows.iter().all(|(_, c)| (0.0..=128.0).contains(c)),
            "{rows:?}"
        );
    }
}
