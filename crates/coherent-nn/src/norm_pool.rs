//! A GroupNorm followed by a max pool, in one pass: each channel of an example is normalised
//! (and activated) in a buffer of its thread and pooled from there, so the GroupNorm's output
//! is neither written to memory nor kept. Its backward pass recomputes a channel where it needs
//! the activation's derivative. The numbers are those of the two layers one after the other,
//! bit for bit (`check::without_fused_layers` runs them so, for the tests to compare).

use crate::act::{Act, CpuTape};
use crate::simd::wide;
use crate::{GroupNorm, Pool2d, PoolKind};
use rayon::prelude::*;
use std::sync::Arc;

/// Whether `pool` can take `norm`'s output in one pass with it: a max pool of its shape.
pub(crate) fn fits(norm: &GroupNorm, pool: &Pool2d) -> bool {
    let (channels, positions) = norm.shape();
    pool.kind == PoolKind::Max && pool.channels == channels && pool.height * pool.width == positions
}

/// The forward pass of `norm` then `pool` on `x`: the pool's output, both layers' backward
/// ops on the tape.
pub(crate) fn forward(
    (norm, pool): (&GroupNorm, &Pool2d),
    x: Act<CpuTape>,
    input_needs_grad: bool,
) -> Act<CpuTape> {
    let (rows, len, pooled) = (x.rows, norm.len(), pool.output_len());
    let (mut out, mut argmax) = (vec![0.0; rows * pooled], vec![0; rows * pooled]);
    let mut stats = norm.stats_for(rows);
    out.par_chunks_mut(pooled)
        .zip(argmax.par_chunks_mut(pooled))
        .zip(Arc::make_mut(&mut stats).par_chunks_mut(norm.stats_len()))
        .zip(x.data.par_chunks(len))
        .for_each_init(Vec::new, |channel, (((ye, ae), st), xe)| {
            wide(
                #[inline(always)]
                || example((norm, pool), (xe, st), channel, (ye, ae)),
            )
        });
    let stats = stats.clone();
    let normalised = norm.record(x, input_needs_grad, stats, None);
    // the GroupNorm's parameters have gradients: its output's gradient is always needed
    pool.record(normalised, true, out, argmax)
}

/// One example `x`: its group statistics into `stats`, then channel by channel the GroupNorm's
/// output in `channel` and its windows' largest values into `ye` and their places (in the
/// GroupNorm's output) into `ae`.
#[inline(always)]
fn example(
    (norm, pool): (&GroupNorm, &Pool2d),
    (x, stats): (&[f32], &mut [f32]),
    channel: &mut Vec<f32>,
    (ye, ae): (&mut [f32], &mut [u32]),
) {
    norm.group_stats(x, stats);
    let plane = pool.plane();
    let (positions, pooled) = (plane.input_len(), plane.output_len());
    channel.resize(positions, 0.0);
    let outputs = ye.chunks_exact_mut(pooled).zip(ae.chunks_exact_mut(pooled));
    for (c, (xc, (yc, ac))) in x.chunks_exact(positions).zip(outputs).enumerate() {
        norm.channel_into(c, xc, stats, channel);
        plane.max_windows(channel, yc, ac);
        let first = (c * positions) as u32;
        ac.iter_mut().for_each(|a| *a += first);
    }
}
