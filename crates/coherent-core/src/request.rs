//! What a consumer of gradients asks the model to compute for a batch.

/// The per-example quantities requested from one backward pass.
///
/// The summed gradient `S = sum_i g_i`, the per-example losses and the correctness of each
/// prediction are always produced; every field here adds work and is off by default.
/// Requests combine with [`GradRequest::union`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GradRequest {
    /// Per-example squared gradient norms `|g_i,l|^2` for every layer `l`.
    pub sq_norms: bool,
    /// Coordinate-wise sum of squares `sum_i g_i (.) g_i` for every parameter.
    pub coord_sum_sq: bool,
    /// The Gram matrix `G_ij = g_i,l . g_j,l` of every layer.
    pub gram: bool,
    /// Materialised per-example gradients `g_i,l`, layer by layer.
    pub per_example: bool,
    /// Per-example gradients produced on demand in coordinate blocks
    /// ([`crate::PerExampleBlocks`]), for consumers that reduce every coordinate over the
    /// examples without holding the whole `batch x P` matrix.
    pub blocks: bool,
    /// Split the batch into this many groups of consecutive examples and return each group's
    /// summed gradient (0: none). Group `g` holds examples `g B / k .. (g + 1) B / k`.
    pub groups: usize,
    /// Return the summed gradient of each of these sets of examples (row indices into the
    /// batch) in [`crate::BatchGrads::subset_sums`], in order: e.g. the pristine and the corrupt
    /// examples of a training batch.
    pub subsets: Vec<Vec<usize>>,
}

impl GradRequest {
    /// Only the summed gradient.
    pub const SUM: GradRequest = GradRequest {
        sq_norms: false,
        coord_sum_sq: false,
        gram: false,
        per_example: false,
        blocks: false,
        groups: 0,
        subsets: Vec::new(),
    };
}

/// Requests of the summed gradient and one quantity more, as constants.
macro_rules! single_requests {
    ($($(#[$doc:meta])* $name:ident: $field:ident;)*) => {
        impl GradRequest {
            $(
                $(#[$doc])*
                pub const $name: GradRequest = {
                    let mut request = GradRequest::SUM;
                    request.$field = true;
                    request
                };
            )*
        }
    };
}

single_requests! {
    /// The summed gradient and the per-example squared norms of every layer.
    SQ_NORMS: sq_norms;
    /// The summed gradient and the coordinate-wise sum of squares.
    COORD_SUM_SQ: coord_sum_sq;
    /// The summed gradient and the Gram matrix of every layer.
    GRAM: gram;
    /// The summed gradient and the materialised per-example gradients.
    PER_EXAMPLE: per_example;
    /// The summed gradient and the per-example gradients block by block (what coordinate-wise
    /// aggregators read).
    BLOCKS: blocks;
}

impl GradRequest {
    /// Whether anything but the summed gradient is asked for.
    pub fn beyond_sum(&self) -> bool {
        self.sq_norms
            || self.coord_sum_sq
            || self.gram
            || self.per_example
            || self.blocks
            || self.groups > 0
            || !self.subsets.is_empty()
    }

    /// Everything one request or the other asks for. The subsets of `other` follow those of
    /// `self`, so a consumer finds its own subset sums at the offset of its first subset.
    pub fn union(&self, other: &GradRequest) -> GradRequest {
        GradRequest {
            sq_norms: self.sq_norms || other.sq_norms,
            coord_sum_sq: self.coord_sum_sq || other.coord_sum_sq,
            gram: self.gram || other.gram,
            per_example: self.per_example || other.per_example,
            blocks: self.blocks || other.blocks,
            groups: self.groups.max(other.groups),
            subsets: self.subsets.iter().chain(&other.subsets).cloned().collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn union_is_fieldwise_or() {
        let a = GradRequest {
            sq_norms: true,
            ..GradRequest::SUM
        };
        let b = GradRequest {
            gram: true,
            ..GradRequest::SUM
        };
        let u = a.union(&b);
        assert!(u.sq_norms && u.gram && !u.per_example && !u.coord_sum_sq);
        let c = GradRequest {
            subsets: vec![vec![0, 2]],
            ..GradRequest::SUM
        };
        let d = GradRequest {
            subsets: vec![vec![1], vec![3]],
            ..GradRequest::SUM
        };
        assert_eq!(c.union(&d).subsets, vec![vec![0, 2], vec![1], vec![3]]);
        assert_eq!(GradRequest::default(), GradRequest::SUM);
    }
}
