//! In-memory data: splits of examples and the batches gathered from them.

/// Shape of one input example, channels first. Flat inputs use `channels = 1, height = 1`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputShape {
    /// Number of channels.
    pub channels: usize,
    /// Height in pixels (1 for flat inputs).
    pub height: usize,
    /// Width in pixels (the input dimension for flat inputs).
    pub width: usize,
}

impl InputShape {
    /// A flat input of `dim` features.
    pub fn flat(dim: usize) -> InputShape {
        InputShape {
            channels: 1,
            height: 1,
            width: dim,
        }
    }

    /// An image of `channels x height x width`.
    pub fn image(channels: usize, height: usize, width: usize) -> InputShape {
        InputShape {
            channels,
            height,
            width,
        }
    }

    /// Number of input features.
    pub fn len(&self) -> usize {
        self.channels * self.height * self.width
    }

    /// Whether the input has no features.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// `channels x height x width`, as `1x28x28` (a flat input of 784 features is `1x1x784`).
impl std::fmt::Display for InputShape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}x{}x{}", self.channels, self.height, self.width)
    }
}

/// The targets of a split.
#[derive(Clone, Debug, PartialEq)]
pub enum Targets {
    /// Class labels in `0..classes` (cross-entropy loss).
    Classes {
        /// One label per example.
        labels: Vec<u32>,
        /// Number of classes.
        classes: usize,
    },
    /// One real target per example (squared loss).
    Values(Vec<f32>),
}

impl Targets {
    /// Number of examples.
    pub fn len(&self) -> usize {
        match self {
            Targets::Classes { labels, .. } => labels.len(),
            Targets::Values(v) => v.len(),
        }
    }

    /// Whether there are no examples.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Borrowed targets of a batch.
#[derive(Clone, Copy, Debug)]
pub enum TargetsRef<'a> {
    /// Class labels.
    Classes(&'a [u32]),
    /// Real targets.
    Values(&'a [f32]),
}

/// One split (train or test) held in memory: inputs row-major, one example per row.
#[derive(Clone, Debug)]
pub struct Split {
    /// `len x dim` inputs, row-major.
    pub inputs: Vec<f32>,
    /// Features per example.
    pub dim: usize,
    /// The targets used for training and evaluation (possibly noisy).
    pub targets: Targets,
    /// For classification with label noise: the original labels, before corruption.
    pub clean_labels: Option<Vec<u32>>,
    /// `corrupted[i]` is true when example `i` was selected for label noise.
    pub corrupted: Vec<bool>,
}

impl Split {
    /// A split without label noise.
    pub fn new(inputs: Vec<f32>, dim: usize, targets: Targets) -> Split {
        let n = targets.len();
        assert_eq!(inputs.len(), n * dim, "inputs do not match targets");
        Split {
            inputs,
            dim,
            targets,
            clean_labels: None,
            corrupted: vec![false; n],
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.targets.len()
    }

    /// Whether the split is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Input row of example `i`.
    pub fn input(&self, i: usize) -> &[f32] {
        &self.inputs[i * self.dim..(i + 1) * self.dim]
    }

    /// A new split of the examples `indices` (in that order), with their targets, clean
    /// labels and corruption marks.
    pub fn select(&self, indices: &[usize]) -> Split {
        let mut inputs = Vec::with_capacity(indices.len() * self.dim);
        for &i in indices {
            inputs.extend_from_slice(self.input(i));
        }
        let targets = match &self.targets {
            Targets::Classes { labels, classes } => Targets::Classes {
                labels: indices.iter().map(|&i| labels[i]).collect(),
                classes: *classes,
            },
            Targets::Values(v) => Targets::Values(indices.iter().map(|&i| v[i]).collect()),
        };
        Split {
            inputs,
            dim: self.dim,
            targets,
            clean_labels: self
                .clean_labels
                .as_ref()
                .map(|c| indices.iter().map(|&i| c[i]).collect()),
            corrupted: indices.iter().map(|&i| self.corrupted[i]).collect(),
        }
    }

    /// Keeps only the first `n` examples.
    pub fn truncate(&mut self, n: usize) {
        if n >= self.len() {
            return;
        }
        self.inputs.truncate(n * self.dim);
        match &mut self.targets {
            Targets::Classes { labels, .. } => labels.truncate(n),
            Targets::Values(v) => v.truncate(n),
        }
        if let Some(c) = &mut self.clean_labels {
            c.truncate(n);
        }
        self.corrupted.truncate(n);
    }
}

/// A batch gathered into contiguous buffers.
///
/// [`Batch::gather`] reuses its buffers, so a training loop that keeps one `Batch` allocates
/// only on the first step.
#[derive(Clone, Debug, Default)]
pub struct Batch {
    /// `len x dim` inputs, row-major.
    pub inputs: Vec<f32>,
    /// Features per example.
    pub dim: usize,
    /// Class labels (classification).
    pub labels: Vec<u32>,
    /// Real targets (regression).
    pub values: Vec<f32>,
    /// Whether the targets are `values` rather than `labels`.
    pub regression: bool,
}

impl Batch {
    /// Copies examples `indices` of `split` into this batch.
    pub fn gather(&mut self, split: &Split, indices: &[usize]) {
        self.dim = split.dim;
        self.inputs.clear();
        for &i in indices {
            self.inputs.extend_from_slice(split.input(i));
        }
        self.labels.clear();
        self.values.clear();
        match &split.targets {
            Targets::Classes { labels, .. } => {
                self.regression = false;
                self.labels.extend(indices.iter().map(|&i| labels[i]));
            }
            Targets::Values(v) => {
                self.regression = true;
                self.values.extend(indices.iter().map(|&i| v[i]));
            }
        }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        if self.regression {
            self.values.len()
        } else {
            self.labels.len()
        }
    }

    /// Whether the batch is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The targets of the batch.
    pub fn targets(&self) -> TargetsRef<'_> {
        if self.regression {
            TargetsRef::Values(&self.values)
        } else {
            TargetsRef::Classes(&self.labels)
        }
    }

    /// A sub-batch of examples `range` (copies).
    pub fn slice(&self, range: std::ops::Range<usize>) -> Batch {
        Batch {
            inputs: self.inputs[range.start * self.dim..range.end * self.dim].to_vec(),
            dim: self.dim,
            labels: if self.regression {
                vec![]
            } else {
                self.labels[range.clone()].to_vec()
            },
            values: if self.regression {
                self.values[range].to_vec()
            } else {
                vec![]
            },
            regression: self.regression,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_print_as_channels_height_width() {
        assert_eq!(InputShape::image(1, 20, 20).to_string(), "1x20x20");
        assert_eq!(InputShape::flat(784).to_string(), "1x1x784");
    }

    #[test]
    fn gather_copies_rows_and_labels() {
        let split = Split::new(
            vec![0., 1., 2., 3., 4., 5.],
            2,
            Targets::Classes {
                labels: vec![7, 8, 9],
                classes: 10,
            },
        );
        let mut b = Batch::default();
        b.gather(&split, &[2, 0]);
        assert_eq!(b.inputs, vec![4., 5., 0., 1.]);
        assert_eq!(b.labels, vec![9, 7]);
        assert_eq!(b.len(), 2);
        let s = b.slice(1..2);
        assert_eq!(s.inputs, vec![0., 1.]);
        assert_eq!(s.labels, vec![7]);
    }

    #[test]
    fn select_keeps_rows_labels_and_marks_together() {
        let mut split = Split::new(
            vec![0., 1., 2., 3., 4., 5.],
            2,
            Targets::Classes {
                labels: vec![7, 8, 9],
                classes: 10,
            },
        );
        split.corrupted[1] = true;
        split.clean_labels = Some(vec![7, 3, 9]);
        let s = split.select(&[1, 2]);
        assert_eq!(s.inputs, vec![2., 3., 4., 5.]);
        assert_eq!(
            s.targets,
            Targets::Classes {
                labels: vec![8, 9],
                classes: 10
            }
        );
        assert_eq!(s.corrupted, vec![true, false]);
        assert_eq!(s.clean_labels, Some(vec![3, 9]));
    }
}
