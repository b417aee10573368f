//! The slow, obviously correct path: one dfdx backward pass per example.
//!
//! [`per_example_grads`] is built only from dfdx's own ops (`matmul`, `relu`, `tanh`,
//! `log_softmax`, ...), not from the custom ops of this crate, so it is an independent check
//! of the per-example engine; it covers the networks dfdx can express on the stable compiler
//! (dense layers and activations; dfdx 0.13 has no convolution or pooling there).
//! [`per_example_by_loop`] runs any model on batches of one example: for convolutional
//! networks it is the reference, next to the direct-loop and finite-difference tests of the
//! ops themselves.

use crate::{Activation, Dense, Layer, Sequential};
use coherent_core::{Batch, BatchGrads, GradRequest, LossKind, Model, TargetsRef};
use dfdx::prelude::*;

type Leaf = Tensor<(usize, usize), f32, Cpu>;

/// Per-example gradients of any model by one forward and backward pass per example (batches
/// of one): `result[i][l]` is example `i`'s gradient for layer `l`.
pub fn per_example_by_loop(model: &mut dyn Model, batch: &Batch) -> Vec<Vec<Vec<f32>>> {
    let mut grads = BatchGrads::default();
    (0..batch.len())
        .map(|i| {
            model.forward_backward(&batch.slice(i..i + 1), &GradRequest::SUM, &mut grads);
            grads.sum.clone()
        })
        .collect()
}

/// Per-example gradients by one dfdx backward pass per example: `result[i][l]` is example
/// `i`'s gradient for layer `l`, flattened like the layer's parameters (weights then bias).
///
/// # Panics
/// If the network has a layer other than dense layers and activations (dfdx cannot express
/// convolution or pooling on the stable compiler).
pub fn per_example_grads(model: &Sequential, batch: &Batch) -> Vec<Vec<Vec<f32>>> {
    let dev = Cpu::default();
    let d = model.inputs();
    (0..batch.len())
        .map(|r| {
            let x: Leaf = dev.tensor_from_vec(batch.inputs[r * d..(r + 1) * d].to_vec(), (1, d));
            let mut h = x.leaky_traced();
            let mut leaves: Vec<(Leaf, Option<Leaf>, usize, usize)> = Vec::new();
            for layer in model.ops() {
                let dense = layer.downcast_ref::<Dense>();
                let activation = layer.downcast_ref::<Activation>();
                h = match (dense, activation) {
                    (Some(l), _) => {
                        let (i, o) = (l.inputs(), l.outputs());
                        let w = l.params();
                        let wt: Vec<f32> = (0..i * o).map(|k| w[(k % o) * i + k / o]).collect();
                        let wt: Leaf = dev.tensor_from_vec(wt, (i, o));
                        let b: Option<Leaf> = l
                            .has_bias()
                            .then(|| dev.tensor_from_vec(w[o * i..].to_vec(), (1, o)));
                        let y = h.matmul(wt.clone());
                        let y = match &b {
                            Some(b) => y + b.clone(),
                            None => y,
                        };
                        leaves.push((wt, b, i, o));
                        match l.activation() {
                            Some(Activation::Relu) => y.relu(),
                            Some(Activation::Tanh) => y.tanh(),
                            None => y,
                        }
                    }
                    (None, Some(Activation::Relu)) => h.relu(),
                    (None, Some(Activation::Tanh)) => h.tanh(),
                    (None, None) => panic!(
                        "the dfdx reference has dense layers and activations only, not {layer:?}; \
                         use per_example_by_loop"
                    ),
                };
            }
            let cols = h.shape().1;
            let loss = match (model.loss(), batch.targets()) {
                (LossKind::CrossEntropy, TargetsRef::Classes(labels)) => {
                    let mut onehot = vec![0.0; cols];
                    onehot[labels[r] as usize] = 1.0;
                    let onehot: Leaf = dev.tensor_from_vec(onehot, (1, cols));
                    (h.log_softmax::<Axis<1>>() * onehot)
                        .sum::<(), _>()
                        .negate()
                }
                (LossKind::Squared, TargetsRef::Values(values)) => {
                    let y: Leaf = dev.tensor_from_vec(vec![values[r]], (1, 1));
                    (h - y).square().sum::<(), _>()
                }
                (kind, _) => panic!("loss {kind:?} does not match the batch targets"),
            };
            let grads = loss.backward();
            leaves
                .iter()
                .map(|(wt, b, i, o)| {
                    let gt = grads.get(wt).as_vec();
                    let mut g: Vec<f32> = (0..i * o).map(|k| gt[(k % i) * o + k / i]).collect();
                    if let Some(b) = b {
                        g.extend(grads.get(b).as_vec());
                    }
                    g
                })
                .collect()
        })
        .collect()
}
