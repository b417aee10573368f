//! Group normalisation (Wu & He 2018) as a custom op on dfdx's tape, with an optional fused
//! activation. Its neighbours may run it in their pass: a residual block takes its sum into its
//! body's last GroupNorm ([`GroupNorm::forward_into_sum`]) and a max pool pools each channel
//! as it is normalised (`norm_pool`).
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
use crate::simd::wide;
use crate::spare;
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
    /// The pass's output and every example's group statistics (mean and inverse deviation
    /// per group), reused from pass to pass once nothing else holds them. The normalised
    /// values are not kept: the backward pass recomputes them from the input.
    output: Mutex<Arc<Vec<f32>>>,
    stats: Mutex<Arc<Vec<f32>>>,
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
            stats: Mutex::default(),
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

    /// Normalises one example: writes the mean and inverse standard deviation of every group
    /// into `stats` and the output into `y`, with `tail` after the normalisation.
    #[inline(always)]
    fn example(&self, x: &[f32], y: &mut [f32], stats: &mut [f32], tail: Tail<'_>) {
        self.group_stats(x, stats);
        let (gamma, beta) = self.params.split_at(self.channels);
        for (c, (yc, xc)) in y
            .chunks_mut(self.positions)
            .zip(x.chunks(self.positions))
            .enumerate()
        {
            let (m, s) = channel_stats(stats, c, self.channels / self.groups);
            match tail.addend {
                // the same operations, in the same order, as the sum taken in a pass of its own
                Some(addend) => yc
                    .iter_mut()
                    .zip(xc)
                    .zip(&addend[c * self.positions..(c + 1) * self.positions])
                    .for_each(|((o, v), a)| *o = gamma[c] * ((v - m) * s) + beta[c] + a),
                None => normalise_channel(yc, xc, (gamma[c], beta[c]), (m, s)),
            }
            // the channel is still in the nearest cache
            if let Some(f) = tail.activation {
                f.apply_in_place(yc);
            }
        }
    }

    /// The mean and inverse standard deviation of every group of the example `x` into `stats`.
    #[inline(always)]
    pub(crate) fn group_stats(&self, x: &[f32], stats: &mut [f32]) {
        let n = (self.channels / self.groups) * self.positions;
        for (xg, st) in x.chunks(n).zip(stats.chunks_exact_mut(2)) {
            let mean = lanes_f64(xg, |v| v) / n as f64;
            let var = lanes_f64(xg, |v| (v - mean) * (v - mean)) / n as f64;
            st[0] = mean as f32;
            st[1] = (1.0 / (var + self.eps as f64).sqrt()) as f32;
        }
    }

    /// Channel `c` of this layer's output for the channel's input `xc`, with the example's
    /// group statistics `stats`, into `out`: the values [`GroupNorm::forward`] writes.
    #[inline(always)]
    pub(crate) fn channel_into(&self, c: usize, xc: &[f32], stats: &[f32], out: &mut [f32]) {
        let (gamma, beta) = self.params.split_at(self.channels);
        let ms = channel_stats(stats, c, self.channels / self.groups);
        normalise_channel(out, xc, (gamma[c], beta[c]), ms);
        if let Some(f) = self.activation {
            f.apply_in_place(out);
        }
    }

    /// Channels and positions of one example.
    pub(crate) fn shape(&self) -> (usize, usize) {
        (self.channels, self.positions)
    }

    /// Values of one example's group statistics.
    pub(crate) fn stats_len(&self) -> usize {
        2 * self.groups
    }

    /// Normalises the examples `x` into `out`, their statistics into `stats`, with `tail`
    /// (whose addend, if any, holds as many values as `x`).
    fn normalise(&self, x: &[f32], (out, stats): (&mut [f32], &mut [f32]), tail: Tail<'_>) {
        let len = self.len();
        out.par_chunks_mut(len)
            .zip(stats.par_chunks_mut(2 * self.groups))
            .zip(x.par_chunks(len))
            .enumerate()
            .for_each(|(i, ((y, st), x))| {
                let tail = Tail {
                    addend: tail.addend.map(|a| &a[i * len..(i + 1) * len]),
                    ..tail
                };
                wide(
                    #[inline(always)]
                    || self.example(x, y, st, tail),
                )
            });
    }

    /// This layer's statistics buffer, sized for `rows` examples.
    pub(crate) fn stats_for(&self, rows: usize) -> std::sync::MutexGuard<'_, Arc<Vec<f32>>> {
        let mut stats = self.stats.lock().expect("group norm stats lock");
        Arc::make_mut(&mut stats).resize(rows * 2 * self.groups, 0.0);
        stats
    }

    /// Records the backward op of a pass on `x` whose statistics are `stats`, with `output`
    /// the values of this layer's output `Act`: GroupNorm's output, the residual sum it wrote
    /// (read here only for its own activation's derivative, which a sum's GroupNorm does not
    /// have), or none where the output is not kept (the derivative's channel is then
    /// recomputed from the input).
    pub(crate) fn record(
        &self,
        x: Act<CpuTape>,
        input_needs_grad: bool,
        stats: Arc<Vec<f32>>,
        output: Option<Arc<Vec<f32>>>,
    ) -> Act<CpuTape> {
        let (rows, len) = (x.rows, self.len());
        let saved = Saved {
            input: x.data.clone(),
            stats,
            output: output.clone(),
            params: self.params.clone(),
            trace: self.trace.clone(),
            shape: (self.channels, self.positions, self.groups),
            activation: self.activation,
        };
        x.then(
            output.unwrap_or_default(),
            len,
            input_needs_grad,
            move |mut dz, dx| {
                match dx {
                    Some(dx) => dx
                        .write_or_add(|dx, first| saved.backward(rows, &mut dz, Some((dx, first)))),
                    None => saved.backward(rows, &mut dz, None),
                }
                spare::recycle(dz);
            },
        )
    }

    /// Whether this layer can take a residual block's sum into its pass
    /// ([`GroupNorm::forward_into_sum`]): it has no activation of its own.
    pub(crate) fn takes_sums(&self) -> bool {
        self.activation.is_none()
    }

    /// The forward pass of this layer as the last of a residual block's body, computing the
    /// block's output `activation(GroupNorm(x) + addend)` into `out` as it normalises each
    /// example (instead of writing its own output for the block to read back and add): the
    /// returned `Act` is this layer's on the tape, its values those of `out`, which only the
    /// block's sum reads. Its values equal, bit for bit, those of the sum taken in a pass of
    /// its own.
    ///
    /// # Panics
    /// Unless [`GroupNorm::takes_sums`].
    pub(crate) fn forward_into_sum(
        &self,
        x: Act<CpuTape>,
        input_needs_grad: bool,
        (addend, activation): (&[f32], Option<Activation>),
        out: &mut Arc<Vec<f32>>,
    ) -> Act<CpuTape> {
        assert!(
            self.takes_sums(),
            "a sum into a GroupNorm with an activation"
        );
        let mut stats = self.stats_for(x.rows);
        Arc::make_mut(out).resize(x.data.len(), 0.0);
        let tail = Tail {
            addend: Some(addend),
            activation,
        };
        let buffers = (
            Arc::make_mut(out).as_mut_slice(),
            Arc::make_mut(&mut stats).as_mut_slice(),
        );
        self.normalise(&x.data, buffers, tail);
        let stats = stats.clone();
        self.record(x, input_needs_grad, stats, Some(out.clone()))
    }
}

/// What follows the normalisation of an example: a residual block's addend, then an
/// activation (GroupNorm's own, or the block's).
#[derive(Clone, Copy)]
struct Tail<'a> {
    addend: Option<&'a [f32]>,
    activation: Option<Activation>,
}

impl Layer for GroupNorm {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        fixed_len(input, self.len(), self.len())
    }

    fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
        out.resize(rows * self.len(), 0.0);
        let tail = Tail {
            addend: None,
            activation: self.activation,
        };
        out.par_chunks_mut(self.len())
            .zip(x.par_chunks(self.len()))
            .for_each_init(
                || vec![0.0; 2 * self.groups],
                |stats, (y, x)| {
                    wide(
                        #[inline(always)]
                        || self.example(x, y, stats, tail),
                    )
                },
            );
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let mut stats = self.stats_for(x.rows);
        let mut out = self.output.lock().expect("group norm output lock");
        Arc::make_mut(&mut out).resize(x.data.len(), 0.0);
        let tail = Tail {
            addend: None,
            activation: self.activation,
        };
        let buffers = (
            Arc::make_mut(&mut out).as_mut_slice(),
            Arc::make_mut(&mut stats).as_mut_slice(),
        );
        self.normalise(&x.data, buffers, tail);
        let (stats, out) = (stats.clone(), out.clone());
        self.record(x, input_needs_grad, stats, Some(out))
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
    /// The layer's input.
    input: Arc<Vec<f32>>,
    /// Mean and inverse deviation of every group of every example.
    stats: Arc<Vec<f32>>,
    /// The output, where it is kept (for the activation's derivative).
    output: Option<Arc<Vec<f32>>>,
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<MatrixTrace>>,
    /// Channels, positions, groups.
    shape: (usize, usize, usize),
    activation: Option<Activation>,
}

impl Saved {
    /// The per-example gradients and, with `dx`, the input gradient, from the output gradient
    /// `dz` (made the pre-activation gradient here, one example at a time while it is in
    /// cache): written into `dx` where its flag says it is the first to be, else added.
    fn backward(&self, rows: usize, dz: &mut [f32], dx: Option<(&mut [f32], bool)>) {
        let (channels, positions, groups) = self.shape;
        let len = channels * positions;
        let mut tr = self.trace.write().expect("group norm trace lock");
        let per_example = tr.reset(rows, 2 * channels);
        let output = |i: usize| self.output.as_ref().map(|y| &y[i * len..(i + 1) * len]);
        let parts = per_example
            .par_chunks_mut(2 * channels)
            .zip(dz.par_chunks_mut(len))
            .zip(
                self.input
                    .par_chunks(len)
                    .zip(self.stats.par_chunks(2 * groups)),
            )
            .enumerate();
        match dx {
            Some((dx, first)) => parts.zip(dx.par_chunks_mut(len)).for_each_init(
                Vec::new,
                |channel, ((i, ((g, dzi), xi)), dxi)| {
                    wide(
                        #[inline(always)]
                        || self.example(g, (dzi, output(i), channel), xi, Some((dxi, first))),
                    )
                },
            ),
            None => parts.for_each_init(Vec::new, |channel, (i, ((g, dzi), xi))| {
                wide(
                    #[inline(always)]
                    || self.example(g, (dzi, output(i), channel), xi, None),
                )
            }),
        }
        tr.compute_sum();
    }

    /// One example: `g` (`dgamma` then `dbeta`) from the output gradient `dz` (with its output
    /// `y`, or without it the buffer `channel` to recompute each channel of it in: made the
    /// pre-activation gradient first) and the input `x` with its group statistics `stats`
    /// (`xhat = (x - mean) s`, recomputed); its input gradient into `dx` when given, written
    /// there if its flag says so, else added.
    #[inline(always)]
    fn example(
        &self,
        g: &mut [f32],
        (dz, y, channel): (&mut [f32], Option<&[f32]>, &mut Vec<f32>),
        (x, stats): (&[f32], &[f32]),
        dx: Option<(&mut [f32], bool)>,
    ) {
        let (channels, positions, groups) = self.shape;
        let (gamma, beta) = self.params.split_at(channels);
        let per_group = channels / groups;
        let stat = |c: usize| channel_stats(stats, c, per_group);
        for c in 0..channels {
            let range = c * positions..(c + 1) * positions;
            let d = &mut dz[range.clone()];
            if let Some(f) = self.activation {
                let yc = match y {
                    Some(y) => &y[range.clone()],
                    None => {
                        // the values the forward pass computed, computed the same way again
                        channel.resize(positions, 0.0);
                        normalise_channel(channel, &x[range.clone()], (gamma[c], beta[c]), stat(c));
                        f.apply_in_place(channel);
                        &channel[..]
                    }
                };
                f.backprop_from_output(yc, d);
            }
            (g[c], g[channels + c]) = dot_normalised_and_sum(d, &x[range], stat(c));
        }
        let dz = &*dz;
        let Some((dx, first)) = dx else { return };
        // dx = s / n (n dxhat - sum(dxhat) - xhat sum(dxhat xhat)), dxhat = gamma_c dz, per group
        let n = (per_group * positions) as f32;
        for k in 0..groups {
            let cs = k * per_group..(k + 1) * per_group;
            let sum: f32 = cs.clone().map(|c| gamma[c] * g[channels + c]).sum();
            let dot: f32 = cs.clone().map(|c| gamma[c] * g[c]).sum();
            for c in cs {
                let (m, s) = stat(c);
                let range = c * positions..(c + 1) * positions;
                let scale = s / n;
                let grad =
                    |dzk: f32, xk: f32| scale * (n * gamma[c] * dzk - sum - (xk - m) * s * dot);
                let values = dx[range.clone()]
                    .iter_mut()
                    .zip(&dz[range.clone()])
                    .zip(&x[range]);
                if first {
                    values.for_each(|((d, dzk), xk)| *d = grad(*dzk, *xk));
                } else {
                    values.for_each(|((d, dzk), xk)| *d += grad(*dzk, *xk));
                }
            }
        }
    }
}

/// The mean and inverse deviation of channel `c`'s group among an example's `stats`, with
/// `per_group` channels to a group.
#[inline(always)]
fn channel_stats(stats: &[f32], c: usize, per_group: usize) -> (f32, f32) {
    (stats[c / per_group * 2], stats[c / per_group * 2 + 1])
}

/// `out = gamma ((x - m) s) + beta` for one channel `x` with its scale and shift and its
/// group's mean `m` and inverse deviation `s`.
#[inline(always)]
fn normalise_channel(out: &mut [f32], x: &[f32], (gamma, beta): (f32, f32), (m, s): (f32, f32)) {
    for (o, v) in out.iter_mut().zip(x) {
        *o = gamma * ((v - m) * s) + beta;
    }
}

/// Independent sums of each pass over a group or a channel: four AVX-512 vectors of doubles,
/// two of floats per sum, so that no pass waits on one chain of additions.
const LANES: usize = 32;

/// `sum_k f(x_k)` in double precision, in [`LANES`] independent lanes (vectorised).
#[inline(always)]
fn lanes_f64(x: &[f32], f: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0f64; LANES];
    let mut parts = x.chunks_exact(LANES);
    for part in &mut parts {
        for (l, v) in lanes.iter_mut().zip(part) {
            *l += f(*v as f64);
        }
    }
    let tail: f64 = parts.remainder().iter().map(|v| f(*v as f64)).sum();
    lanes.iter().sum::<f64>() + tail
}

/// `(a . xhat, sum_k a_k)` with `xhat = (x - m) s`, in one pass of [`LANES`] independent
/// lanes for each (vectorised).
#[inline(always)]
fn dot_normalised_and_sum(a: &[f32], x: &[f32], (m, s): (f32, f32)) -> (f32, f32) {
    let (mut dots, mut sums) = ([0.0f32; LANES], [0.0f32; LANES]);
    for (part, o) in a.chunks_exact(LANES).zip(x.chunks_exact(LANES)) {
        for k in 0..LANES {
            dots[k] += part[k] * ((o[k] - m) * s);
            sums[k] += part[k];
        }
    }
    let rest = a.len() - a.len() % LANES;
    let (mut dot, mut sum) = (dots.iter().sum::<f32>(), sums.iter().sum::<f32>());
    for (v, w) in a[rest..].iter().zip(&x[rest..]) {
        dot += v * ((w - m) * s);
        sum += v;
    }
    (dot, sum)
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
