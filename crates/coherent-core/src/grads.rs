//! What a model returns from one backward pass over a batch.

/// Description of one parameterised layer: the unit of per-layer metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerInfo {
    /// Stable name, used as the suffix of per-layer quantities (`coherence/fc1`).
    pub name: String,
    /// Kind of layer (`dense`, `conv2d`, ...).
    pub kind: &'static str,
    /// Number of parameters of the layer (weights then bias, flattened).
    pub params: usize,
    /// The layer's parameters as named tensors, in the order of its flat parameter vector
    /// (PyTorch's names and layouts: `weight` `[out, in]` then `bias` `[out]` for a dense
    /// layer); their sizes add up to `params`. The full name of a tensor is
    /// `<layer>.<tensor>` ([`LayerInfo::tensor_names`]).
    pub tensors: Vec<TensorInfo>,
}

impl LayerInfo {
    /// A layer whose parameters are one flat tensor `weight` `[params]`.
    pub fn flat(name: impl Into<String>, kind: &'static str, params: usize) -> LayerInfo {
        LayerInfo {
            name: name.into(),
            kind,
            params,
            tensors: vec![TensorInfo::new("weight", vec![params])],
        }
    }

    /// The full names of the layer's tensors, `<layer>.<tensor>` (`fc1.weight`, `fc1.bias`).
    pub fn tensor_names(&self) -> impl Iterator<Item = String> + '_ {
        self.tensors
            .iter()
            .map(|t| format!("{}.{}", self.name, t.name))
    }
}

/// One named parameter tensor of a layer: its name within the layer (`weight`, `bias`) and
/// its shape (row-major, the last index varying fastest).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TensorInfo {
    /// The name within the layer.
    pub name: String,
    /// The shape.
    pub shape: Vec<usize>,
}

impl TensorInfo {
    /// A tensor `name` of `shape`.
    pub fn new(name: impl Into<String>, shape: Vec<usize>) -> TensorInfo {
        TensorInfo {
            name: name.into(),
            shape,
        }
    }

    /// Number of values (the product of the shape).
    pub fn len(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether the tensor holds no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Per-batch results of [`crate::Model::forward_backward`].
///
/// Per-example quantities refer to the per-example loss `l_i` (not the batch mean), so
/// `sum[l]` is `S_l = sum_i grad l_i` restricted to layer `l`. Buffers are reused from call to
/// call: a model resizes them, so a caller that keeps one `BatchGrads` allocates only once.
#[derive(Clone, Debug, Default)]
pub struct BatchGrads {
    /// Number of examples in the batch.
    pub batch_size: usize,
    /// Per-example losses `l_i`.
    pub losses: Vec<f32>,
    /// Whether example `i` is predicted correctly.
    pub correct: Vec<bool>,
    /// Summed gradient per layer, flattened (weights then bias).
    pub sum: Vec<Vec<f32>>,
    /// `sq_norms[l][i] = |g_i,l|^2`, when requested.
    pub sq_norms: Vec<Vec<f32>>,
    /// `coord_sum_sq[l][p] = sum_i g_i,l[p]^2`, when requested.
    pub coord_sum_sq: Vec<Vec<f32>>,
    /// `gram[l]` is the row-major `batch_size x batch_size` matrix `g_i,l . g_j,l`, when
    /// requested.
    pub gram: Vec<Vec<f32>>,
    /// `per_example[l]` is row-major `batch_size x params_l`: row `i` is `g_i,l`, when
    /// requested.
    pub per_example: Vec<Vec<f32>>,
    /// `group_sums[g][l]`: the summed gradient of group `g` of the batch, when requested.
    pub group_sums: Vec<Vec<Vec<f32>>>,
    /// `subset_sums[s][l]`: the summed gradient of the examples of
    /// [`crate::GradRequest::subsets`]`[s]`, when requested.
    pub subset_sums: Vec<Vec<Vec<f32>>>,
}

impl BatchGrads {
    /// The examples of group `g` of `k` for a batch of `batch` examples.
    pub fn group_range(g: usize, k: usize, batch: usize) -> std::ops::Range<usize> {
        g * batch / k..(g + 1) * batch / k
    }

    /// Writes the mean gradient `sum / batch_size` into `direction` (one slice per layer): the
    /// plain-SGD direction.
    pub fn mean_into(&self, direction: &mut [Vec<f32>]) {
        let scale = 1.0 / self.batch_size.max(1) as f32;
        for (d, s) in direction.iter_mut().zip(&self.sum) {
            d.iter_mut().zip(s).for_each(|(x, g)| *x = g * scale);
        }
    }

    /// Squared norm of example `i`'s whole-network gradient (needs `sq_norms`).
    pub fn example_sq_norm(&self, i: usize) -> f64 {
        self.sq_norms.iter().map(|layer| layer[i] as f64).sum()
    }
}

/// Per-example gradients of the last backward pass, materialised on demand, block by block.
///
/// A consumer that needs every per-example value (winsorization, medians, the benchmark) asks
/// for cache-sized blocks of coordinates instead of one `batch x P` matrix; blocks of different
/// coordinates can be produced in parallel (the source is `Sync`).
pub trait PerExampleBlocks: Sync {
    /// Number of examples.
    fn batch(&self) -> usize;
    /// Number of layers.
    fn layers(&self) -> usize;
    /// Number of parameters of `layer`.
    fn layer_params(&self, layer: usize) -> usize;
    /// Writes `g_i[c]` for every coordinate `c` of `coords` (within `layer`) and every example
    /// `i`, coordinate-major: `out[(c - coords.start) * batch + i]`.
    fn block(&self, layer: usize, coords: std::ops::Range<usize>, out: &mut [f32]);

    /// The same values example-major: `out[i * coords.len() + (c - coords.start)]`, the layout
    /// in which a kernel reduces many coordinates at once, one example after the other. The
    /// default transposes [`PerExampleBlocks::block`]; layers that can write rows directly do.
    fn block_rows(&self, layer: usize, coords: std::ops::Range<usize>, out: &mut [f32]) {
        let mut cols = vec![0.0; self.batch() * coords.len()];
        self.block(layer, coords, &mut cols);
        columns_to_rows(&cols, self.batch(), out);
    }

    /// Writes the weighted sum `sum_i weights[i] g_i` of `layer` into `out` (`layer_params`
    /// values) without materialising the per-example gradients, when the layer knows how (a
    /// dense layer: one matrix product `Delta^T diag(w) A`), and returns whether it did. The
    /// default returns `false`: the caller reads the blocks instead.
    fn weighted_sum(&self, layer: usize, weights: &[f32], out: &mut [f32]) -> bool {
        let _ = (layer, weights, out);
        false
    }
}

/// The squared norm `|g|^2` of a gradient held layer by layer (`g[l]`, as a step's direction
/// or a batch's summed gradient), accumulated in f64.
pub fn squared_norm(layers: &[Vec<f32>]) -> f64 {
    layers.iter().flatten().map(|&v| (v as f64).powi(2)).sum()
}

/// Turns a coordinate-major block (`batch` values per coordinate) into the example-major one.
pub fn columns_to_rows(cols: &[f32], batch: usize, out: &mut [f32]) {
    let len = cols.len() / batch.max(1);
    for (c, col) in cols.chunks_exact(batch.max(1)).enumerate() {
        for (i, v) in col.iter().enumerate() {
            out[i * len + c] = *v;
        }
    }
}
