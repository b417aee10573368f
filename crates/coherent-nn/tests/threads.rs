//! A pass computes the same numbers, bit for bit, on any number of threads: the kernels are
//! chosen by shape and every sum over examples runs in fixed groups, so a run (and a resumed
//! run, or a run of a sweep) is reproducible whatever the machine's cores.

use coherent_core::{BatchGrads, GradRequest, InputShape, LossKind, Model, ModelSpec};
use coherent_nn::check::random_batch;
use coherent_nn::{Activation, Init, NetworkBuilder, Sequential};

/// Convolutions (with GroupNorm, a residual block and a projection), pooling and dense layers
/// large enough that products take the parallel kernel.
fn network() -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(3, 16, 16), 10).with_seed(7);
    let mut b = NetworkBuilder::new(&spec, false, Init::He);
    let relu = Some(Activation::Relu);
    b.conv(16, 3, 1, 1, None).unwrap();
    b.group_norm(4, relu).unwrap();
    b.residual(
        |body| {
            body.conv(32, 3, 2, 1, relu)?;
            body.conv(32, 3, 1, 1, None)?;
            Ok(())
        },
        Some((32, 2)),
        relu,
    )
    .unwrap();
    b.global_avg_pool();
    b.dense(256, relu).unwrap();
    b.dense(10, None).unwrap();
    b.build().unwrap()
}

/// The summed gradient, the per-example squared norms and the coordinate-wise sums of squares
/// of one pass on `threads` threads.
fn pass_on(threads: usize) -> BatchGrads {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    pool.install(|| {
        let mut model = network();
        let batch = random_batch(40, 3 * 16 * 16, 10, LossKind::CrossEntropy, 3);
        let mut out = BatchGrads::default();
        let request = GradRequest {
            sq_norms: true,
            coord_sum_sq: true,
            ..GradRequest::SUM
        };
        model.forward_backward(&batch, &request, &mut out);
        out
    })
}

#[test]
fn one_two_and_three_threads_give_identical_gradients() {
    let one = pass_on(1);
    assert!(one.sum.iter().flatten().any(|v| *v != 0.0));
    for threads in [2, 3] {
        let other = pass_on(threads);
        assert!(one.sum == other.sum, "summed gradient on {threads} threads");
        assert!(one.sq_norms == other.sq_norms, "norms on {threads} threads");
        assert!(
            one.coord_sum_sq == other.coord_sum_sq,
            "coordinate sums of squares on {threads} threads"
        );
    }
}
