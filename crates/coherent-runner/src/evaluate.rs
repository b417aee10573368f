//! Loss and accuracy of a model on a split, overall and on the pristine / corrupt examples.

use coherent_core::{Batch, Model, Split};

/// Examples per forward pass during evaluation.
const CHUNK: usize = 1000;

/// Mean loss and accuracy of `model` on the first `limit` examples of `split`, under names
/// `{prefix}_loss` and `{prefix}_acc`. When some examples carry corrupted labels, also
/// `pristine_*` and `corrupt_*` (against the labels trained on, so `corrupt_acc` measures
/// memorisation). With `per_example`, also the correctness of each evaluated example.
pub fn evaluate(
    model: &dyn Model,
    split: &Split,
    limit: usize,
    prefix: &str,
    mut per_example: Option<&mut Vec<bool>>,
) -> Vec<(String, f64)> {
    let n = split.len().min(limit);
    if let Some(all) = per_example.as_deref_mut() {
        all.clear();
    }
    let (mut losses, mut correct) = (Vec::new(), Vec::new());
    let mut batch = Batch::default();
    // [all, pristine, corrupt] x (loss sum, correct count, examples)
    let mut acc = [(0.0f64, 0usize, 0usize); 3];
    let indices: Vec<usize> = (0..n).collect();
    for chunk in indices.chunks(CHUNK) {
        batch.gather(split, chunk);
        model.evaluate(&batch, &mut losses, &mut correct);
        if let Some(all) = per_example.as_deref_mut() {
            all.extend_from_slice(&correct);
        }
        for (k, &i) in chunk.iter().enumerate() {
            let group = if split.corrupted[i] { 2 } else { 1 };
            for g in [0, group] {
                acc[g].0 += losses[k] as f64;
                acc[g].1 += correct[k] as usize;
                acc[g].2 += 1;
            }
        }
    }
    let mut out = Vec::new();
    let groups: &[(usize, &str)] = if acc[2].2 > 0 {
        &[(0, prefix), (1, "pristine"), (2, "corrupt")]
    } else {
        &[(0, prefix)]
    };
    for &(g, name) in groups {
        let (loss, right, count) = acc[g];
        if count > 0 {
            out.push((format!("{name}_loss"), loss / count as f64));
            out.push((format!("{name}_acc"), right as f64 / count as f64));
        }
    }
    out
}
