//! Building networks layer by layer while tracking the shape of the activations.

use crate::{
    Activation, Conv2d, ConvGeometry, Dense, GroupNorm, Init, Layer, Pool2d, PoolKind, Residual,
    Sequential,
};
use coherent_core::{LossKind, ModelSpec, Rng};

/// Appends layers to a network, keeping track of the `channels x height x width` shape they
/// produce; a layer that does not fit is an error in words, for the plugin to report.
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
        let geom = ConvGeometry {
            in_channels: c,
            height: h,
            width: w,
            out_channels: out,
            kernel,
            stride,
            padding,
        };
        if out == 0 || !geom.is_valid() {
            return Err(format!(
                "a {kernel}x{kernel} convolution (stride {stride}, padding {padding}) to {out} channels does not fit a {c}x{h}x{w} input"
            ));
        }
        let mut conv = Conv2d::new(geom, self.bias, self.init, &mut self.rng);
        if let Some(a) = activation {
            conv = conv.with_activation(a);
        }
        self.layers.push(Box::new(conv));
        self.shape = (out, geom.out_height(), geom.out_width());
        Ok(self)
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
        self.layers.push(Box::new(p));
        Ok(self)
    }

    /// Global average pooling to one value per channel.
    pub fn global_avg_pool(&mut self) -> &mut Self {
        let (c, h, w) = self.shape;
        self.layers.push(Box::new(Pool2d::global_avg(c, h, w)));
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
        let mut d = Dense::new(c * h * w, out, self.bias, self.init, &mut self.rng);
        if let Some(a) = activation {
            d = d.with_activation(a);
        }
        self.layers.push(Box::new(d));
        self.shape = (out, 1, 1);
        Ok(self)
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
        let mut g = GroupNorm::new(c, h * w, groups);
        if let Some(a) = activation {
            g = g.with_activation(a);
        }
        self.layers.push(Box::new(g));
        Ok(self)
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
            inputs: c * h * w,
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
                let geom = ConvGeometry {
                    in_channels: c,
                    height: h,
                    width: w,
                    out_channels: out,
                    kernel: 1,
                    stride,
                    padding: 0,
                };
                let conv = Conv2d::new(geom, self.bias, self.init, &mut inner.rng);
                Some(Box::new(conv) as Box<dyn Layer>)
            }
        };
        self.rng = inner.rng;
        let block = Residual::new(c * h * w, inner.layers, shortcut, activation)?;
        self.layers.push(Box::new(block));
        self.shape = inner.shape;
        Ok(self)
    }

    /// Appends any layer, built elsewhere (also outside this crate), whose output shape is
    /// `shape`; [`NetworkBuilder::build`] reports a layer that does not fit.
    pub fn push(&mut self, layer: Box<dyn Layer>, shape: (usize, usize, usize)) -> &mut Self {
        self.layers.push(layer);
        self.shape = shape;
        self
    }

    /// The random generator of the initial weights, for layers built outside the builder.
    pub fn rng(&mut self) -> &mut Rng {
        &mut self.rng
    }

    /// The network.
    pub fn build(self) -> Result<Sequential, String> {
        Sequential::try_new(self.inputs, self.layers, self.loss).map_err(|e| e.to_string())
    }
}
