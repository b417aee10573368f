//! A residual block whose body ends in a GroupNorm without an activation takes its sum into
//! that GroupNorm's pass. The numbers are those of the sum taken in a pass of its own, bit for
//! bit, in the forward pass, in every gradient and per-example quantity, and on the tape-free
//! evaluation path.

use coherent_core::{BatchGrads, GradRequest, InputShape, LossKind, Model, ModelSpec};
use coherent_nn::check::{random_batch, without_fused_sums};
use coherent_nn::{Activation, Init, NetworkBuilder, Sequential};

/// Blocks that fuse (identity and projection shortcuts, ReLU, tanh and no activation on the
/// sum, one first in the network so that its input needs no gradient) and one that does not
/// (its body ends in a GroupNorm with an activation).
fn network() -> Sequential {
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

#[test]
fn a_sum_taken_in_the_last_group_norm_equals_a_sum_in_a_pass_of_its_own() {
    let batch = random_batch(12, 8 * 8 * 8, 10, LossKind::CrossEntropy, 7);
    let everything = GradRequest {
        sq_norms: true,
        coord_sum_sq: true,
        per_example: true,
        ..GradRequest::SUM
    };
    for request in [GradRequest::SUM, everything] {
        let mut model = network();
        // GroupNorm's gamma and beta away from 1 and 0, where a change of order would round
        let mut rng = coherent_core::Rng::new(1);
        for p in model.params_mut() {
            p.iter_mut().for_each(|v| *v += 0.3 * rng.normal() as f32);
        }
        let mut pass = || {
            let mut out = BatchGrads::default();
            model.forward_backward(&batch, &request, &mut out);
            out
        };
        let fused = pass();
        let unfused = without_fused_sums(&mut pass);
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
