//! Activation gradients are made in a spare buffer that holds an earlier gradient's values:
//! the first layer to write one must write every value. A convolution sums its gradient in
//! buffers that another layer used last: it must write its partial sums before it adds to
//! them. Checked passes hand both NaN instead: a value left unwritten would reach the
//! gradients.

use coherent_core::{BatchGrads, GradRequest, InputShape, LossKind, Model, ModelSpec};
use coherent_nn::check::{random_batch, with_first_writes_checked};
use coherent_nn::{Activation, Init, NetworkBuilder, Sequential};

/// Every layer that writes its input gradient first: GroupNorm, convolutions of stride 1 (their
/// adjoint) and 2 (unfolded), residual blocks with an identity shortcut and a projection.
fn network() -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(3, 16, 16), 10).with_seed(11);
    let mut b = NetworkBuilder::new(&spec, false, Init::He);
    let relu = Some(Activation::Relu);
    for _ in 0..2 {
        b.conv(16, 3, 1, 1, None).unwrap();
        b.group_norm(4, relu).unwrap();
    }
    b.residual(
        |body| {
            body.conv(16, 3, 1, 1, None)?;
            body.group_norm(4, relu)?;
            body.conv(16, 3, 1, 1, None)?;
            body.group_norm(4, None)?;
            Ok(())
        },
        None,
        relu,
    )
    .unwrap();
    b.conv(64, 3, 2, 1, None).unwrap();
    b.group_norm(8, relu).unwrap();
    b.residual(
        |body| {
            body.conv(64, 3, 2, 1, relu)?;
            body.conv(64, 3, 1, 1, None)?;
            Ok(())
        },
        Some((64, 2)),
        relu,
    )
    .unwrap();
    b.global_avg_pool();
    b.dense(10, None).unwrap();
    b.build().unwrap()
}

#[test]
fn every_gradient_and_partial_sum_is_written_before_it_is_read() {
    let batch = random_batch(24, 3 * 16 * 16, 10, LossKind::CrossEntropy, 5);
    let norms = GradRequest {
        sq_norms: true,
        ..GradRequest::SUM
    };
    let everything = GradRequest {
        coord_sum_sq: true,
        per_example: true,
        ..norms.clone()
    };
    for request in [GradRequest::SUM, norms, everything] {
        let mut model = network();
        let mut pass = || {
            let mut out = BatchGrads::default();
            model.forward_backward(&batch, &request, &mut out);
            out
        };
        let plain = pass();
        assert!(plain.sum.iter().all(|g| g.iter().any(|v| *v != 0.0)));
        for k in 0..3 {
            let checked = with_first_writes_checked(&mut pass);
            let equal = [
                (checked.sum == plain.sum, "summed gradient"),
                (checked.sq_norms == plain.sq_norms, "norms"),
                (
                    checked.coord_sum_sq == plain.coord_sum_sq,
                    "sums of squares",
                ),
                (
                    checked.per_example == plain.per_example,
                    "per-example gradients",
                ),
            ];
            for (same, what) in equal {
                assert!(same, "{what}, checked pass {k}");
            }
        }
    }
}
