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
use rayon::prelude::*;
use std::sync::{Arc, Mutex, RwLock};

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
    /// The pass's output, normalised values and inverse deviations, reused from pass to pass
    /// once nothing else holds them.
    output: Mutex<Arc<Vec<f32>>>,
    xhat: Mutex<Arc<Vec<f32>>>,
    inv_std: Mutex<Arc<Vec<f32>>>,
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
            output: Mutex::default(),
            xhat: Mutex::default(),
            inv_std: Mutex::default(),
        }
    }

    /// The same layer followed by `activation` (`None`: by none).
    pub fn with_activation(mut self, activation: impl Into<Option<Activation>>) -> GroupNorm {
        self.activation = activation.into();
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
            let mean = lanes_f64(xg, |v| v) / n as f64;
            let var = lanes_f64(xg, |v| (v - mean) * (v - mean)) / n as f64;
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
        let [out, xhat, inv_std] = [
            (&self.output, len),
            (&self.xhat, len),
            (&self.inv_std, groups),
        ]
        .map(|(buffer, per_example)| {
            let mut buffer = buffer.lock().expect("group norm buffer lock");
            Arc::make_mut(&mut buffer).resize(rows * per_example, 0.0);
            buffer
        });
        let [mut out, mut xhat, mut inv_std] = [out, xhat, inv_std];
        Arc::make_mut(&mut out)
            .par_chunks_mut(len)
            .zip(Arc::make_mut(&mut xhat).par_chunks_mut(len))
            .zip(Arc::make_mut(&mut inv_std).par_chunks_mut(groups))
            .zip(x.data.par_chunks(len))
            .for_each(|(((y, h), s), x)| self.example(x, h, y, s));
        let saved = Saved {
            xhat: xhat.clone(),
            inv_std: inv_std.clone(),
            output: out.clone(),
            params: self.params.clone(),
            trace: self.trace.clone(),
            shape: (self.channels, self.positions, groups),
            activation: self.activation,
        };
        x.then(out.clone(), len, input_needs_grad, move |mut dz, dx| {
            crate::activation::pre_activation_grad(
                saved.activation.map(|f| (f, &saved.output[..])),
                &mut dz,
            );
            match dx {
                Some(dx) => dx.add_with(|dx| saved.backward(rows, &dz, Some(dx))),
                None => saved.backward(rows, &dz, None),
            }
        })
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

/// What the backward pass of one forward pass needs.
struct Saved {
    xhat: Arc<Vec<f32>>,
    inv_std: Arc<Vec<f32>>,
    output: Arc<Vec<f32>>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<MatrixTrace>>,
    /// Channels, positions, groups.
    shape: (usize, usize, usize),
    activation: Option<Activation>,
}

impl Saved {
    /// From the pre-activation gradient `dz`: every example's `dgamma` and `dbeta` into the
    /// trace, and, when asked, the input gradient added into `dx`.
    fn backward(&self, rows: usize, dz: &[f32], dx: Option<&mut [f32]>) {
        let (channels, positions, groups) = self.shape;
        let len = channels * positions;
        let mut tr = self.trace.write().expect("group norm trace lock");
        let per_example = tr.reset(rows, 2 * channels);
        let parts = per_example
            .par_chunks_mut(2 * channels)
            .zip(dz.par_chunks(len))
            .zip(self.xhat.par_chunks(len))
            .zip(self.inv_std.par_chunks(groups));
        match dx {
            Some(dx) => {
                parts
                    .zip(dx.par_chunks_mut(len))
                    .for_each(|((((g, dzi), hi), si), dxi)| {
                        self.example(g, dzi, hi, Some((si, dxi)));
                    })
            }
            None => parts.for_each(|(((g, dzi), hi), _)| self.example(g, dzi, hi, None)),
        }
        tr.compute_sum();
    }

    /// One example: `g` (`dgamma` then `dbeta`) from `dz` and `xhat`; with its inverse
    /// deviations `s`, its input gradient added into `dx`.
    fn example(&self, g: &mut [f32], dz: &[f32], xhat: &[f32], dx: Option<(&[f32], &mut [f32])>) {
        let (channels, positions, groups) = self.shape;
        let gamma = &self.params[..channels];
        for c in 0..channels {
            let (d, h) = (
                &dz[c * positions..][..positions],
                &xhat[c * positions..][..positions],
            );
            g[c] = lanes_dot(d, h);
            g[channels + c] = lanes_sum(d);
        }
        let Some((s, dx)) = dx else { return };
        // dx = s / n (n dxhat - sum(dxhat) - xhat sum(dxhat xhat)), dxhat = gamma_c dz, per group
        let per_group = channels / groups;
        let n = (per_group * positions) as f32;
        for (k, s) in s.iter().enumerate() {
            let cs = k * per_group..(k + 1) * per_group;
            let sum: f32 = cs.clone().map(|c| gamma[c] * g[channels + c]).sum();
            let dot: f32 = cs.clone().map(|c| gamma[c] * g[c]).sum();
            for c in cs {
                let range = c * positions..(c + 1) * positions;
                let scale = s / n;
                for ((dxk, dzk), hk) in dx[range.clone()]
                    .iter_mut()
                    .zip(&dz[range.clone()])
                    .zip(&xhat[range])
                {
                    *dxk += scale * (n * gamma[c] * dzk - sum - hk * dot);
                }
            }
        }
    }
}

/// `sum_k f(x_k)` in double precision, in eight independent lanes (vectorised).
fn lanes_f64(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; 8];
    let mut parts = x.chunks_exact(8);
    for part in &mut parts {
        for (l, v) in lanes.iter_mut().zip(part) {
            *l += f(*v as f64);
        }
    }
    let tail: f64 = parts.remainder().iter().map(|v| f(*v as f64)).sum();
    lanes.iter().sum::<f64>() + tail
}

/// `sum(a)` in eight independent lanes (vectorised).
fn lanes_sum(a: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let mut parts = a.chunks_exact(8);
    for part in &mut parts {
        for (l, v) in lanes.iter_mut().zip(part) {
            *l += v;
        }
    }
    lanes.iter().sum::<f32>() + parts.remainder().iter().sum::<f32>()
}

/// `a . b` in eight independent lanes (vectorised).
fn lanes_dot(a: &[f32], b: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    for (part, o) in a.chunks_exact(8).zip(b.chunks_exact(8)) {
        for ((l, v), w) in lanes.iter_mut().zip(part).zip(o) {
            *l += v * w;
        }
    }
    let rest = a.len() - a.len() % 8;
    let tail: f32 = a[rest..].iter().zip(&b[rest..]).map(|(v, w)| v * w).sum();
    lanes.iter().sum::<f32>() + tail
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
