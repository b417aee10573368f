//! Group normalisation (Wu & He 2018) as a custom op on dfdx's tape, with an optional fused
//! activation.
//!
//! Every example is normalised on its own: the channels are split into groups and each group's
//! values (channels x positions) are standardised, then scaled and shifted per channel
//! (`gamma`, `beta`). Unlike BatchNorm, which mixes the examples of a batch through the batch
//! statistics and so has no per-example gradient, GroupNorm keeps each example's gradient its
//! own: per-example quantities stay exact. (With one group it is LayerNorm over channels and
//! positions.) Per example, `dgamma_c = sum_p dz_cp xhat_cp` and `dbeta_c = sum_p dz_cp`: only
//! `2 C` values, kept as a matrix.

use crate::act::{Act, CpuTape};
use crate::grads::LayerGrads;
use crate::layer::{fixed_len, Layer};
use crate::matrix_trace::MatrixTrace;
use crate::Activation;
use coherent_core::TensorInfo;
use dfdx::prelude::{Merge, PutTape, SplitTape, Tape};
use rayon::prelude::*;
use std::sync::{Arc, RwLock};

/// A GroupNorm layer over `channels x positions` inputs. Parameters: `gamma` (`channels`,
/// initially 1) then `beta` (`channels`, initially 0).
#[derive(Debug)]
pub struct GroupNorm {
    channels: usize,
    positions: usize,
    groups: usize,
    eps: f32,
    activation: Option<Activation>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<MatrixTrace>>,
}

impl GroupNorm {
    /// `groups` must divide `channels`.
    pub fn new(channels: usize, positions: usize, groups: usize) -> GroupNorm {
        assert!(
            groups > 0 && channels.is_multiple_of(groups),
            "{groups} groups do not divide {channels} channels"
        );
        let mut params = vec![1.0; channels];
        params.extend(std::iter::repeat_n(0.0, channels));
        GroupNorm {
            channels,
            positions,
            groups,
            eps: 1e-5,
            activation: None,
            params: Arc::new(params),
            trace: Arc::default(),
        }
    }

    /// The same layer followed by `activation`.
    pub fn with_activation(mut self, activation: Activation) -> GroupNorm {
        self.activation = Some(activation);
        self
    }

    /// Features of one example.
    pub fn len(&self) -> usize {
        self.channels * self.positions
    }

    /// Whether the layer has no features.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Normalises one example: writes `xhat`, the inverse standard deviation of every group and
    /// the output.
    fn example(&self, x: &[f32], xhat: &mut [f32], y: &mut [f32], inv_std: &mut [f32]) {
        let n = (self.channels / self.groups) * self.positions;
        for ((xg, hg), s) in x.chunks(n).zip(xhat.chunks_mut(n)).zip(inv_std.iter_mut()) {
            let mean = xg.iter().map(|&v| v as f64).sum::<f64>() / n as f64;
            let var = xg.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / n as f64;
            *s = (1.0 / (var + self.eps as f64).sqrt()) as f32;
            for (h, v) in hg.iter_mut().zip(xg) {
                *h = (*v - mean as f32) * *s;
            }
        }
        let (gamma, beta) = self.params.split_at(self.channels);
        for (c, (yc, hc)) in y
            .chunks_mut(self.positions)
            .zip(xhat.chunks(self.positions))
            .enumerate()
        {
            for (o, h) in yc.iter_mut().zip(hc) {
                *o = gamma[c] * h + beta[c];
            }
        }
        if let Some(f) = self.activation {
            f.apply_in_place(y);
        }
    }
}

impl Layer for GroupNorm {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.len(), self.len())
    }

    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.resize(rows * self.len(), 0.0);
        out.par_chunks_mut(self.len())
            .zip(x.par_chunks(self.len()))
            .for_each_init(
                || (vec![0.0; self.len()], vec![0.0; self.groups]),
                |(xhat, s), (y, x)| self.example(x, xhat, y, s),
            );
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let (rows, len, groups) = (x.rows, self.len(), self.groups);
        let mut out = vec![0.0; rows * len];
        let mut xhat = vec![0.0; rows * len];
        let mut inv_std = vec![0.0; rows * groups];
        out.par_chunks_mut(len)
            .zip(xhat.par_chunks_mut(len))
            .zip(inv_std.par_chunks_mut(groups))
            .zip(x.data.par_chunks(len))
            .for_each(|(((y, h), s), x)| self.example(x, h, y, s));
        let dev = x.tensor.device().clone();
        let (x_tensor, tape) = x.tensor.split_tape();
        let mut y = Act::new(&dev, out, rows, len, CpuTape::default());
        let (y_tensor, mut y_tape) = y.tensor.split_tape();
        let y_id = y_tensor.clone();
        let (trace, params, output) = (self.trace.clone(), self.params.clone(), y.data.clone());
        let (channels, positions, activation) = (self.channels, self.positions, self.activation);
        y_tape.add_backward_op(move |grads| {
            let dy = grads.get_or_alloc_mut(&y_id)?;
            let mut dz = Vec::with_capacity(dy.len());
            crate::activation::pre_activation_grad(
                activation.map(|f| (f, &output[..])),
                dy,
                &mut dz,
            );
            let (gamma, _) = params.split_at(channels);
            {
                let mut tr = trace.write().expect("group norm trace lock");
                let tr = &mut *tr;
                tr.reset(rows, 2 * channels)
                    .par_chunks_mut(2 * channels)
                    .zip(dz.par_chunks(len))
                    .zip(xhat.par_chunks(len))
                    .for_each(|((g, dzi), hi)| {
                        for c in 0..channels {
                            let (d, h) = (
                                &dzi[c * positions..][..positions],
                                &hi[c * positions..][..positions],
                            );
                            g[c] = d.iter().zip(h).map(|(a, b)| a * b).sum();
                            g[channels + c] = d.iter().sum();
                        }
                    });
                tr.compute_sum();
            }
            if input_needs_grad {
                let dx = grads.get_or_alloc_mut(&x_tensor)?;
                let n = (channels / groups) * positions;
                dx.par_chunks_mut(len)
                    .zip(dz.par_chunks(len))
                    .zip(xhat.par_chunks(len))
                    .zip(inv_std.par_chunks(groups))
                    .for_each(|(((dxi, dzi), hi), si)| {
                        for (g, s) in si.iter().enumerate() {
                            let range = g * n..(g + 1) * n;
                            let dxhat = |k: usize| dzi[k] * gamma[k / positions];
                            let sum: f32 = range.clone().map(dxhat).sum();
                            let dot: f32 = range.clone().map(|k| dxhat(k) * hi[k]).sum();
                            for k in range {
                                dxi[k] += s / n as f32 * (n as f32 * dxhat(k) - sum - hi[k] * dot);
                            }
                        }
                    });
            }
            Ok(())
        });
        y.tensor = y_tensor.put_tape(tape.merge(y_tape));
        y
    }

    fn kind(&self) -> Option<&'static str> {
        Some("group_norm")
    }

    fn name_prefix(&self) -> &'static str {
        "norm"
    }

    /// `gamma` then `beta`.
    fn params(&self) -> &[f32] {
        &self.params
    }

    /// `weight` (`gamma`) `[channels]`, then `bias` (`beta`) `[channels]`, as
    /// `nn.GroupNorm` names them.
    fn tensors(&self) -> Vec<TensorInfo> {
        vec![
            TensorInfo::new("weight", vec![self.channels]),
            TensorInfo::new("bias", vec![self.channels]),
        ]
    }

    fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        Some(Box::new(self.trace.write().expect("group norm trace lock")))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forward_matches_a_direct_computation() {
        // 2 examples, 4 channels x 3 positions, 2 groups; gamma and beta away from 1 and 0
        let mut gn = GroupNorm::new(4, 3, 2);
        gn.params_mut()
            .copy_from_slice(&[1.5, -0.5, 2.0, 1.0, 0.1, 0.2, -0.3, 0.0]);
        let x: Vec<f32> = (0..24).map(|i| ((i * 7 % 11) as f32 - 5.0) / 3.0).collect();
        let mut y = Vec::new();
        gn.forward_slice(&x, 2, &mut y);
        for e in 0..2 {
            for g in 0..2 {
                let vals: Vec<f64> = (0..6).map(|k| x[e * 12 + g * 6 + k] as f64).collect();
                let mean = vals.iter().sum::<f64>() / 6.0;
                let var = vals.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / 6.0;
                for k in 0..6 {
                    let c = g * 2 + k / 3;
                    let want = gn.params()[c] as f64 * (vals[k] - mean) / (var + 1e-5).sqrt()
                        + gn.params()[4 + c] as f64;
                    let got = y[e * 12 + g * 6 + k] as f64;
                    assert!((got - want).abs() < 1e-5, "{got} vs {want}");
                }
            }
        }
    }
}
