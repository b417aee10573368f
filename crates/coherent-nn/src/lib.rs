//! Network layers for `coherent`, written as differentiable ops on dfdx's tape, and the
//! per-example gradient engine that reads them.
//!
//! A network is a [`Sequential`] of boxed [`Layer`]s ending in a loss; it implements
//! [`coherent_core::Model`]. Every parameterised layer records, during the one backward pass
//! of the summed loss, its layer input `A` (per example) and the gradient `Delta` of the loss
//! with respect to its output. From these two the exact per-example quantities follow without
//! a backward pass per example (BackPACK, Opacus and the "ghost norm" literature):
//!
//! * dense layer, example `i`: `g_i = Delta_i A_i^T`, so `|g_i|^2 = |Delta_i|^2 |A_i|^2`,
//!   `g_i . g_j = (A_i . A_j)(Delta_i . Delta_j)` and `sum_i g_i (.) g_i = (Delta (.)
//!   Delta)^T (A (.) A)`; the bias adds `|Delta_i|^2` terms.
//!
//! The layers here are [`Dense`], [`Conv2d`], [`Pool2d`], [`GroupNorm`], [`Residual`] blocks and
//! [`Activation`]s; a layer written outside this crate implements [`Layer`] and
//! [`LayerGrads`] (or keeps its per-example gradients in a [`MatrixTrace`]) and works with
//! every per-example quantity (see the [`layer`] module). [`reference`](mod@reference) computes the same
//! per-example gradients the slow, obvious way (one dfdx backward pass per example, with
//! dfdx's own matmul and activations; or batches of one) and is what the tests compare against.
//!
//! dfdx 0.13 layers have compile-time sizes; here every tensor is runtime-shaped
//! (`(usize, usize)`) so that widths and depth come from a manifest.

mod act;
mod activation;
mod builder;
pub mod check;
mod conv;
mod dense;
mod engine;
mod fusion;
mod grads;
mod group_norm;
mod init;
pub mod kernels;
pub mod layer;
mod loss;
mod matrix_trace;
mod norm_pool;
mod pool;
pub mod reference;
mod residual;
mod sequential;
mod simd;
mod spare;
mod streaming;
mod summing;
mod switch;

pub use act::{Act, ActGrad, CpuTape, Tensor2};
pub use activation::Activation;
pub use builder::NetworkBuilder;
pub use conv::{col2im, im2col, Conv2d, ConvGeometry, NormMethod};
pub use dense::Dense;
pub use grads::LayerGrads;
pub use group_norm::GroupNorm;
pub use init::Init;
pub use layer::Layer;
pub use matrix_trace::MatrixTrace;
pub use pool::{Pool2d, PoolKind};
pub use residual::Residual;
pub use sequential::{Sequential, ShapeError};
