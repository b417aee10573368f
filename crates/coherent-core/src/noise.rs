//! Label noise, as in the Coherent Gradients papers.
//!
//! * `permute` (Chatterjee 2020, "Coherent Gradients", experiment 1): every training example is
//!   selected independently with probability `fraction`, and the labels of the selected
//!   examples are randomly permuted among themselves. The class histogram is preserved.
//! * `uniform` (Zielinski, Krishnan, Chatterjee 2020, "Weak and Strong Gradient Directions"):
//!   every selected example gets a label drawn uniformly from all classes.
//!
//! In both modes a selected example may keep its original label by chance (with probability
//! about 1/classes); it is still marked as corrupted, which is what the adjusted-overfit
//! formula `train_acc - (eps/classes + (1 - eps) test_acc)` assumes.

use crate::{Rng, Split, Targets};
use serde::Deserialize;

/// How the labels of selected examples are replaced.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, crate::ParamType)]
#[serde(rename_all = "snake_case")]
pub enum NoiseMode {
    /// Permute the selected labels among themselves.
    #[default]
    Permute,
    /// Draw a new label uniformly at random.
    Uniform,
}

/// Corrupts the labels of a classification split in place, recording the original labels and
/// the mask of selected examples. `fraction` must be in `[0, 1]`. A regression split is left
/// untouched.
pub fn apply_label_noise(split: &mut Split, fraction: f64, mode: NoiseMode, seed: u64) {
    let Targets::Classes { labels, classes } = &mut split.targets else {
        return;
    };
    let mut rng = Rng::derived(seed, "label-noise");
    let clean = labels.clone();
    let selected: Vec<usize> = (0..labels.len())
        .filter(|_| rng.uniform() < fraction)
        .collect();
    match mode {
        NoiseMode::Permute => {
            let mut picked: Vec<u32> = selected.iter().map(|&i| labels[i]).collect();
            rng.shuffle(&mut picked);
            for (&i, &l) in selected.iter().zip(&picked) {
                labels[i] = l;
            }
        }
        NoiseMode::Uniform => {
            for &i in &selected {
                labels[i] = rng.below(*classes) as u32;
            }
        }
    }
    let mut corrupted = vec![false; labels.len()];
    for &i in &selected {
        corrupted[i] = true;
    }
    split.corrupted = corrupted;
    split.clean_labels = Some(clean);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(n: usize) -> Split {
        let labels: Vec<u32> = (0..n as u32).map(|i| i % 10).collect();
        Split::new(
            vec![0.0; n],
            1,
            Targets::Classes {
                labels,
                classes: 10,
            },
        )
    }

    fn labels(s: &Split) -> Vec<u32> {
        match &s.targets {
            Targets::Classes { labels, .. } => labels.clone(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn zero_noise_changes_nothing() {
        let mut s = split(1000);
        apply_label_noise(&mut s, 0.0, NoiseMode::Permute, 1);
        assert_eq!(labels(&s), labels(&split(1000)));
        assert!(s.corrupted.iter().all(|&c| !c));
    }

    #[test]
    fn permute_keeps_histogram_and_selects_about_the_fraction() {
        let mut s = split(10_000);
        apply_label_noise(&mut s, 0.5, NoiseMode::Permute, 1);
        let mut before = labels(&split(10_000));
        let mut after = labels(&s);
        let selected = s.corrupted.iter().filter(|&&c| c).count();
        assert!((4_700..5_300).contains(&selected), "{selected}");
        let changed = before.iter().zip(&after).filter(|(a, b)| a != b).count();
        // a permuted label stays the same with probability about 1/10
        assert!(
            changed > selected * 8 / 10 && changed <= selected,
            "{changed}"
        );
        // unselected examples are untouched
        for i in 0..10_000 {
            if !s.corrupted[i] {
                assert_eq!(before[i], after[i]);
            }
        }
        before.sort();
        after.sort();
        assert_eq!(before, after);
        assert_eq!(s.clean_labels.as_ref().unwrap(), &labels(&split(10_000)));
    }

    #[test]
    fn full_uniform_noise_gives_near_chance_agreement() {
        let mut s = split(10_000);
        apply_label_noise(&mut s, 1.0, NoiseMode::Uniform, 9);
        assert!(s.corrupted.iter().all(|&c| c));
        let same = labels(&s)
            .iter()
            .zip(labels(&split(10_000)))
            .filter(|(a, b)| **a == *b)
            .count();
        assert!((800..1_200).contains(&same), "{same}");
    }
}
