//! Layers that run as one pass: a GroupNorm followed by a max pool (`norm_pool`), and a
//! convolution followed by a max pool whose windows do not overlap (`conv::pooled`). Either way
//! the first layer's output is neither written to memory nor kept, and the numbers are those
//! of the two layers one after the other, bit for bit (`check::without_fused_layers` runs them
//! so, for the tests to compare). A network's layers and a residual block's body both run
//! through [`forward_all`].

use crate::act::{Act, CpuTape};
use crate::layer::Layer;
use crate::switch::UNFUSED;
use crate::{norm_pool, Conv2d, GroupNorm, Pool2d};

/// The forward passes of the layers `ops` one after the other on `x`, the first told whether
/// its input needs a gradient, every later one that it does; the pairs of layers that can run
/// as one pass do.
pub(crate) fn forward_all(
    ops: &[Box<dyn Layer>],
    mut x: Act<CpuTape>,
    input_needs_grad: bool,
) -> Act<CpuTape> {
    let mut k = 0;
    while k < ops.len() {
        let needs_grad = k > 0 || input_needs_grad;
        if let Some(pair) = fused_pair(&ops[k..]) {
            x = pair.forward(x, needs_grad);
            k += 2;
        } else {
            x = ops[k].forward(x, needs_grad);
            k += 1;
        }
    }
    x
}

/// Two layers that run as one pass.
enum Pair<'a> {
    NormPool(&'a GroupNorm, &'a Pool2d),
    ConvPool(&'a Conv2d, &'a Pool2d),
}

impl Pair<'_> {
    /// The forward pass of both layers on `x`.
    fn forward(self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        match self {
            Pair::NormPool(norm, pool) => norm_pool::forward((norm, pool), x, input_needs_grad),
            Pair::ConvPool(conv, pool) => conv.forward_pooled(pool, x, input_needs_grad),
        }
    }
}

/// The two layers that begin `ops`, where they run as one pass.
fn fused_pair(ops: &[Box<dyn Layer>]) -> Option<Pair<'_>> {
    if UNFUSED.is_on() {
        return None;
    }
    let (first, pool) = (ops.first()?, ops.get(1)?.as_any().downcast_ref::<Pool2d>()?);
    if let Some(norm) = first.as_any().downcast_ref::<GroupNorm>() {
        return norm_pool::fits(norm, pool).then_some(Pair::NormPool(norm, pool));
    }
    let conv = first.as_any().downcast_ref::<Conv2d>()?;
    conv.pools_into(pool).then_some(Pair::ConvPool(conv, pool))
}
