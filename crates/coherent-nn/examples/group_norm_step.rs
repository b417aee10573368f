//! Times the forward and backward pass of GroupNorm layers at ResNet-20's first stage (16
//! channels of 32x32, 8 groups, ReLU, batch 128): six of them before a dense layer, the best of
//! 40 steps, in milliseconds. Run it alternately with another build of the layer to compare
//! the two in one sitting:
//!
//! ```text
//! cargo run --release -p coherent-nn --example group_norm_step
//! ```

use coherent_core::{BatchGrads, GradRequest, LossKind, Model, Rng};
use coherent_nn::check::random_batch;
use coherent_nn::{Activation, Dense, GroupNorm, Init, Layer, Sequential};
use std::time::Instant;

const CHANNELS: usize = 16;
const POSITIONS: usize = 32 * 32;
const GROUPS: usize = 8;
const LAYERS: usize = 6;
const BATCH: usize = 128;
const STEPS: usize = 40;

fn main() {
    let features = CHANNELS * POSITIONS;
    let mut ops: Vec<Box<dyn Layer>> = (0..LAYERS)
        .map(|_| {
            let norm = GroupNorm::new(CHANNELS, POSITIONS, GROUPS);
            Box::new(norm.with_activation(Activation::Relu)) as Box<dyn Layer>
        })
        .collect();
    let mut rng = Rng::new(1);
    ops.push(Box::new(Dense::new(
        features,
        10,
        true,
        Init::he(),
        &mut rng,
    )));
    let mut net = Sequential::new(features, ops, LossKind::CrossEntropy);
    let batch = random_batch(BATCH, features, 10, LossKind::CrossEntropy, 3);
    let mut grads = BatchGrads::default();
    let best = (0..STEPS)
        .map(|_| {
            let start = Instant::now();
            net.forward_backward(&batch, &GradRequest::SUM, &mut grads);
            start.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min);
    println!("{LAYERS} GroupNorm layers, {CHANNELS}x32x32, batch {BATCH}: {best:.2} ms a step (best of {STEPS})");
}
