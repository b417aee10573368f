//! A layer written outside `coherent-nn`, with its public API only, works with every
//! per-example quantity of the engine.
//!
//! The layer is a per-feature affine map `y = x (.) w + b` (parameters `w` then `b`, one of
//! each per feature). Example `i`'s gradient is `(Delta_i (.) x_i, Delta_i)`, which it keeps in
//! a `MatrixTrace`. Networks put it first, between dense layers, inside a residual block and
//! after a convolution (through `NetworkBuilder`), and every quantity is compared with one
//! forward and backward pass per example (batches of one), the summed gradient also with
//! central finite differences of the loss.

use coherent_core::{Batch, InputShape, LossKind, Model, ModelSpec, Rng};
use coherent_nn::check::{check_finite_differences, check_quantities, random_batch};
use coherent_nn::{
    reference, Act, Activation, CpuTape, Dense, Init, Layer, LayerGrads, MatrixTrace,
    NetworkBuilder, PoolKind, Residual, Sequential,
};
use std::sync::{Arc, RwLock};

/// `y = x (.) w + b` on `features` features.
#[derive(Debug)]
struct Affine {
    features: usize,
    /// `w` then `b`; shared with the backward op of the pass that read them.
    params: Arc<Vec<f32>>,
    trace: Arc<RwLock<MatrixTrace>>,
}

impl Affine {
    /// Weights near 1 and biases near 0, so that the layer neither vanishes nor is the identity.
    fn new(features: usize, rng: &mut Rng) -> Affine {
        let mut params: Vec<f32> = (0..features)
            .map(|_| 1.0 + 0.3 * rng.normal() as f32)
            .collect();
        params.extend((0..features).map(|_| 0.1 * rng.normal() as f32));
        Affine {
            features,
            params: Arc::new(params),
            trace: Arc::default(),
        }
    }
}

impl Layer for Affine {
    fn output_len(&self, input: usize) -> Result<usize, String> {
        if input == self.features {
            Ok(input)
        } else {
            Err(format!(
                "expects {} input features, receives {input}",
                self.features
            ))
        }
    }

    fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
        let mut out = Vec::new();
        self.forward_slice(&x.data, x.rows, &mut out);
        let (n, input) = (self.features, x.data.clone());
        let (params, trace) = (self.params.clone(), self.trace.clone());
        x.record(Arc::new(out), n, input_needs_grad, move |dy, dx| {
            let mut trace = trace.write().unwrap();
            let rows = dy.len() / n;
            let values = trace.reset(rows, 2 * n);
            for (i, g) in values.chunks_exact_mut(2 * n).enumerate() {
                let (dyi, xi) = (&dy[i * n..(i + 1) * n], &input[i * n..(i + 1) * n]);
                let (gw, gb) = g.split_at_mut(n);
                for k in 0..n {
                    gw[k] = dyi[k] * xi[k];
                    gb[k] = dyi[k];
                }
            }
            trace.compute_sum();
            if let Some(dx) = dx {
                for (row, dyi) in dx.chunks_exact_mut(n).zip(dy.chunks_exact(n)) {
                    for k in 0..n {
                        row[k] += dyi[k] * params[k];
                    }
                }
            }
        })
    }

    fn forward_slice(&self, x: &[f32], _rows: usize, out: &mut Vec<f32>) {
        let (w, b) = self.params.split_at(self.features);
        out.clear();
        for row in x.chunks_exact(self.features) {
            out.extend(row.iter().zip(w).zip(b).map(|((x, w), b)| x * w + b));
        }
    }

    fn kind(&self) -> Option<&'static str> {
        Some("affine")
    }

    fn params(&self) -> &[f32] {
        &self.params
    }

    fn params_mut(&mut self) -> &mut [f32] {
        Arc::make_mut(&mut self.params).as_mut_slice()
    }

    fn grads(&self) -> Option<Box<dyn LayerGrads + '_>> {
        Some(Box::new(self.trace.write().unwrap()))
    }

    fn as_any(&self) -> &dyn std::any::Any {
        self
    }
}

/// affine (first layer: no input gradient) -> dense + `act` -> affine -> tanh -> residual
/// block relu(dense + `act` -> affine, identity shortcut) -> dense.
fn mixed_network(act: Activation, seed: u64) -> Sequential {
    let (d, h, classes) = (7, 6, 4);
    let mut rng = Rng::new(seed);
    let block = Residual::new(
        h,
        vec![
            Box::new(Dense::new(h, h, true, Init::Uniform, &mut rng).with_activation(act)),
            Box::new(Affine::new(h, &mut rng)),
        ],
        None,
        Some(Activation::Relu),
    )
    .unwrap();
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Affine::new(d, &mut rng)),
        Box::new(Dense::new(d, h, true, Init::Uniform, &mut rng).with_activation(act)),
        Box::new(Affine::new(h, &mut rng)),
        Box::new(Activation::Tanh),
        Box::new(block),
        Box::new(Dense::new(h, classes, true, Init::Uniform, &mut rng)),
    ];
    Sequential::new(d, layers, LossKind::CrossEntropy)
}

/// Through the builder: conv + relu -> affine on every pixel and channel -> max pool ->
/// residual block (dense + tanh -> affine) -> dense.
fn built_network(seed: u64) -> Sequential {
    let spec = ModelSpec::classifier(InputShape::image(2, 6, 6), 3).with_seed(seed);
    let mut b = NetworkBuilder::new(&spec, true, Init::Uniform);
    b.conv(3, 3, 1, 1, Some(Activation::Relu)).unwrap();
    let affine = Affine::new(3 * 6 * 6, b.rng());
    b.push(Box::new(affine), b.shape());
    b.pool(PoolKind::Max, 2).unwrap();
    b.residual(
        |inner| {
            let (c, h, w) = inner.shape();
            inner.dense(c * h * w, Some(Activation::Tanh))?;
            let affine = Affine::new(c * h * w, inner.rng());
            inner.push(Box::new(affine), (c * h * w, 1, 1));
            Ok(())
        },
        None,
        None,
    )
    .unwrap();
    b.dense(3, None).unwrap();
    b.build().unwrap()
}

fn batch(rows: usize, dim: usize, classes: usize, seed: u64) -> Batch {
    random_batch(rows, dim, classes, LossKind::CrossEntropy, seed)
}

/// Every quantity of the engine against one forward and backward pass per example.
fn check_against_loop(model: &mut Sequential, b: &Batch) {
    let by_loop = reference::per_example_by_loop(model, b);
    check_quantities(model, b, &by_loop);
}

fn names(model: &Sequential) -> Vec<&str> {
    model.layers().iter().map(|l| l.name.as_str()).collect()
}

#[test]
fn custom_layer_between_dense_layers_and_in_a_residual_block_matches_one_pass_per_example() {
    let mut m = mixed_network(Activation::Relu, 70);
    assert_eq!(
        names(&m),
        ["affine1", "fc1", "affine2", "fc2", "affine3", "fc3"]
    );
    assert!(m.layers().iter().all(|l| {
        let affine = l.name.starts_with("affine");
        (l.kind == "affine") == affine && (!affine || l.params == 2 * 7 || l.params == 2 * 6)
    }));
    check_against_loop(&mut m, &batch(7, 7, 4, 71));
    // the same model again, with a batch of one (buffers reused from the previous pass)
    check_against_loop(&mut m, &batch(1, 7, 4, 72));
}

#[test]
fn custom_layer_pushed_through_the_builder_after_a_convolution_matches_one_pass_per_example() {
    let mut m = built_network(80);
    assert_eq!(names(&m), ["conv1", "affine1", "fc1", "affine2", "fc2"]);
    check_against_loop(&mut m, &batch(6, 2 * 6 * 6, 3, 81));
}

/// The summed gradient of the custom layer's parameters against central finite differences
/// of the summed loss (tanh everywhere but the residual block's output, so the loss is smooth
/// near the parameters).
#[test]
fn custom_layer_summed_gradient_matches_finite_differences() {
    let b = batch(4, 7, 4, 91);
    let mut m = mixed_network(Activation::Tanh, 90);
    let affine: Vec<usize> = (0..m.layers().len())
        .filter(|&l| m.layers()[l].kind == "affine")
        .collect();
    assert_eq!(affine.len(), 3);
    for layer in affine {
        let coords: Vec<usize> = (0..m.layers()[layer].params).collect();
        check_finite_differences(&mut m, &b, layer, &coords);
    }
}

#[test]
fn custom_layer_that_does_not_fit_is_reported_in_words() {
    let mut rng = Rng::new(1);
    let layers: Vec<Box<dyn Layer>> = vec![
        Box::new(Dense::new(5, 4, true, Init::Uniform, &mut rng)),
        Box::new(Affine::new(3, &mut rng)),
    ];
    let err = Sequential::try_new(5, layers, LossKind::CrossEntropy).unwrap_err();
    assert_eq!(err.index, 1);
    assert!(err.op.starts_with("Affine"), "{err}");
    assert_eq!(err.problem, "expects 3 input features, receives 4");
}

#[test]
fn custom_layer_is_recognised_by_downcasting() {
    let m = mixed_network(Activation::Relu, 1);
    let ops = m.ops();
    assert!(ops[0].downcast_ref::<Affine>().is_some());
    assert!(ops[1].downcast_ref::<Affine>().is_none());
    // the residual block's layers are its sub-layers: body, then (no) shortcut
    let block = ops[4].downcast_ref::<Residual>().unwrap();
    assert_eq!(block.sublayers().len(), 2);
    assert!(block.shortcut().is_none());
    assert!(block.sublayers()[1].downcast_ref::<Affine>().is_some());
}
