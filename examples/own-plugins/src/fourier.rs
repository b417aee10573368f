//! A layer of this crate's own: trainable Fourier features, `y_j = sin(w_j . x + b_j)`.
//!
//! Points in the plane (the spirals of `data/`) are hard for a small ReLU network and easy
//! after a few sinusoids of the coordinates. `k` features of `n` inputs have `k n` weights
//! (laid out `[k, n]`, PyTorch's `nn.Linear` layout) then `k` biases.
//!
//! Backward: with `Delta = dL/dy` and `d_j = Delta_j cos(w_j . x + b_j)`, example `i`'s gradient
//! is `(d_i x_i^T, d_i)` and its input gradient `sum_j d_ij w_j`. The per-example gradients go
//! into a [`MatrixTrace`], from which the engine derives every per-example quantity (norms,
//! Gram matrices, blocks, group and subset sums) — the layer writes nothing else.

use coherent_core::{Rng, TensorInfo};
use coherent_nn::{Act, CpuTape, Layer, LayerGrads, MatrixTrace};
use std::sync::{Arc, RwLock};

/// Trainable Fourier features of `inputs` values (see the module docs).
#[derive(Debug)]
pub struct Fourier {
    inputs: usize,
    features: usize,
    /// Weights `[features, inputs]` then biases; shared with the backward op of a pass.
    params: Arc<Vec<f32>>,
    /// The per-example gradients of the last backward pass.
    trace: Arc<RwLock<MatrixTrace>>,
}

impl Fourier {
    /// `features` sinusoids of `inputs` values: weights drawn from `N(0, frequency^2)`, phases
    /// uniform in `[-pi, pi)`.
    pub fn new(inputs: usize, features: usize, frequency: f64, rng: &mut Rng) -> Fourier {
        let mut params: Vec<f32> = (0..features * inputs)
            .map(|_| (frequency * rng.normal()) as f32)
            .collect();
        let pi = std::f64::consts::PI;
        params.extend((0..features).map(|_| (pi * (2.0 * rng.uniform() - 1.0)) as f32));
        Fourier {
            inputs,
            features,
            params: Arc::new(params),
            trace: Arc::default(),
        }
    }

    /// `w_j . x + b_j` of every example and feature, row by row.
    fn pre_activations(&self, x: &[f32]) -> Vec<f32> {
        let (n, k) = (self.inputs, self.features);
        let (w, b) = self.params.split_at(k * n);
        let mut z = Vec::with_capacity(x.len() / n * k);
        for xi in x.chunks_exact(n) {
            for (wj, bj) in w.chunks_exact(n).zip(b) {
                z.push(wj.iter().zip(xi).map(|(w, x)| w * x).sum::<f32>() + bj);
            }
        }
        z
    }
}

impl Layer for Fourier {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        if input == self.inputs {
            Ok(self.features)
        } else {
            Err(format!(
                "expects {} input features, receives {input}",
                self.inputs
            ))
        }
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let z = self.pre_activations(&x.data);
        let y: Vec<f32> = z.iter().map(|z| z.sin()).collect();
        let cos: Vec<f32> = z.iter().map(|z| z.cos()).collect();
        let (n, k) = (self.inputs, self.features);
        let (input, params, trace) = (x.data.clone(), self.params.clone(), self.trace.clone());
        x.record(Arc::new(y), k, input_needs_grad, move |dy, dx| {
            let mut trace = trace.write().expect("the trace lock is not poisoned");
            let rows = dy.len() / k;
            let row_len = k * n + k;
            for (i, g) in trace
                .reset(rows, row_len)
                .chunks_exact_mut(row_len)
                .enumerate()
            {
                let xi = &input[i * n..(i + 1) * n];
                let (gw, gb) = g.split_at_mut(k * n);
                for j in 0..k {
                    let d = dy[i * k + j] * cos[i * k + j];
                    gb[j] = d;
                    gw[j * n..(j + 1) * n]
                        .iter_mut()
                        .zip(xi)
                        .for_each(|(g, x)| *g = d * x);
                }
            }
            trace.compute_sum();
            if let Some(dx) = dx {
                let w = &params[..k * n];
                for (i, dxi) in dx.chunks_exact_mut(n).enumerate() {
                    for (j, wj) in w.chunks_exact(n).enumerate() {
                        let d = dy[i * k + j] * cos[i * k + j];
                        dxi.iter_mut().zip(wj).for_each(|(dx, w)| *dx += d * w);
                    }
                }
            }
        })
    }

    fn forward_slice(&self, x: &[f32], _rows: usize, out: &mut Vec<f32>) {
        out.clear();
        out.extend(self.pre_activations(x).iter().map(|z| z.sin()));
    }

    fn kind(&self) -> Option<&'static str> {
        Some("fourier")
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    /// `weight` `[features, inputs]` and `bias` `[features]`, as `nn.Linear` would hold them
    /// (what weights files name `fourier1.weight`, `fourier1.bias`).
    fn tensors(&self) -> Vec<TensorInfo> {
        vec![
            TensorInfo::new("weight", vec![self.features, self.inputs]),
            TensorInfo::new("bias", vec![self.features]),
        ]
    }

    fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        Some(Box::new(
            self.trace.write().expect("the trace lock is not poisoned"),
        ))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}
