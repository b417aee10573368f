//! Loss and accuracy of a model on a split, overall and on the pristine / corrupt examples.

use coherent_core::{Batch, Measurements, Model, Split};

/// Examples per forward pass during evaluation.
pub(crate) const CHUNK: usize = 1000;

/// The evaluation of a model on the first examples of a split.
#[derive(Clone, Debug, Default)]
pub struct Evaluated {
    /// `{prefix}_loss` and `{prefix}_acc`, and with corrupted labels also `pristine_*` and
    /// `corrupt_*` (against the labels trained on, so `corrupt_acc` measures memorisation).
    pub values: Measurements,
    /// Each evaluated example's loss.
    pub losses: Vec<f32>,
    /// Whether each evaluated example is classified correctly.
    pub correct: Vec<bool>,
}

/// Evaluates `model` on the first `limit` examples of `split`, naming the values `prefix_*`.
pub fn evaluate(model: &dyn Model, split: &Split, limit: usize, prefix: &str) -> Evaluated {
    let n = split.len().min(limit);
    let mut out = Evaluated::default();
    let (mut losses, mut correct) = (Vec::new(), Vec::new());
    let mut batch = Batch::default();
    // [all, pristine, corrupt] x (loss sum, correct count, examples)
    let mut acc = [(0.0f64, 0usize, 0usize); 3];
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(CHUNK) {
        batch.gather(split, chunk);
        model.evaluate(&batch, &mut losses, &mut correct);
        out.losses.extend_from_slice(&losses);
        out.correct.extend_from_slice(&correct);
        for (k, &i) in chunk.iter().enumerate() {
            let group = if split.corrupted[i] { 2 } else { 1 };
            for g in [0, group] {
                acc[g].0 += losses[k] as f64;
                acc[g].1 += correct[k] as usize;
                acc[g].2 += 1;
            }
        }
    }
    let groups: &[(usize, &str)] = if acc[2].2 > 0 {
        &[(0, prefix), (1, "pristine"), (2, "corrupt")]
    } else {
        &[(0, prefix)]
    };
    for &(g, name) in groups {
        let (loss, right, count) = acc[g];
        if count > 0 {
            out.values.push(format!("{name}_loss"), loss / count as f64);
            out.values
                .push(format!("{name}_acc"), right as f64 / count as f64);
        }
    }
    out
}
