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
    let mut square = Square::new();
    gflops(interleaved(1, reps, min_time, |_| square.run())[0])
}

/// GFLOP/s of one product that took `ms` milliseconds.
pub fn gflops(ms: f64) -> f64 {
    2.0 * (SIDE as f64).powi(3) / (ms * 1e6)
}

/// The operands of the square product.
pub struct Square {
    a: Vec<f32>,
    b: Vec<f32>,
    c: Vec<f32>,
}

impl Square {
    /// Operands of side [`SIDE`].
    pub fn new() -> Square {
        let n = SIDE * SIDE;
        Square {
            a: (0..n).map(|i| ((i % 17) as f32 - 8.0) / 8.0).collect(),
            b: (0..n).map(|i| ((i % 13) as f32 - 6.0) / 6.0).collect(),
            c: vec![0.0; n],
        }
    }

    /// One product on all threads.
    pub fn run(&mut self) {
        let normal = |data| Mat {
            data,
            layout: Layout::Normal,
        };
        let n = SIDE;
        matmul(
            (n, n, n),
            normal(&self.a),
            normal(&self.b),
            &mut self.c,
            false,
        );
        std::hint::black_box(&self.c);
    }
}
