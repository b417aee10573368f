//! A convolution (and its activation) followed by a max pool whose windows do not overlap, in
//! one pass: each task pools the outputs of its examples from a buffer of its thread while
//! they are in cache, so the convolution's output is neither written to memory nor kept. In
//! the backward pass the pool writes the gradient of the convolution's pre-activation values
//! itself (each window's gradient through the activation's derivative at the window's
//! largest value), so neither the activation's derivative nor the zero-filling of the
//! gradient takes a pass of its own. The numbers are those of the two layers one after the
//! other, bit for bit.

use super::forward::{examples, examples_per_task, record};
use super::implicit::with_scratch;
use super::Conv2d;
use crate::act::{empty_buffer, Act, CpuTape};
use crate::simd::wide;
use crate::{Pool2d, PoolKind};
use rayon::prelude::*;
use std::cell::RefCell;

thread_local! {
    /// The outputs of the examples of this thread's task, before they are pooled.
    static OUTPUTS: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

impl Conv2d {
    /// Whether `pool` can take this layer's output in one pass with it: a max pool of the
    /// output's shape whose windows do not overlap (so that every output value has at most
    /// one window's gradient to take through the activation's derivative).
    pub(crate) fn pools_into(&self, pool: &Pool2d) -> bool {
        let g = self.geom;
        pool.kind == PoolKind::Max
            && pool.stride >= pool.kernel
            && (pool.channels, pool.height, pool.width)
                == (g.out_channels, g.out_height(), g.out_width())
    }

    /// The forward pass of this layer then `pool` (see [`Conv2d::pools_into`]) on `x`: the
    /// pool's output, both layers' backward ops on the tape.
    pub(crate) fn forward_pooled(
        &self,
        pool: &Pool2d,
        x: Act<CpuTape>,
        input_needs_grad: bool,
    ) -> Act<CpuTape> {
        let g = self.geom;
        let m = examples_per_task(&g);
        let pooled = pool.output_len();
        let (mut out, mut argmax) = (vec![0.0; x.rows * pooled], vec![0; x.rows * pooled]);
        out.par_chunks_mut(m * pooled)
            .zip(argmax.par_chunks_mut(m * pooled))
            .zip(x.data.par_chunks(m * g.input_len()))
            .for_each(|((ys, as_), xs)| {
                with_outputs(|y| {
                    y.resize(ys.len() / pooled * g.output_len(), 0.0);
                    with_scratch(|s| examples(self, xs, s, y));
                    let pooled_examples = ys
                        .chunks_exact_mut(pooled)
                        .zip(as_.chunks_exact_mut(pooled));
                    for ((ye, ae), y) in pooled_examples.zip(y.chunks_exact(g.output_len())) {
                        wide(
                            #[inline(always)]
                            || pool.max_windows(y, ye, ae),
                        );
                    }
                })
            });
        let output = record(self, x, input_needs_grad, empty_buffer(), None);
        pool.record_before_activation(output, out, argmax, self.activation)
    }
}

/// Runs `f` with this thread's output buffer (a fresh one if it is already in use further up
/// the stack).
fn with_outputs<R>(f: impl FnOnce(&mut Vec<f32>) -> R) -> R {
    OUTPUTS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut y) => f(&mut y),
        Err(_) => f(&mut Vec::new()),
    })
}
