//! `[model] weights = "file.safetensors"`: a run that starts from given weights (a network
//! trained elsewhere, or a run's `weights/final.safetensors`) instead of its initialisation.
//!
//! `weights` is the runner's key of the `[model]` table: the network plugin never sees it.
//! Every tensor of the file is checked against the network's (names and shapes, see
//! [`coherent_record::weights`]); what does not fit is reported at the `weights` value.

use super::sections::Sections;
use crate::meta::layer_meta;
use coherent_core::{ConfigError, Model, PluginArgs};
use coherent_record::weights::unpack;
use coherent_record::{LayerMeta, TensorFile};
use serde::Deserialize;
use std::path::{Path, PathBuf};

/// The runner's keys of the `[model]` table.
pub const KEYS: &[&str] = &["weights"];

/// How many tensors that do not fit are reported one by one.
const SHOWN: usize = 10;

/// The runner's keys of `[model]`, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelKeys {
    weights: Option<String>,
}

/// The file the `weights` value `path` of `own` names: relative paths resolve against the
/// manifest's directory, like every path of a manifest ([`PluginArgs::resolve_path`]).
pub fn resolve(own: &PluginArgs, path: &str) -> Result<PathBuf, ConfigError> {
    own.resolve_path("weights", Path::new(path))
}

/// Loads the weights file that `own` (the runner's keys of `[model]`) names, if any, into
/// `model`; `false` (with the problems in `cx`) if it cannot be read or does not fit.
pub fn load(cx: &mut Sections<'_>, own: &PluginArgs, model: &mut dyn Model) -> bool {
    let keys: ModelKeys = match own.parse() {
        Ok(k) => k,
        Err(e) => {
            cx.error(e);
            return false;
        }
    };
    let Some(written) = keys.weights else {
        return true;
    };
    let span = Some(own.span_of("weights"));
    let path = match resolve(own, &written) {
        Ok(p) => p,
        Err(e) => {
            cx.error(e);
            return false;
        }
    };
    let file = match TensorFile::read(&path) {
        Ok(f) => f,
        Err(e) => {
            cx.error(ConfigError::new(
                span,
                format!("cannot read the weights: {e}"),
            ));
            return false;
        }
    };
    let layers: Vec<LayerMeta> = model.layers().iter().map(layer_meta).collect();
    match unpack(&file.tensors, &layers, "") {
        Ok(params) => {
            for (p, q) in model.params_mut().into_iter().zip(&params) {
                p.copy_from_slice(q);
            }
            true
        }
        Err(problems) => {
            let help = format!("the network's tensors: {}", tensor_list(&layers));
            for (k, p) in problems.iter().take(SHOWN).enumerate() {
                let e = ConfigError::new(span.clone(), format!("`{}`: {p}", path.display()));
                cx.error(if k == 0 { e.with_help(help.clone()) } else { e });
            }
            if problems.len() > SHOWN {
                cx.error(ConfigError::new(
                    span,
                    format!(
                        "`{}`: {} more tensors do not fit the network",
                        path.display(),
                        problems.len() - SHOWN
                    ),
                ));
            }
            false
        }
    }
}

/// `fc1.weight [32, 784], fc1.bias [32], ...` (the first few, and how many more).
fn tensor_list(layers: &[LayerMeta]) -> String {
    let all: Vec<String> = layers
        .iter()
        .flat_map(|l| {
            l.described()
                .into_iter()
                .map(move |t| format!("{}.{} {:?}", l.name, t.name, t.shape))
        })
        .collect();
    let mut text = all.iter().take(12).cloned().collect::<Vec<_>>().join(", ");
    if all.len() > 12 {
        text.push_str(&format!(", ... ({} in all)", all.len()));
    }
    text
}
