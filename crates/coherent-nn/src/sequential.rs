//! A chain of layers ending in a loss: the [`Model`] implementation networks are built from.

use crate::act::{Act, CpuTape};
use crate::engine::{self, Blocks, Traces};
use crate::fusion;
use crate::layer::{self, Layer};
use crate::loss::{loss_kernel, loss_op, LossTrace};
use coherent_core::{Batch, BatchGrads, GradRequest, LayerInfo, LossKind, Model, PerExampleBlocks};
use dfdx::prelude::{Backward, Cpu};
use std::sync::{Arc, Mutex};

/// A feed-forward network: layers applied in order, then the loss.
///
/// Parameterised layers (also those inside residual blocks) are the layers of
/// [`Model::layers`], named by their [`Layer::name_prefix`] and a running number per prefix, in
/// order: `fc1`, `fc2`, ... (dense), `conv1`, ... (convolutions), `norm1`, ... (GroupNorm).
pub struct Sequential {
    ops: Vec<Box<dyn Layer>>,
    layers: Vec<LayerInfo>,
    inputs: usize,
    loss: LossKind,
    loss_trace: Arc<Mutex<LossTrace>>,
    /// The batch's inputs, a buffer reused from pass to pass.
    input: Arc<Vec<f32>>,
    dev: Cpu,
}

impl std::fmt::Debug for Sequential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sequential")
            .field("ops", &self.ops)
            .field("loss", &self.loss)
            .finish()
    }
}

/// Layers that do not fit together.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("layer {index} ({op}) {problem}")]
pub struct ShapeError {
    /// Position of the layer (0-based; for a layer whose tensors do not cover its
    /// parameters, its position among the parameterised layers).
    pub index: usize,
    /// The layer, in words.
    pub op: String,
    /// What does not fit.
    pub problem: String,
}

impl Sequential {
    /// A network of `ops` (layers, in order) reading `inputs` features, trained with `loss`.
    ///
    /// # Panics
    /// If the layers do not fit together; [`Sequential::try_new`] returns the error instead.
    pub fn new(inputs: usize, ops: Vec<Box<dyn Layer>>, loss: LossKind) -> Sequential {
        Sequential::try_new(inputs, ops, loss).unwrap_or_else(|e| panic!("{e}"))
    }

    /// A network of `ops` reading `inputs` features, trained with `loss`, if the layers fit.
    pub fn try_new(
        inputs: usize,
        ops: Vec<Box<dyn Layer>>,
        loss: LossKind,
    ) -> Result<Sequential, ShapeError> {
        let mut width = inputs;
        for (index, op) in ops.iter().enumerate() {
            width = op.output_len(width).map_err(|problem| ShapeError {
                index,
                op: format!("{op:?}").chars().take(60).collect(),
                problem,
            })?;
        }
        Ok(Sequential {
            layers: layer_infos(&ops)?,
            ops,
            inputs,
            loss,
            loss_trace: Arc::default(),
            input: Arc::default(),
            // carries the tape only: activations and their gradients are the layers' own
            dev: Cpu::default(),
        })
    }

    /// The layers, in order (a residual block is one of them).
    pub fn ops(&self) -> &[Box<dyn Layer>] {
        &self.ops
    }

    /// The loss.
    pub fn loss(&self) -> LossKind {
        self.loss
    }

    /// Number of input features.
    pub fn inputs(&self) -> usize {
        self.inputs
    }

    /// The parameterised layers, in the order of [`Model::layers`].
    fn parameterised(&self) -> Vec<&dyn Layer> {
        let mut out = Vec::with_capacity(self.layers.len());
        layer::parameterised(&self.ops, &mut out);
        out
    }

    /// Exclusive access to the per-example quantities of every parameterised layer.
    fn traces(&self) -> Traces<'_> {
        self.parameterised()
            .into_iter()
            .map(|l| {
                l.grads()
                    .unwrap_or_else(|| panic!("{l:?} has parameters but no gradients"))
            })
            .collect()
    }

    /// One forward and backward pass (see [`Model::forward_backward`]).
    fn pass(&mut self, batch: &Batch, request: &GradRequest, out: &mut BatchGrads) {
        let rows = batch.len();
        layer::release_inputs(&self.ops);
        for trace in &mut self.traces() {
            trace.expect(request);
        }
        let input = Arc::make_mut(&mut self.input);
        input.clear();
        input.extend_from_slice(&batch.inputs);
        let tape = CpuTape::default();
        let input = Act::network_input(&self.dev, self.input.clone(), rows, self.inputs, tape);
        // nobody reads the gradient of the network's input
        let act = fusion::forward_all(&self.ops, input, false);
        let loss = loss_op(self.loss, act, batch.targets(), &self.loss_trace);
        let _grads = loss.backward();

        let lt = self.loss_trace.lock().expect("loss trace lock");
        out.batch_size = rows;
        out.losses.clone_from(&lt.losses);
        out.correct.clone_from(&lt.correct);
        drop(lt);
        engine::collect(&mut self.traces(), rows, request, out);
    }

    /// Output of the network on `rows` examples, without gradients.
    pub fn logits(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let (mut cur, mut next) = (x.to_vec(), Vec::new());
        for op in &self.ops {
            op.forward_slice(&cur, rows, &mut next);
            std::mem::swap(&mut cur, &mut next);
        }
        cur
    }
}

/// The name, kind, size and tensors of every parameterised layer among `ops`: the name is the
/// layer's prefix and a running number per prefix (`fc1`, `conv1`, `fc2`, ...); a layer whose
/// tensors do not add up to its parameters does not fit.
fn layer_infos(ops: &[Box<dyn Layer>]) -> Result<Vec<LayerInfo>, ShapeError> {
    let mut layers = Vec::new();
    layer::parameterised(ops, &mut layers);
    let mut counts: Vec<(&str, usize)> = Vec::new();
    layers
        .into_iter()
        .enumerate()
        .map(|(index, l)| {
            let prefix = l.name_prefix();
            let n = match counts.iter_mut().find(|(p, _)| *p == prefix) {
                Some((_, n)) => {
                    *n += 1;
                    *n
                }
                None => {
                    counts.push((prefix, 1));
                    1
                }
            };
            let (params, tensors) = (l.params().len(), l.tensors());
            let described: usize = tensors.iter().map(|t| t.len()).sum();
            if described != params {
                return Err(ShapeError {
                    index,
                    op: format!("{prefix}{n}"),
                    problem: format!(
                        "has {params} parameters but its tensors hold {described} values"
                    ),
                });
            }
            Ok(LayerInfo {
                name: format!("{prefix}{n}"),
                kind: l.kind().unwrap_or("layer"),
                params,
                tensors,
            })
        })
        .collect()
}

impl Model for Sequential {
    fn layers(&self) -> &[LayerInfo] {
        &self.layers
    }

    fn params(&self) -> Vec<&[f32]> {
        self.parameterised()
            .into_iter()
            .map(|l| l.params())
            .collect()
    }

    fn params_mut(&mut self) -> Vec<&mut [f32]> {
        let mut out = Vec::with_capacity(self.layers.len());
        layer::params_mut(&mut self.ops, &mut out);
        out
    }

    fn forward_backward(&mut self, batch: &Batch, request: &GradRequest, out: &mut BatchGrads) {
        // Run the pass on a rayon worker: the matrix products then share the pool with the
        // calling thread instead of adding threads to it (on 2 cores, ~10% faster). Tiny
        // batches stay on the calling thread, where handing over costs more than it saves.
        if batch.len() >= 16 {
            rayon::scope(|_| self.pass(batch, request, out));
        } else {
            self.pass(batch, request, out);
        }
    }

    fn per_example_blocks(&self, f: &mut dyn FnMut(&dyn PerExampleBlocks)) {
        let mut traces = self.traces();
        for t in &mut traces {
            t.prepare_blocks();
        }
        f(&Blocks { traces: &traces });
    }

    fn evaluate(&self, batch: &Batch, losses: &mut Vec<f32>, correct: &mut Vec<bool>) {
        let rows = batch.len();
        let logits = self.logits(&batch.inputs, rows);
        let cols = logits.len().checked_div(rows).unwrap_or(1);
        loss_kernel(
            self.loss,
            &logits,
            cols,
            batch.targets(),
            losses,
            correct,
            None,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{
        assert_close, check_finite_differences, check_quantities, full_request,
        random_batch as batch,
    };
    use crate::{
        reference, Activation, Conv2d, ConvGeometry, Dense, GroupNorm, Init, NormMethod, Pool2d,
        PoolKind, Residual,
    };
    use coherent_core::Rng;

    /// Dense layers of `widths` drawn from `seed`, with `act` between them: as layers of their
    /// own, or (`fused`) fused into the dense layer before.
    fn network(
        widths: &[usize],
        act: Activation,
        bias: bool,
        loss: LossKind,
        seed: u64,
        fused: bool,
    ) -> Sequential {
        let mut rng = Rng::new(seed);
        let mut ops: Vec<Box<dyn Layer>> = Vec::new();
        let last = widths.len() - 2;
        for (k, w) in widths.windows(2).enumerate() {
            if k > 0 && !fused {
                ops.push(Box::new(act));
            }
            let d = Dense::new(w[0], w[1], bias, Init::Uniform, &mut rng);
            ops.push(Box::new(
                d.with_activation((fused && k < last).then_some(act)),
            ));
        }
        Sequential::new(widths[0], ops, loss)
    }

    /// Every quantity of the engine against one dfdx backward pass per example.
    fn check_against_reference(model: &mut Sequential, b: &Batch) {
        let reference = reference::per_example_grads(model, b);
        check_quantities(model, b, &reference);
    }

    /// A dense network and the batch to check it on: `(widths, activation, bias, loss, batch
    /// rows, seed)`.
    type DenseCase = (&'static [usize], Activation, bool, LossKind, usize, u64);

    /// Dense networks against one dfdx backward pass per example: relu and tanh, with and
    /// without bias, cross-entropy and squared loss (a linear model too), a batch of one and an
    /// MNIST-sized layer. The batch's seed is the network's plus one.
    #[test]
    fn dense_networks_match_one_backward_per_example() {
        use Activation::{Relu, Tanh};
        use LossKind::{CrossEntropy, Squared};
        let cases: [DenseCase; 6] = [
            (&[13, 17, 9, 5], Relu, true, CrossEntropy, 11, 1),
            (&[6, 8, 3], Tanh, false, CrossEntropy, 7, 3),
            (&[6, 1], Relu, false, Squared, 4, 5),
            (&[5, 7, 1], Relu, true, Squared, 9, 7),
            (&[10, 12, 4], Relu, true, CrossEntropy, 1, 9),
            (&[784, 64, 10], Relu, true, CrossEntropy, 32, 13),
        ];
        for (widths, act, bias, loss, rows, seed) in cases {
            let mut m = network(widths, act, bias, loss, seed, false);
            let outputs = widths[widths.len() - 1];
            check_against_reference(&mut m, &batch(rows, widths[0], outputs, loss, seed + 1));
        }
    }

    #[test]
    fn fused_activations_match_reference_and_the_unfused_network() {
        for act in [Activation::Relu, Activation::Tanh] {
            let b = batch(9, 12, 4, LossKind::CrossEntropy, 21);
            let mut f = network(&[12, 10, 8, 4], act, true, LossKind::CrossEntropy, 20, true);
            check_against_reference(&mut f, &b);
            let mut u = network(
                &[12, 10, 8, 4],
                act,
                true,
                LossKind::CrossEntropy,
                20,
                false,
            );
            let (mut gf, mut gu) = (BatchGrads::default(), BatchGrads::default());
            f.forward_backward(&b, &GradRequest::SUM, &mut gf);
            u.forward_backward(&b, &GradRequest::SUM, &mut gu);
            for (a, b) in gf.sum.iter().zip(&gu.sum) {
                assert_close(a, b, "fused vs unfused");
            }
        }
    }

    #[test]
    fn relu_kinks_at_exactly_zero_match_reference() {
        let mut m = network(
            &[8, 16, 16, 3],
            Activation::Relu,
            true,
            LossKind::CrossEntropy,
            11,
            false,
        );
        // zero the first layer's bias: an all-zero input then sits exactly on every kink
        let d = m.ops[0].downcast_ref::<Dense>().unwrap();
        let n = d.inputs() * d.outputs();
        m.params_mut()[0][n..].fill(0.0);
        let mut b = batch(6, 8, 3, LossKind::CrossEntropy, 12);
        b.inputs[..8].fill(0.0);
        b.inputs[16..24].fill(0.0);
        let pre = m.logits(&b.inputs[..8], 1);
        assert!(pre.iter().all(|v| v.is_finite()));
        check_against_reference(&mut m, &b);
    }

    #[test]
    fn unrequested_quantities_are_left_empty() {
        let mut m = network(
            &[4, 3, 2],
            Activation::Relu,
            true,
            LossKind::CrossEntropy,
            15,
            false,
        );
        let b = batch(5, 4, 2, LossKind::CrossEntropy, 16);
        let mut out = BatchGrads::default();
        m.forward_backward(&b, &full_request(5), &mut out);
        m.forward_backward(&b, &GradRequest::SUM, &mut out);
        assert!(out.sq_norms.is_empty() && out.gram.is_empty() && out.per_example.is_empty());
        assert_eq!(out.sum.len(), 2);
    }

    /// conv (stride 2, padding 1) + relu, max pool, conv + tanh, global average pool, dense.
    fn conv_net(method: NormMethod, seed: u64) -> Sequential {
        let mut rng = Rng::new(seed);
        let g1 = ConvGeometry::new((2, 9, 8), 4, 3, 2, 1);
        let c1 = Conv2d::new(g1, true, Init::Uniform, &mut rng)
            .with_activation(Activation::Relu)
            .with_norm_method(method);
        let p1 = Pool2d {
            kind: PoolKind::Max,
            channels: 4,
            height: 5,
            width: 4,
            kernel: 2,
            stride: 2,
        };
        let g2 = ConvGeometry::new((4, 2, 2), 5, 2, 1, 1);
        let c2 = Conv2d::new(g2, false, Init::Uniform, &mut rng)
            .with_activation(Activation::Tanh)
            .with_norm_method(method);
        let gap = Pool2d::global_avg(5, 3, 3);
        let fc = Dense::new(5, 3, true, Init::Uniform, &mut rng);
        let ops: Vec<Box<dyn Layer>> = vec![
            Box::new(c1),
            Box::new(p1),
            Box::new(c2),
            Box::new(gap),
            Box::new(fc),
        ];
        Sequential::new(g1.input_len(), ops, LossKind::CrossEntropy)
    }

    #[test]
    fn conv_net_quantities_match_one_pass_per_example_with_both_norm_methods() {
        let b = batch(6, 2 * 9 * 8, 3, LossKind::CrossEntropy, 31);
        for method in [NormMethod::Ghost, NormMethod::Materialize, NormMethod::Auto] {
            let mut m = conv_net(method, 30);
            assert_eq!(
                m.layers()
                    .iter()
                    .map(|l| l.name.as_str())
                    .collect::<Vec<_>>(),
                ["conv1", "conv2", "fc1"]
            );
            let reference = reference::per_example_by_loop(&mut m, &b);
            check_quantities(&mut m, &b, &reference);
        }
        let mut m = conv_net(NormMethod::Auto, 30);
        // a batch of one, and one of several examples to each partial sum (groups of 3)
        for rows in [1, 19] {
            let b = batch(rows, 2 * 9 * 8, 3, LossKind::CrossEntropy, 32);
            let reference = reference::per_example_by_loop(&mut m, &b);
            check_quantities(&mut m, &b, &reference);
        }
    }

    /// A pass that asks only for the sum lets go of the convolutions' output gradients; the
    /// sum is the same, and a later pass that asks for per-example quantities has them all.
    #[test]
    fn a_sum_only_pass_leaves_the_next_pass_exact() {
        let b = batch(6, 2 * 9 * 8, 3, LossKind::CrossEntropy, 33);
        let mut m = conv_net(NormMethod::Auto, 30);
        let kept = |m: &Sequential| {
            let conv = m.ops()[0].as_any().downcast_ref::<Conv2d>().unwrap();
            conv.trace().delta.len()
        };
        let (mut sum, mut full) = (BatchGrads::default(), BatchGrads::default());
        m.forward_backward(&b, &GradRequest::SUM, &mut sum);
        assert_eq!(kept(&m), 0, "output gradients let go of");
        m.forward_backward(&b, &GradRequest::SQ_NORMS, &mut full);
        assert_eq!(kept(&m), 6 * 4 * 5 * 4, "output gradients kept");
        assert_eq!(sum.sum, full.sum, "the same summed gradient");
        let reference = reference::per_example_by_loop(&mut m, &b);
        m.forward_backward(&b, &GradRequest::SUM, &mut sum);
        check_quantities(&mut m, &b, &reference);
    }

    /// The summed gradient of a conv net against central finite differences of the loss
    /// (an independent check of the backward passes of convolution and pooling).
    #[test]
    fn conv_net_gradient_matches_finite_differences() {
        let b = batch(3, 2 * 9 * 8, 3, LossKind::CrossEntropy, 41);
        let mut m = conv_net(NormMethod::Auto, 40);
        let mut rng = Rng::new(42);
        for layer in 0..3 {
            let coords: Vec<usize> = (0..6)
                .map(|_| rng.below(m.layers()[layer].params))
                .collect();
            check_finite_differences(&mut m, &b, layer, &coords);
        }
    }

    fn conv(
        c: usize,
        hw: usize,
        out: usize,
        k: usize,
        s: usize,
        p: usize,
        rng: &mut Rng,
    ) -> Conv2d {
        let g = ConvGeometry::new((c, hw, hw), out, k, s, p);
        Conv2d::new(g, false, Init::Uniform, rng)
    }

    /// conv + GroupNorm + relu, an identity residual block, a strided residual block with a
    /// 1x1 projection shortcut, global average pooling, dense.
    fn resnet(seed: u64, act: Activation) -> Sequential {
        let mut rng = Rng::new(seed);
        let norm = |c: usize, hw: usize, relu: bool| {
            let g = GroupNorm::new(c, hw * hw, 2);
            Box::new(g.with_activation(relu.then_some(Activation::Relu))) as Box<dyn Layer>
        };
        // conv (stride `s`) + norm + relu, conv + norm, on `c x hw x hw` to `out` channels
        let body = |c: usize, hw: usize, out: usize, s: usize, rng: &mut Rng| {
            let o = hw / s;
            vec![
                Box::new(conv(c, hw, out, 3, s, 1, rng)) as Box<dyn Layer>,
                norm(out, o, true),
                Box::new(conv(out, o, out, 3, 1, 1, rng)),
                norm(out, o, false),
            ]
        };
        let stem: Vec<Box<dyn Layer>> =
            vec![Box::new(conv(2, 8, 4, 3, 1, 1, &mut rng)), norm(4, 8, true)];
        let block1 = Residual::new(4 * 64, body(4, 8, 4, 1, &mut rng), None, Some(act)).unwrap();
        let body2 = body(4, 8, 6, 2, &mut rng);
        let projection: Box<dyn Layer> = Box::new(conv(4, 8, 6, 1, 2, 0, &mut rng));
        let block2 = Residual::new(4 * 64, body2, Some(projection), Some(act)).unwrap();
        let mut ops = stem;
        ops.push(Box::new(block1));
        ops.push(Box::new(block2));
        ops.push(Box::new(Pool2d::global_avg(6, 4, 4)));
        ops.push(Box::new(Dense::new(6, 3, true, Init::Uniform, &mut rng)));
        Sequential::new(2 * 64, ops, LossKind::CrossEntropy)
    }

    #[test]
    fn residual_groupnorm_net_matches_one_pass_per_example() {
        let mut m = resnet(50, Activation::Relu);
        let names: Vec<&str> = m.layers().iter().map(|l| l.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "conv1", "norm1", "conv2", "norm2", "conv3", "norm3", "conv4", "norm4", "conv5",
                "norm5", "conv6", "fc1"
            ]
        );
        let b = batch(5, 2 * 64, 3, LossKind::CrossEntropy, 51);
        let reference = reference::per_example_by_loop(&mut m, &b);
        check_quantities(&mut m, &b, &reference);
    }

    /// Every parameterised layer describes its parameters as PyTorch's tensors, in the order
    /// and sizes of its flat parameters.
    #[test]
    fn layers_describe_their_tensors_in_pytorch_layouts() {
        let m = resnet(50, Activation::Relu);
        let shapes = |l: &LayerInfo| -> Vec<(String, Vec<usize>)> {
            l.tensors
                .iter()
                .map(|t| (t.name.clone(), t.shape.clone()))
                .collect()
        };
        let layers = m.layers();
        let w = |s: &[usize]| ("weight".to_string(), s.to_vec());
        let b = |s: &[usize]| ("bias".to_string(), s.to_vec());
        assert_eq!(shapes(&layers[0]), [w(&[4, 2, 3, 3])], "no bias");
        assert_eq!(shapes(&layers[1]), [w(&[4]), b(&[4])]);
        assert_eq!(shapes(&layers[10]), [w(&[6, 4, 1, 1])]);
        assert_eq!(shapes(&layers[11]), [w(&[3, 6]), b(&[3])]);
        let names: Vec<String> = layers[11].tensor_names().collect();
        assert_eq!(names, ["fc1.weight", "fc1.bias"]);
        for l in layers {
            assert_eq!(l.tensors.iter().map(|t| t.len()).sum::<usize>(), l.params);
        }
        let c = conv_net(NormMethod::Ghost, 1);
        assert_eq!(shapes(&c.layers()[0]), [w(&[4, 2, 3, 3]), b(&[4])]);
        assert_eq!(shapes(&c.layers()[1]), [w(&[5, 4, 2, 2])]);
    }

    /// A dense layer's flat weights are row-major `[out, in]`: `W[o][i]` multiplies input `i`
    /// into output `o`, as in `nn.Linear`.
    #[test]
    fn dense_weights_are_row_major_out_by_in() {
        let mut m = network(
            &[3, 2],
            Activation::Relu,
            true,
            LossKind::CrossEntropy,
            1,
            false,
        );
        let p = &mut m.params_mut()[0];
        p.fill(0.0);
        p[3 + 2] = 1.0; // W[1][2]
        p[6] = 0.5; // b[0]
        assert_eq!(m.logits(&[0.0, 0.0, 4.0], 1), [0.5, 4.0]);
    }

    /// A layer whose tensors do not cover its parameters does not fit in a network.
    #[test]
    fn tensors_that_miss_parameters_are_refused() {
        #[derive(Debug)]
        struct Lying(Dense);
        impl Layer for Lying {
            fn output_len(&self, input: usize) -> Result<usize, String> {
                self.0.output_len(input)
            }
            fn forward(&self, x: Act<CpuTape>, input_needs_grad: bool) -> Act<CpuTape> {
                self.0.forward(x, input_needs_grad)
            }
            fn forward_slice(&self, x: &[f32], rows: usize, out: &mut Vec<f32>) {
                self.0.forward_slice(x, rows, out)
            }
            fn kind(&self) -> Option<&'static str> {
                Some("dense")
            }
            fn params(&self) -> &[f32] {
                self.0.params()
            }
            fn tensors(&self) -> Vec<coherent_core::TensorInfo> {
                vec![coherent_core::TensorInfo::new("weight", vec![2, 3])]
            }
            fn as_any(&self) -> &dyn std::any::Any {
                self
            }
        }
        let dense = Dense::new(3, 2, true, Init::Uniform, &mut Rng::new(1));
        let e = Sequential::try_new(3, vec![Box::new(Lying(dense))], LossKind::CrossEntropy)
            .unwrap_err();
        assert!(
            e.to_string()
                .contains("8 parameters but its tensors hold 6"),
            "{e}"
        );
    }

    /// GroupNorm's and the residual blocks' backward passes against finite differences of the
    /// loss along each layer's gradient: the directional derivative must be `|g_l|`. (Moving a
    /// whole layer along its gradient changes the loss far above f32 rounding, which single
    /// coordinates of a normalised layer do not.) GroupNorm's gamma and beta first move off 1
    /// and 0 so that every term is exercised; tanh keeps the loss smooth. The step is small
    /// because the loss curves strongly along the first layer's gradient (GroupNorm
    /// renormalises what it changes): the differences converge to `|g|` as the step shrinks.
    #[test]
    fn residual_groupnorm_gradient_matches_finite_differences() {
        let b = batch(3, 2 * 64, 3, LossKind::CrossEntropy, 61);
        let mut m = resnet(60, Activation::Tanh);
        let mut rng = Rng::new(62);
        for p in m.params_mut() {
            p.iter_mut().for_each(|v| *v += 0.1 * rng.normal() as f32);
        }
        let mut out = BatchGrads::default();
        m.forward_backward(&b, &GradRequest::SUM, &mut out);
        let total = |m: &Sequential| -> f64 {
            let (mut l, mut c) = (vec![], vec![]);
            m.evaluate(&b, &mut l, &mut c);
            l.iter().map(|&v| v as f64).sum()
        };
        for layer in 0..m.layers().len() {
            let g = out.sum[layer].clone();
            let norm = g.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            let h = 1e-3 / norm.max(1e-3);
            let shift = |m: &mut Sequential, by: f64| {
                for (w, d) in m.params_mut()[layer].iter_mut().zip(&g) {
                    *w += (by * *d as f64) as f32;
                }
            };
            shift(&mut m, h);
            let up = total(&m);
            shift(&mut m, -2.0 * h);
            let down = total(&m);
            shift(&mut m, h);
            let fd = (up - down) / (2.0 * h * norm);
            assert!(
                (fd - norm).abs() < 1e-2 * norm + 1e-4,
                "layer {layer}: {fd} vs {norm}"
            );
        }
    }
}
