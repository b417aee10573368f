//! Checking a model's per-example quantities against per-example gradients computed another
//! way — the test a new layer or network needs.
//!
//! [`check_quantities`] asks the model for every quantity of a [`GradRequest`] on one batch
//! (summed gradient, squared norms, coordinate-wise sums of squares, Gram matrices,
//! materialised per-example gradients, blocks, group and subset sums, losses) and compares each
//! with the same quantity computed from explicit per-example gradients — typically
//! [`crate::reference::per_example_by_loop`] (one backward pass per example) or
//! [`crate::reference::per_example_grads`] (dfdx's own ops). [`m_coherence_by_loop`] is the
//! m-coherence of a batch the slow, obvious way.
//!
//! ```
//! use coherent_core::{Batch, LossKind, Rng, Split, Targets};
//! use coherent_nn::{check, reference, Activation, Dense, Init, Sequential};
//!
//! let mut rng = Rng::new(1);
//! let layers: Vec<Box<dyn coherent_nn::Layer>> = vec![
//!     Box::new(Dense::new(4, 5, true, Init::Uniform, &mut rng).with_activation(Activation::Tanh)),
//!     Box::new(Dense::new(5, 3, true, Init::Uniform, &mut rng)),
//! ];
//! let mut model = Sequential::new(4, layers, LossKind::CrossEntropy);
//! let inputs = (0..24).map(|_| rng.normal() as f32).collect();
//! let split = Split::new(inputs, 4, Targets::Classes { labels: vec![0, 1, 2, 0, 1, 2], classes: 3 });
//! let mut batch = Batch::default();
//! batch.gather(&split, &[0, 1, 2, 3, 4, 5]);
//! let by_loop = reference::per_example_by_loop(&mut model, &batch);
//! check::check_quantities(&mut model, &batch, &by_loop);
//! ```

use crate::reference::per_example_by_loop;
use coherent_core::{Batch, BatchGrads, GradRequest, LossKind, Model, Rng, Split, Targets};

/// Asserts that `got` equals `want` to a relative error of 1e-5 (in the Euclidean norm), or
/// within 1e-7 absolute for vectors near zero; `what` names the quantity in the failure.
///
/// # Panics
/// When they differ.
pub fn assert_close(got: &[f32], want: &[f32], what: &str) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    let diff: f64 = got
        .iter()
        .zip(want)
        .map(|(a, b)| ((a - b) as f64).powi(2))
        .sum();
    let norm: f64 = want.iter().map(|b| (*b as f64).powi(2)).sum();
    let rel = (diff / norm.max(1e-30)).sqrt();
    assert!(
        rel <= 1e-5 || diff.sqrt() < 1e-7,
        "{what}: relative error {rel:e}"
    );
}

/// Asserts that every per-example quantity `model` computes for `b` equals the one computed
/// from the explicit per-example gradients `by_loop[i][layer]`: the summed gradient, squared
/// norms, coordinate-wise sums of squares, Gram matrices, materialised per-example gradients,
/// uneven coordinate blocks (both layouts), three group sums, three subsets' sums (one empty),
/// and the per-example losses against [`Model::evaluate`]; then the summed gradient, the norms
/// and the blocks each asked alone (where a layer may take a shorter way to them).
///
/// # Panics
/// At the first quantity that differs, naming the layer and the quantity.
pub fn check_quantities(model: &mut dyn Model, b: &Batch, by_loop: &[Vec<Vec<f32>>]) {
    let rows = b.len();
    let request = full_request(rows);
    let mut out = BatchGrads::default();
    model.forward_backward(b, &request, &mut out);
    assert_eq!(out.batch_size, rows);
    let layers = model.layers().to_vec();
    for (l, info) in layers.iter().enumerate() {
        let g = |i: usize| &by_loop[i][l];
        let p = info.params;
        let name = &info.name;
        let sum: Vec<f32> = (0..p).map(|k| (0..rows).map(|i| g(i)[k]).sum()).collect();
        assert_close(&out.sum[l], &sum, &format!("{name} sum"));
        let norms: Vec<f32> = (0..rows)
            .map(|i| g(i).iter().map(|v| v * v).sum())
            .collect();
        assert_close(&out.sq_norms[l], &norms, &format!("{name} sq_norms"));
        let css: Vec<f32> = (0..p)
            .map(|k| (0..rows).map(|i| g(i)[k] * g(i)[k]).sum())
            .collect();
        assert_close(&out.coord_sum_sq[l], &css, &format!("{name} coord_sum_sq"));
        let gram: Vec<f32> = (0..rows * rows)
            .map(|ij| {
                let (i, j) = (ij / rows, ij % rows);
                g(i).iter().zip(g(j)).map(|(a, b)| a * b).sum()
            })
            .collect();
        assert_close(&out.gram[l], &gram, &format!("{name} gram"));
        let per_example: Vec<f32> = (0..rows).flat_map(|i| g(i).iter().copied()).collect();
        assert_close(
            &out.per_example[l],
            &per_example,
            &format!("{name} per_example"),
        );
        for (k, sums) in out.group_sums.iter().enumerate() {
            let range = BatchGrads::group_range(k, 3.min(rows), rows);
            let want: Vec<f32> = (0..p)
                .map(|c| range.clone().map(|i| g(i)[c]).sum())
                .collect();
            assert_close(&sums[l], &want, &format!("{name} group {k}"));
        }
        for (subset, sums) in request.subsets.iter().zip(&out.subset_sums) {
            let want: Vec<f32> = (0..p)
                .map(|c| subset.iter().map(|&i| g(i)[c]).sum())
                .collect();
            assert_close(&sums[l], &want, &format!("{name} subset {subset:?}"));
        }
    }
    assert_eq!(out.group_sums.len(), 3.min(rows));
    assert_eq!(out.subset_sums.len(), 3);
    model.per_example_blocks(&mut |src| {
        assert_eq!((src.batch(), src.layers()), (rows, layers.len()));
        for (l, info) in layers.iter().enumerate() {
            let p = info.params;
            assert_eq!(src.layer_params(l), p, "{}", info.name);
            // uneven blocks that straddle the weights and the biases
            let mut start = 0;
            while start < p {
                let end = (start + 5 + start % 3).min(p);
                let mut got = vec![f32::NAN; (end - start) * rows];
                src.block(l, start..end, &mut got);
                let want: Vec<f32> = (start..end)
                    .flat_map(|c| (0..rows).map(move |i| (i, c)))
                    .map(|(i, c)| by_loop[i][l][c])
                    .collect();
                assert_close(&got, &want, &format!("{} block {start}..{end}", info.name));
                src.block_rows(l, start..end, &mut got);
                let want: Vec<f32> = (0..rows)
                    .flat_map(|i| (start..end).map(move |c| by_loop[i][l][c]))
                    .collect();
                assert_close(&got, &want, &format!("{} rows {start}..{end}", info.name));
                start = end;
            }
            let weights: Vec<f32> = (0..rows).map(|i| 0.5 - 0.25 * i as f32).collect();
            let mut got = vec![f32::NAN; p];
            if src.weighted_sum(l, &weights, &mut got) {
                let want: Vec<f32> = (0..p)
                    .map(|c| (0..rows).map(|i| weights[i] * by_loop[i][l][c]).sum())
                    .collect();
                assert_close(&got, &want, &format!("{} weighted sum", info.name));
            }
        }
    });
    let (mut losses, mut correct) = (vec![], vec![]);
    model.evaluate(b, &mut losses, &mut correct);
    assert_close(&out.losses, &losses, "losses");
    assert_eq!(out.correct, correct, "correct");
    check_each_alone(model, b, by_loop);
}

/// The summed gradient with, in turn, nothing else, the squared norms alone and the blocks
/// alone, against `by_loop`.
fn check_each_alone(model: &mut dyn Model, b: &Batch, by_loop: &[Vec<Vec<f32>>]) {
    let rows = b.len();
    let layers = model.layers().to_vec();
    for request in [GradRequest::SUM, GradRequest::SQ_NORMS, GradRequest::BLOCKS] {
        let mut out = BatchGrads::default();
        model.forward_backward(b, &request, &mut out);
        for (l, info) in layers.iter().enumerate() {
            let name = format!("{} asked alone by {request:?}", info.name);
            let sum: Vec<f32> = (0..info.params)
                .map(|k| (0..rows).map(|i| by_loop[i][l][k]).sum())
                .collect();
            assert_close(&out.sum[l], &sum, &format!("{name}: sum"));
            if request.sq_norms {
                let norms: Vec<f32> = (0..rows)
                    .map(|i| by_loop[i][l].iter().map(|v| v * v).sum())
                    .collect();
                assert_close(&out.sq_norms[l], &norms, &format!("{name}: sq_norms"));
            }
        }
        if !request.blocks {
            continue;
        }
        model.per_example_blocks(&mut |src| {
            for (l, info) in layers.iter().enumerate() {
                let mut got = vec![f32::NAN; info.params * rows];
                src.block_rows(l, 0..info.params, &mut got);
                let want: Vec<f32> = by_loop.iter().flat_map(|g| g[l].iter().copied()).collect();
                assert_close(&got, &want, &format!("{} blocks asked alone", info.name));
            }
        });
    }
}

/// The m-coherence `|sum_i g_i|^2 / sum_i |g_i|^2` of the examples of `batch` (whole network),
/// from one backward pass per example, in f64.
pub fn m_coherence_by_loop(model: &mut dyn Model, batch: &Batch) -> f64 {
    let grads = per_example_by_loop(model, batch);
    let flat: Vec<Vec<f64>> = grads
        .iter()
        .map(|g| g.iter().flatten().map(|&v| v as f64).collect())
        .collect();
    let sum: Vec<f64> = (0..flat[0].len())
        .map(|k| flat.iter().map(|g| g[k]).sum())
        .collect();
    let q: f64 = flat
        .iter()
        .map(|g| g.iter().map(|v| v * v).sum::<f64>())
        .sum();
    sum.iter().map(|v| v * v).sum::<f64>() / q
}

/// A batch of `rows` examples of `dim` standard normal features: for cross-entropy, labels
/// uniform in `0..classes`; for the squared loss, standard normal targets. Drawn from `seed`.
pub fn random_batch(rows: usize, dim: usize, classes: usize, loss: LossKind, seed: u64) -> Batch {
    let mut rng = Rng::new(seed);
    let inputs: Vec<f32> = (0..rows * dim).map(|_| rng.normal() as f32).collect();
    let targets = match loss {
        LossKind::CrossEntropy => Targets::Classes {
            labels: (0..rows).map(|_| rng.below(classes) as u32).collect(),
            classes,
        },
        LossKind::Squared => Targets::Values((0..rows).map(|_| rng.normal() as f32).collect()),
    };
    let split = Split::new(inputs, dim, targets);
    let mut b = Batch::default();
    b.gather(&split, &(0..rows).collect::<Vec<_>>());
    b
}

/// A request of every quantity for a batch of `rows` examples: three groups, and three subsets
/// (every other example backwards, the first one alone, and none).
pub fn full_request(rows: usize) -> GradRequest {
    GradRequest {
        sq_norms: true,
        coord_sum_sq: true,
        gram: true,
        per_example: true,
        blocks: true,
        groups: 3,
        subsets: vec![(0..rows).rev().step_by(2).collect(), vec![0], vec![]],
    }
}

/// Runs `f` with the first writes of activation gradients checked: the first consumer of a
/// gradient ([`crate::ActGrad::write_or_add`] with `first`) receives NaN in every value instead
/// of whatever its buffer held, so a layer that leaves some values unwritten puts NaN into the
/// gradients of every layer before it. The buffers in which layers sum their gradients,
/// shared by every layer, hold NaN too when a layer takes one. Compare a pass run inside with
/// one run outside: they are equal, bit for bit, when every first consumer writes every value
/// and every layer writes its sums before it reads them. (Passes that run at
/// the same time elsewhere in the process are checked too, which changes none of their
/// results either.)
pub fn with_first_writes_checked<R>(f: impl FnOnce() -> R) -> R {
    crate::spare::CHECKING.while_on(f)
}

/// Runs `f` with every layer in a pass of its own, where passes otherwise run two layers as
/// one: a residual block's sum in the pass of its body's last layer where that is a GroupNorm
/// without an activation (which writes the block's output as it normalises each example), a
/// GroupNorm followed by a max pool (which pools each channel as it normalises it), and a
/// convolution followed by a max pool whose windows do not overlap (which pools each example's
/// output from a buffer of its thread, and writes the convolution's pre-activation gradient in
/// its backward pass). Both ways
/// give the same numbers, bit for bit; a test compares them. (Passes that run at the same time
/// elsewhere in the process run unfused too.)
pub fn without_fused_layers<R>(f: impl FnOnce() -> R) -> R {
    crate::switch::UNFUSED.while_on(f)
}

/// Asserts that the summed gradient of the parameters `coords` of `layer` equals central
/// finite differences of the summed loss over `batch` (step 1e-2, tolerance 2e-3 plus 2%):
/// an independent check of a layer's backward pass. The parameters are left as they were.
///
/// # Panics
/// At the first parameter whose gradient differs.
pub fn check_finite_differences(
    model: &mut dyn Model,
    batch: &Batch,
    layer: usize,
    coords: &[usize],
) {
    let mut out = BatchGrads::default();
    model.forward_backward(batch, &GradRequest::SUM, &mut out);
    let total = |m: &dyn Model| -> f64 {
        let (mut l, mut c) = (vec![], vec![]);
        m.evaluate(batch, &mut l, &mut c);
        l.iter().map(|&v| v as f64).sum()
    };
    let name = model.layers()[layer].name.clone();
    let h = 1e-2f32;
    for &k in coords {
        model.params_mut()[layer][k] += h;
        let up = total(model);
        model.params_mut()[layer][k] -= 2.0 * h;
        let down = total(model);
        model.params_mut()[layer][k] += h;
        let fd = (up - down) / (2.0 * h as f64);
        let g = out.sum[layer][k] as f64;
        assert!(
            (fd - g).abs() < 2e-3 + 2e-2 * g.abs(),
            "{name} parameter {k}: finite differences {fd} vs gradient {g}"
        );
    }
}
