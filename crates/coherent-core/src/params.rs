//! Parameter docs generated from a plugin's typed configuration.
//!
//! A plugin's parameters are one serde struct; `#[derive(PluginConfig)]` turns its fields into
//! the [`ParamDoc`]s that `coherent plugins` lists — name, type, default and meaning — from the
//! field names, their [`ParamType`], serde's own `default` attributes and the doc comments, so
//! nothing is written twice and the documented defaults are the real ones.
//!
//! ```
//! use coherent_core::{PluginConfig, ParamType};
//! use serde::Deserialize;
//!
//! #[derive(Clone, Copy, Debug, Default, Deserialize, ParamType)]
//! #[serde(rename_all = "snake_case")]
//! enum Shape {
//!     #[default]
//!     Round,
//!     Square,
//! }
//!
//! #[derive(Debug, Deserialize, PluginConfig)]
//! #[serde(deny_unknown_fields)]
//! struct Config {
//!     /// How many corners.
//!     #[serde(default = "four")]
//!     corners: usize,
//!     /// The shape.
//!     #[serde(default)]
//!     shape: Shape,
//!     /// Width of the border.
//!     width: f64,
//! }
//!
//! fn four() -> usize {
//!     4
//! }
//!
//! let docs = Config::params();
//! assert_eq!((docs[0].name, docs[0].ty.as_str(), docs[0].default.as_str()), ("corners", "integer", "4"));
//! assert_eq!(docs[1].ty, "\"round\" | \"square\"");
//! assert_eq!(docs[1].default, "\"round\"");
//! assert_eq!((docs[2].default.as_str(), docs[2].doc.as_str()), ("required", "Width of the border."));
//! ```

use std::path::PathBuf;

/// Documentation of one plugin parameter, shown by `coherent plugins`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamDoc {
    /// Key in the plugin's manifest table.
    pub name: &'static str,
    /// Type, as a reader would write it (`integer`, `float`, `list of integers`).
    pub ty: String,
    /// Default value, as TOML (`required` when there is none).
    pub default: String,
    /// What it means.
    pub doc: String,
}

/// A plugin configuration whose parameter docs come from the type itself; derive it with
/// `#[derive(PluginConfig)]` (see the module docs).
pub trait PluginConfig {
    /// The docs of every parameter, in field order.
    fn params() -> Vec<ParamDoc>;
}

/// No parameters.
impl PluginConfig for () {
    fn params() -> Vec<ParamDoc> {
        Vec::new()
    }
}

/// A parameter's type as the docs name it, and its values as a manifest writes them.
///
/// Implemented for numbers, booleans, strings, paths, lists, fixed-size arrays and options;
/// derive it for an enum of choices with `#[derive(ParamType)]`.
pub trait ParamType {
    /// The type in words (`integer`, `list of integers`, `"relu" | "tanh"`).
    fn type_name() -> String;
    /// The type in words, plural (`lists of integers`).
    fn plural() -> String {
        format!("{}s", Self::type_name())
    }
    /// A value as TOML.
    fn render(&self) -> String;
}

macro_rules! numbers {
    ($name:literal: $($t:ty),*) => {$(
        impl ParamType for $t {
            fn type_name() -> String {
                $name.into()
            }
            fn render(&self) -> String {
                format!("{self:?}")
            }
        }
    )*};
}
numbers!("integer": u8, u16, u32, u64, usize, i32, i64);
numbers!("float": f32, f64);

impl ParamType for bool {
    fn type_name() -> String {
        "boolean".into()
    }
    fn render(&self) -> String {
        self.to_string()
    }
}

impl ParamType for String {
    fn type_name() -> String {
        "string".into()
    }
    fn render(&self) -> String {
        format!("{self:?}")
    }
}

impl ParamType for char {
    fn type_name() -> String {
        "character".into()
    }
    fn render(&self) -> String {
        format!("{:?}", self.to_string())
    }
}

impl ParamType for PathBuf {
    fn type_name() -> String {
        "path".into()
    }
    fn render(&self) -> String {
        format!("{:?}", self.display().to_string())
    }
}

/// Values as a TOML array.
fn render_list<T: ParamType>(values: &[T]) -> String {
    let items: Vec<String> = values.iter().map(ParamType::render).collect();
    format!("[{}]", items.join(", "))
}

impl<T: ParamType> ParamType for Vec<T> {
    fn type_name() -> String {
        format!("list of {}", T::plural())
    }
    fn plural() -> String {
        format!("lists of {}", T::plural())
    }
    fn render(&self) -> String {
        render_list(self)
    }
}

/// A fixed number of values (`5 integers`), written as a TOML array.
impl<T: ParamType, const N: usize> ParamType for [T; N] {
    fn type_name() -> String {
        format!("{N} {}", T::plural())
    }
    fn plural() -> String {
        format!("lists of {N} {}", T::plural())
    }
    fn render(&self) -> String {
        render_list(self)
    }
}

impl<T: ParamType> ParamType for Option<T> {
    fn type_name() -> String {
        T::type_name()
    }
    fn plural() -> String {
        T::plural()
    }
    fn render(&self) -> String {
        self.as_ref()
            .map_or_else(|| "none".into(), ParamType::render)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PluginConfig;
    use serde::Deserialize;

    #[derive(Debug, Default, Deserialize, PluginConfig)]
    #[serde(default, deny_unknown_fields)]
    struct AllDefault {
        /// Widths of the layers.
        ///
        /// A second paragraph that the one-line docs leave out.
        hidden: Vec<Vec<usize>>,
        /// Renamed.
        #[serde(rename = "rate")]
        lr: f64,
        /// Worded.
        #[param(default = "all", ty = "integer >= 1")]
        limit: Option<usize>,
        #[serde(skip)]
        _cache: Vec<f32>,
    }

    #[test]
    fn docs_follow_the_struct_and_its_defaults() {
        let docs = AllDefault::params();
        let names: Vec<&str> = docs.iter().map(|d| d.name).collect();
        assert_eq!(names, ["hidden", "rate", "limit"]);
        assert_eq!(docs[0].ty, "list of lists of integers");
        assert_eq!(docs[0].default, "[]");
        assert_eq!(docs[0].doc, "Widths of the layers.");
        assert_eq!(
            (docs[1].ty.as_str(), docs[1].default.as_str()),
            ("float", "0.0")
        );
        assert_eq!(
            (docs[2].ty.as_str(), docs[2].default.as_str()),
            ("integer >= 1", "all")
        );
    }

    #[test]
    fn values_render_as_toml() {
        assert_eq!(vec![vec![1usize, 2], vec![]].render(), "[[1, 2], []]");
        assert_eq!(1e-5f64.render(), "1e-5");
        assert_eq!(None::<usize>.render(), "none");
        assert_eq!(String::from("he").render(), "\"he\"");
        assert_eq!(<[usize; 3]>::type_name(), "3 integers");
        assert_eq!([4usize, 5, 6].render(), "[4, 5, 6]");
    }
}
