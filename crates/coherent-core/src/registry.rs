//! The plugin registry: static entries submitted with `inventory`, collected into sorted maps.
//!
//! Each plugin crate submits one entry (`inventory::submit!`) whose `name` is the value of
//! `plugin = "..."` in a manifest. Entries are plain static data: a name, a one-line
//! description, parameter docs and a `fn` that builds the object from its manifest table.
//!
//! Linking pitfall: a plugin crate that nothing references is not linked and its entries
//! silently vanish. The `coherent-plugins` crate references every plugin; binaries and tests
//! reference it, and a test asserts the exact set of registered names.

use crate::{
    CoherenceMetric, ConfigError, DataError, Dataset, GradientAggregator, Model, ModelSpec,
    PluginArgs,
};
use std::collections::BTreeMap;
use std::sync::OnceLock;

/// Documentation of one plugin parameter, shown by `coherent plugins`.
#[derive(Clone, Copy, Debug)]
pub struct ParamDoc {
    /// Key in the plugin's manifest table.
    pub name: &'static str,
    /// Type, as a reader would write it (`integer`, `float in [0, 1]`, `list of integers`).
    pub ty: &'static str,
    /// Default value, as TOML (`"required"` when there is none).
    pub default: &'static str,
    /// What it means.
    pub doc: &'static str,
}

/// Error from building a dataset: bad parameters or bad files.
#[derive(Debug, thiserror::Error)]
pub enum DatasetBuildError {
    /// A parameter is wrong.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// A data file is missing or malformed.
    #[error(transparent)]
    Data(#[from] DataError),
}

macro_rules! entry {
    ($(#[$doc:meta])* $entry:ident, $built:ty, $err:ty, ($($arg:ty),*)) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $entry {
            /// Registry name: the manifest's `plugin` value (snake_case or kebab-case).
            pub name: &'static str,
            /// One-line description.
            pub description: &'static str,
            /// The parameters the plugin accepts.
            pub params: &'static [ParamDoc],
            /// Builds the plugin from its manifest table.
            pub build: fn(&PluginArgs $(, $arg)*) -> Result<$built, $err>,
        }
        inventory::collect!($entry);
        impl std::fmt::Debug for $entry {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($entry)).field("name", &self.name).finish()
            }
        }
    };
}

entry!(
    /// A network plugin (`[model]` section).
    NetworkEntry, Box<dyn Model>, ConfigError, (&ModelSpec)
);
entry!(
    /// A dataset plugin (`[dataset]` section).
    DatasetEntry, Box<dyn Dataset>, DatasetBuildError, ()
);
entry!(
    /// A metric plugin (`[[metrics]]` entries).
    MetricEntry, Box<dyn CoherenceMetric>, ConfigError, ()
);
entry!(
    /// A gradient aggregator plugin (`[aggregator]` section).
    AggregatorEntry, Box<dyn GradientAggregator>, ConfigError, ()
);

/// The four kinds of plugin.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum PluginKind {
    /// Networks (`[model]`).
    Network,
    /// Datasets (`[dataset]`).
    Dataset,
    /// Metrics (`[[metrics]]`).
    Metric,
    /// Gradient aggregators (`[aggregator]`).
    Aggregator,
}

impl PluginKind {
    /// Every kind, in display order.
    pub const ALL: [PluginKind; 4] = [
        PluginKind::Network,
        PluginKind::Dataset,
        PluginKind::Metric,
        PluginKind::Aggregator,
    ];

    /// Plural name used in listings.
    pub fn plural(self) -> &'static str {
        match self {
            PluginKind::Network => "networks",
            PluginKind::Dataset => "datasets",
            PluginKind::Metric => "metrics",
            PluginKind::Aggregator => "aggregators",
        }
    }
}

/// Two plugins registered the same name.
#[derive(Clone, Debug, thiserror::Error)]
#[error("two {kind} plugins are registered as `{name}`; plugin names must be unique")]
pub struct RegistryError {
    /// Kind of plugin.
    pub kind: &'static str,
    /// The duplicated name.
    pub name: &'static str,
}

/// Every registered plugin, by kind and name.
#[derive(Debug)]
pub struct Registry {
    /// Networks by name.
    pub networks: BTreeMap<&'static str, &'static NetworkEntry>,
    /// Datasets by name.
    pub datasets: BTreeMap<&'static str, &'static DatasetEntry>,
    /// Metrics by name.
    pub metrics: BTreeMap<&'static str, &'static MetricEntry>,
    /// Aggregators by name.
    pub aggregators: BTreeMap<&'static str, &'static AggregatorEntry>,
}

fn collect<T>(
    kind: &'static str,
    items: impl Iterator<Item = &'static T>,
    name: impl Fn(&T) -> &'static str,
) -> Result<BTreeMap<&'static str, &'static T>, RegistryError> {
    let mut map = BTreeMap::new();
    for item in items {
        if map.insert(name(item), item).is_some() {
            return Err(RegistryError {
                kind,
                name: name(item),
            });
        }
    }
    Ok(map)
}

impl Registry {
    /// The registry of the plugins linked into this program, built once.
    pub fn global() -> Result<&'static Registry, RegistryError> {
        static REGISTRY: OnceLock<Result<Registry, RegistryError>> = OnceLock::new();
        REGISTRY
            .get_or_init(Registry::build)
            .as_ref()
            .map_err(Clone::clone)
    }

    fn build() -> Result<Registry, RegistryError> {
        Ok(Registry {
            networks: collect("network", inventory::iter::<NetworkEntry>(), |e| e.name)?,
            datasets: collect("dataset", inventory::iter::<DatasetEntry>(), |e| e.name)?,
            metrics: collect("metric", inventory::iter::<MetricEntry>(), |e| e.name)?,
            aggregators: collect("aggregator", inventory::iter::<AggregatorEntry>(), |e| {
                e.name
            })?,
        })
    }

    /// Names, descriptions and parameters of the plugins of one kind, sorted by name.
    pub fn list(&self, kind: PluginKind) -> Vec<(&'static str, &'static str, &'static [ParamDoc])> {
        match kind {
            PluginKind::Network => self
                .networks
                .values()
                .map(|e| (e.name, e.description, e.params))
                .collect(),
            PluginKind::Dataset => self
                .datasets
                .values()
                .map(|e| (e.name, e.description, e.params))
                .collect(),
            PluginKind::Metric => self
                .metrics
                .values()
                .map(|e| (e.name, e.description, e.params))
                .collect(),
            PluginKind::Aggregator => self
                .aggregators
                .values()
                .map(|e| (e.name, e.description, e.params))
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_are_refused_and_names_sorted() {
        static A: (&str, u8) = ("b", 1);
        static B: (&str, u8) = ("a", 2);
        static C: (&str, u8) = ("b", 3);
        let ok = collect("network", [&A, &B].into_iter(), |e| e.0).unwrap();
        assert_eq!(ok.keys().copied().collect::<Vec<_>>(), vec!["a", "b"]);
        let err = collect("network", [&A, &B, &C].into_iter(), |e| e.0).unwrap_err();
        assert_eq!(err.name, "b");
        assert!(err.to_string().contains("two network plugins"));
    }
}
