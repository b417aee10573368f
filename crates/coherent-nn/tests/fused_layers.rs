//! Two layers run as one pass: a residual block's sum in its body's last GroupNorm, a
//! GroupNorm followed by a max pool, and a convolution followed by a max pool. The numbers are those of the layers in passes of their
//! own, bit for bit, in the forward pass, in every gradient and per-example quantity, and on
//! the tape-free evaluation path.

use coherent_core::{BatchGrads, GradRequest, InputShape, LossKind, Model, ModelSpec};
use coherent_nn::check::{random_batch, without_fused_layers};
use coherent_nn::{Activation, Init, NetworkBuilder, Pool2d, PoolKind, Sequential};

/// Blocks that fuse (identity and projection shortcuts, ReLU, tanh and no activation on the
/// sum, one first in the network so that its input needs no gradient) and one that does not
/// (its body ends in a GroupNorm with an activation).
fn residual_network() -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(8, 8, 8), 10).with_seed(3);
    let mut b = NetworkBuilder::new(&spec, false, Init::He);
    let (relu, tanh) = (Some(Activation::Relu), Some(Activation::Tanh));
    let body = |last: Option<Activation>| {
        move |body: &mut NetworkBuilder| {
            body.conv(8, 3, 1, 1, None)?;
            body.group_norm(4, relu)?;
            body.conv(8, 3, 1, 1, None)?;
            body.group_norm(2, last)?;
            Ok(())
        }
    };
    b.residual(body(None), None, relu).unwrap();
    b.residual(body(None), None, tanh).unwrap();
    b.residual(body(None), None, None).unwrap();
    b.residual(body(relu), None, relu).unwrap();
    b.residual(
        |body| {
            body.conv(16, 3, 2, 1, None)?;
            body.group_norm(4, None)?;
            Ok(())
        },
        Some((16, 2)),
        relu,
    )
    .unwrap();
    b.global_avg_pool();
    b.dense(10, None).unwrap();
    b.build().unwrap()
}

/// GroupNorms with ReLU, tanh and no activation before 2x2 max pools (one on odd sides, one
/// first in the network), and one before an average pool, which does not fuse.
fn pooled_network() -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(4, 14, 14), 10).with_seed(5);
    let mut b = NetworkBuilder::new(&spec, false, Init::He);
    let (relu, tanh) = (Some(Activation::Relu), Some(Activation::Tanh));
    b.group_norm(2, relu).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.conv(8, 3, 1, 1, None).unwrap();
    b.group_norm(4, tanh).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.conv(8, 3, 1, 1, None).unwrap();
    b.group_norm(2, None).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.conv(8, 1, 1, 0, None).unwrap();
    b.group_norm(2, relu).unwrap();
    b.pool(PoolKind::Avg, 1).unwrap();
    b.dense(10, None).unwrap();
    b.build().unwrap()
}

/// Convolutions with ReLU, tanh and no activation before 2x2 max pools (one first in the
/// network, one on odd sides, one whose tiles take several examples at once), and one (tanh)
/// before a max pool whose windows overlap, which does not fuse: a value that wins two windows
/// takes their gradients' sum through the derivative once.
fn conv_pooled_network() -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(3, 14, 14), 10).with_seed(9);
    let mut b = NetworkBuilder::new(&spec, true, Init::He);
    let (relu, tanh) = (Some(Activation::Relu), Some(Activation::Tanh));
    b.conv(8, 3, 1, 1, relu).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.conv(8, 3, 1, 1, tanh).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.conv(8, 1, 1, 0, tanh).unwrap();
    let overlapping = Pool2d {
        kind: PoolKind::Max,
        channels: 8,
        height: 3,
        width: 3,
        kernel: 2,
        stride: 1,
    };
    b.push(Box::new(overlapping), (8, 2, 2));
    b.conv(8, 1, 1, 0, None).unwrap();
    b.pool(PoolKind::Max, 2).unwrap();
    b.dense(10, None).unwrap();
    b.build().unwrap()
}

/// Passes of `model` on a batch with fusion and without, compared bit for bit.
fn fused_equals_unfused(mut model: Sequential, inputs: usize) {
    let batch = random_batch(12, inputs, 10, LossKind::CrossEntropy, 7);
    // GroupNorm's gamma and beta away from 1 and 0, where a change of order would round
    let mut rng = coherent_core::Rng::new(1);
    for p in model.params_mut() {
        p.iter_mut().for_each(|v| *v += 0.3 * rng.normal() as f32);
    }
    let everything = GradRequest {
        sq_norms: true,
        coord_sum_sq: true,
        per_example: true,
        ..GradRequest::SUM
    };
    for request in [GradRequest::SUM, everything] {
        let mut pass = || {
            let mut out = BatchGrads::default();
            model.forward_backward(&batch, &request, &mut out);
            out
        };
        let fused = pass();
        let unfused = without_fused_layers(&mut pass);
        assert!(fused.sum.iter().all(|g| g.iter().any(|v| *v != 0.0)));
        assert!(fused.losses == unfused.losses, "losses");
        assert!(fused.sum == unfused.sum, "summed gradients");
        assert!(fused.sq_norms == unfused.sq_norms, "norms");
        assert!(
            fused.coord_sum_sq == unfused.coord_sum_sq,
            "sums of squares"
        );
        assert!(
            fused.per_example == unfused.per_example,
            "per-example gradients"
        );
        let (mut losses, mut correct) = (Vec::new(), Vec::new());
        model.evaluate(&batch, &mut losses, &mut correct);
        assert!(losses == fused.losses, "the evaluation path's losses");
    }
}

#[test]
fn a_sum_taken_in_the_last_group_norm_equals_a_sum_in_a_pass_of_its_own() {
    fused_equals_unfused(residual_network(), 8 * 8 * 8);
}

#[test]
fn a_group_norm_pooled_channel_by_channel_equals_the_two_layers_one_after_the_other() {
    fused_equals_unfused(pooled_network(), 4 * 14 * 14);
}

#[test]
fn a_convolution_pooled_example_by_example_equals_the_two_layers_one_after_the_other() {
    fused_equals_unfused(conv_pooled_network(), 3 * 14 * 14);
}
