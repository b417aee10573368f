//! Building networks layer by layer while tracking the shape of the activations.

use crate::{
    Activation, Conv2d, ConvGeometry, Dense, GroupNorm, Init, Layer, Pool2d, PoolKind, Residual,
    Sequential,
};
use coherent_core::size::{count, dry, product, SIZED_ONLY};
use coherent_core::{LossKind, ModelSpec, Rng};

/// Appends layers to a network, keeping track of the `channels x height x width` shape they
/// produce; a layer that does not fit is an error in words, for the plugin to report.
///
/// Every layer is counted before it is allocated, with checked arithmetic (see
/// [`coherent_core::size`]): the runner sizes a network from its configuration without building it,
/// and a layer too large to allocate is an error, not an abort.
#[derive(Debug)]
pub struct NetworkBuilder {
    inputs: usize,
    shape: (usize, usize, usize),
    layers: Vec<Box<dyn Layer>>,
    rng: Rng,
    bias: bool,
    init: Init,
    loss: LossKind,
}

impl NetworkBuilder {
    /// A builder for the data of `spec`.
    pub fn new(spec: &ModelSpec, bias: bool, init: Init) -> NetworkBuilder {
        let s = spec.input;
        NetworkBuilder {
            inputs: s.len(),
            shape: (s.channels, s.height, s.width),
            layers: Vec::new(),
            rng: Rng::derived(spec.seed, "init"),
            bias,
            init,
            loss: spec.loss,
        }
    }

    /// The current shape.
    pub fn shape(&self) -> (usize, usize, usize) {
        self.shape
    }

    /// A convolution with `out` channels, followed by `activation`.
    pub fn conv(
        &mut self,
        out: usize,
        kernel: usize,
        stride: usize,
        padding: usize,
        activation: Option<Activation>,
    ) -> Result<&mut Self, String> {
        let (c, h, w) = self.shape;
        let geom = ConvGeometry::new((c, h, w), out, kernel, stride, padding);
        if out == 0 || !geom.is_valid() {
            return Err(format!(
                "a {kernel}x{kernel} convolution (stride {stride}, padding {padding}) to {out} channels does not fit a {c}x{h}x{w} input"
            ));
        }
        let (oh, ow) = (geom.out_height(), geom.out_width());
        let params = product(&[out, c, kernel, kernel])
            .and_then(|w| w.checked_add(if self.bias { out as u64 } else { 0 }));
        let what = format!("a {kernel}x{kernel} convolution to {out} channels");
        count(&what, params, product(&[out, oh, ow]))?;
        self.shape = (out, oh, ow);
        if dry() {
            return Ok(self);
        }
        let conv =
            Conv2d::new(geom, self.bias, self.init, &mut self.rng).with_activation(activation);
        Ok(self.append(Box::new(conv)))
    }

    /// Max or average pooling over `kernel x kernel` windows with stride `kernel`.
    pub fn pool(&mut self, kind: PoolKind, kernel: usize) -> Result<&mut Self, String> {
        let (c, h, w) = self.shape;
        if kernel == 0 || kernel > h || kernel > w {
            return Err(format!(
                "{kernel}x{kernel} pooling does not fit a {c}x{h}x{w} input"
            ));
        }
        let p = Pool2d {
            kind,
            channels: c,
            height: h,
            width: w,
            kernel,
            stride: kernel,
        };
        self.shape = (c, p.out_height(), p.out_width());
        count(
            "pooling",
            Some(0),
            product(&[c, self.shape.1, self.shape.2]),
        )?;
        if !dry() {
            self.layers.push(Box::new(p));
        }
        Ok(self)
    }

    /// Global average pooling to one value per channel.
    pub fn global_avg_pool(&mut self) -> &mut Self {
        let (c, h, w) = self.shape;
        // no parameters, fewer outputs than its input: never refused
        let _ = count("global pooling", Some(0), Some(c as u64));
        if !dry() {
            self.layers.push(Box::new(Pool2d::global_avg(c, h, w)));
        }
        self.shape = (c, 1, 1);
        self
    }

    /// A dense layer to `out` features (the input is flattened), followed by `activation`.
    pub fn dense(
        &mut self,
        out: usize,
        activation: Option<Activation>,
    ) -> Result<&mut Self, String> {
        if out == 0 {
            return Err("a dense layer needs at least one output".into());
        }
        let (c, h, w) = self.shape;
        let inputs = c.saturating_mul(h).saturating_mul(w);
        let params = product(&[c, h, w, out])
            .and_then(|w| w.checked_add(if self.bias { out as u64 } else { 0 }));
        let what = format!("a dense layer of {inputs} x {out}");
        count(&what, params, Some(out as u64))?;
        self.shape = (out, 1, 1);
        if dry() {
            return Ok(self);
        }
        let d = Dense::new(inputs, out, self.bias, self.init, &mut self.rng)
            .with_activation(activation);
        Ok(self.append(Box::new(d)))
    }

    /// Group normalisation with `groups` groups, followed by `activation`.
    pub fn group_norm(
        &mut self,
        groups: usize,
        activation: Option<Activation>,
    ) -> Result<&mut Self, String> {
        let (c, h, w) = self.shape;
        if groups == 0 || !c.is_multiple_of(groups) {
            return Err(format!("{groups} groups do not divide {c} channels"));
        }
        let params = product(&[c, 2]);
        count("group normalisation", params, product(&[c, h, w]))?;
        if dry() {
            return Ok(self);
        }
        let g = GroupNorm::new(c, h * w, groups).with_activation(activation);
        Ok(self.append(Box::new(g)))
    }

    /// A residual block: `activation(body(x) + shortcut(x))`. The body is built by `body` on a
    /// builder at the current shape; the shortcut is the identity, or with
    /// `projection = Some((channels, stride))` a 1x1 convolution.
    pub fn residual(
        &mut self,
        body: impl FnOnce(&mut NetworkBuilder) -> Result<(), String>,
        projection: Option<(usize, usize)>,
        activation: Option<Activation>,
    ) -> Result<&mut Self, String> {
        let (c, h, w) = self.shape;
        let mut inner = NetworkBuilder {
            inputs: c.saturating_mul(h).saturating_mul(w),
            shape: self.shape,
            layers: Vec::new(),
            rng: self.rng.clone(),
            bias: self.bias,
            init: self.init,
            loss: self.loss,
        };
        body(&mut inner)?;
        let shortcut = match projection {
            None => None,
            Some((out, stride)) => {
                let geom = ConvGeometry::new((c, h, w), out, 1, stride, 0);
                if !geom.is_valid() {
                    return Err(format!(
                        "a 1x1 projection (stride {stride}) does not fit a {c}x{h}x{w} input"
                    ));
                }
                let params = product(&[out, c])
                    .and_then(|p| p.checked_add(if self.bias { out as u64 } else { 0 }));
                let outputs = product(&[out, geom.out_height(), geom.out_width()]);
                count("a 1x1 projection", params, outputs)?;
                match dry() {
                    true => None,
                    false => {
                        let conv = Conv2d::new(geom, self.bias, self.init, &mut inner.rng);
                        Some(Box::new(conv) as Box<dyn Layer>)
                    }
                }
            }
        };
        if dry() {
            self.shape = inner.shape;
            return Ok(self);
        }
        self.rng = inner.rng;
        let block = Residual::new(c * h * w, inner.layers, shortcut, activation)?;
        self.shape = inner.shape;
        Ok(self.append(Box::new(block)))
    }

    /// Appends a layer built and counted here.
    fn append(&mut self, layer: Box<dyn Layer>) -> &mut Self {
        self.layers.push(layer);
        self
    }

    /// Appends any layer, built elsewhere (also outside this crate), whose output shape is
    /// `shape`; [`NetworkBuilder::build`] reports a layer that does not fit.
    pub fn push(&mut self, layer: Box<dyn Layer>, shape: (usize, usize, usize)) -> &mut Self {
        // built already: counted, never refused here (what follows may be)
        let params = layer.params().len() as u64;
        let _ = count(
            "a layer",
            Some(params),
            product(&[shape.0, shape.1, shape.2]),
        );
        if !dry() {
            self.layers.push(layer);
        }
        self.shape = shape;
        self
    }

    /// The random generator of the initial weights, for layers built outside the builder.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// Ends the network with a classifier and builds it: a dense layer of each width in
    /// `hidden`, each with `activation` fused into it, then a dense layer to `outputs` without
    /// activation.
    pub fn build_with_classifier(
        mut self,
        hidden: &[usize],
        activation: Option<Activation>,
        outputs: usize,
    ) -> Result<Sequential, String> {
        for &width in hidden {
            self.dense(width, activation)?;
        }
        self.dense(outputs, None)?;
        self.build()
    }

    /// The network (inside [`coherent_core::size::measure`]: `Err(SIZED_ONLY)`, nothing being built).
    pub fn build(self) -> Result<Sequential, String> {
        if dry() {
            return Err(SIZED_ONLY.into());
        }
        Sequential::try_new(self.inputs, self.layers, self.loss).map_err(|e| e.to_string())
    }
}
