//! Per-example losses: the kernel, and the op that ends a forward pass on dfdx's tape.

use crate::act::Act;
use coherent_core::{LossKind, TargetsRef};
use dfdx::prelude::{Cpu, PutTape, SplitTape, Tape, Tensor, TensorFrom};
use std::sync::{Arc, Mutex};

/// Per-example losses and correctness of `logits` (`rows x cols`), and optionally the
/// gradient of each example's loss with respect to its logits.
///
/// Cross-entropy: `l_i = logsumexp(z_i) - z_i[y_i]`, gradient `softmax(z_i) - onehot(y_i)`,
/// correct when the first largest logit is the label. Squared: `l_i = (z_i - y_i)^2` on one
/// output, gradient `2 (z_i - y_i)`, correct when `z_i y_i > 0`.
pub fn loss_kernel(
    kind: LossKind,
    logits: &[f32],
    cols: usize,
    targets: TargetsRef<'_>,
    losses: &mut Vec<f32>,
    correct: &mut Vec<bool>,
    mut dlogits: Option<&mut Vec<f32>>,
) {
    losses.clear();
    correct.clear();
    if let Some(d) = dlogits.as_deref_mut() {
        d.clear();
        d.resize(logits.len(), 0.0);
    }
    match (kind, targets) {
        (LossKind::CrossEntropy, TargetsRef::Classes(labels)) => {
            for (r, (z, &y)) in logits.chunks_exact(cols).zip(labels).enumerate() {
                let (mut best, mut max) = (0, z[0]);
                for (c, &v) in z.iter().enumerate() {
                    if v > max {
                        (best, max) = (c, v);
                    }
                }
                let sum: f32 = z.iter().map(|v| (v - max).exp()).sum();
                let lse = max + sum.ln();
                losses.push(lse - z[y as usize]);
                correct.push(best == y as usize);
                if let Some(d) = dlogits.as_deref_mut() {
                    let row = &mut d[r * cols..(r + 1) * cols];
                    for (g, v) in row.iter_mut().zip(z) {
                        *g = (v - max).exp() / sum;
                    }
                    row[y as usize] -= 1.0;
                }
            }
        }
        (LossKind::Squared, TargetsRef::Values(values)) => {
            for (r, (z, &y)) in logits.chunks_exact(cols).zip(values).enumerate() {
                let e = z[0] - y;
                losses.push(e * e);
                correct.push(z[0] * y > 0.0);
                if let Some(d) = dlogits.as_deref_mut() {
                    d[r * cols] = 2.0 * e;
                }
            }
        }
        (kind, _) => panic!("loss {kind:?} does not match the targets of the batch"),
    }
}

/// Per-example losses of the last traced forward pass.
#[derive(Debug, Default)]
pub struct LossTrace {
    /// `l_i`.
    pub losses: Vec<f32>,
    /// Whether example `i` is predicted correctly.
    pub correct: Vec<bool>,
    dlogits: Vec<f32>,
}

/// Ends a traced forward pass: returns the summed loss as a scalar on the tape and records
/// per-example losses in `trace`.
pub fn loss_op<T: Tape<f32, Cpu>>(
    kind: LossKind,
    logits: Act<T>,
    targets: TargetsRef<'_>,
    trace: &Arc<Mutex<LossTrace>>,
) -> Tensor<(), f32, Cpu, T> {
    let total = {
        let mut tr = trace.lock().expect("loss trace lock");
        let tr = &mut *tr;
        let d = Some(&mut tr.dlogits);
        loss_kernel(
            kind,
            &logits.data,
            logits.cols,
            targets,
            &mut tr.losses,
            &mut tr.correct,
            d,
        );
        tr.losses.iter().map(|&l| l as f64).sum::<f64>() as f32
    };
    let dev = logits.tensor.device().clone();
    let (_, tape) = logits.tensor.split_tape();
    let loss: Tensor<(), f32, Cpu> = dev.tensor(total);
    let loss_id = loss.clone();
    let (trace, dz, len) = (trace.clone(), logits.grad, logits.rows * logits.cols);
    let mut own = T::default();
    own.add_backward_op(move |grads| {
        let upstream = grads.get_or_alloc_mut(&loss_id)?[0];
        let tr = trace.lock().expect("loss trace lock");
        dz.add_with(len, |dz| {
            for (g, d) in dz.iter_mut().zip(&tr.dlogits) {
                *g += upstream * d;
            }
        });
        Ok(())
    });
    loss.put_tape(tape.merge(own))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cross_entropy_matches_definition_and_finite_differences() {
        let z = [0.5f32, -1.0, 2.0, 0.1, 0.1, 0.1];
        let labels = [2u32, 0];
        let (mut l, mut c, mut d) = (vec![], vec![], vec![]);
        loss_kernel(
            LossKind::CrossEntropy,
            &z,
            3,
            TargetsRef::Classes(&labels),
            &mut l,
            &mut c,
            Some(&mut d),
        );
        let want0 = (0.5f32.exp() + (-1.0f32).exp() + 2.0f32.exp()).ln() - 2.0;
        assert!((l[0] - want0).abs() < 1e-6);
        assert!((l[1] - 3.0f32.ln()).abs() < 1e-6);
        assert_eq!(c, vec![true, true]);
        let h = 1e-3;
        for k in 0..6 {
            let mut zp = z;
            zp[k] += h;
            let mut zm = z;
            zm[k] -= h;
            let (mut lp, mut lm) = (vec![], vec![]);
            loss_kernel(
                LossKind::CrossEntropy,
                &zp,
                3,
                TargetsRef::Classes(&labels),
                &mut lp,
                &mut c,
                None,
            );
            loss_kernel(
                LossKind::CrossEntropy,
                &zm,
                3,
                TargetsRef::Classes(&labels),
                &mut lm,
                &mut c,
                None,
            );
            let fd = (lp[k / 3] - lm[k / 3]) / (2.0 * h);
            assert!((fd - d[k]).abs() < 1e-3, "{k}: {fd} vs {}", d[k]);
        }
    }

    #[test]
    fn squared_loss_and_sign_accuracy() {
        let (mut l, mut c, mut d) = (vec![], vec![], vec![]);
        let y = [1.0f32, -1.0];
        loss_kernel(
            LossKind::Squared,
            &[0.5, 0.5],
            1,
            TargetsRef::Values(&y),
            &mut l,
            &mut c,
            Some(&mut d),
        );
        assert_eq!(l, vec![0.25, 2.25]);
        assert_eq!(c, vec![true, false]);
        assert_eq!(d, vec![-1.0, 3.0]);
    }
}
