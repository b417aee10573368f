//! The machine's single-precision matrix-product throughput, through the kernels every layer
//! calls: the limit the cases are measured against.

use crate::timing::interleaved;
use coherent_nn::kernels::{matmul, Layout, Mat};
use std::time::Duration;

/// Side of the square product measured.
pub const SIDE: usize = 1024;

/// GFLOP/s of `SIDE x SIDE` products (`2 SIDE^3` operations each) on all threads, the median
/// of `reps` repetitions of at least `min_time`.
pub fn throughput(reps: usize, min_time: Duration) -> f64 {
    let n = SIDE;
    let a: Vec<f32> = (0..n * n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect();
    let b: Vec<f32> = (0..n * n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect();
    let mut c = vec![0.0f32; n * n];
    let normal = |data| Mat {
        data,
        layout: Layout::Normal,
    };
    let ms = interleaved(1, reps, min_time, |_| {
        matmul((n, n, n), normal(&a), normal(&b), &mut c, false);
        std::hint::black_box(&c);
    })[0];
    2.0 * (n as f64).powi(3) / (ms * 1e6)
}
