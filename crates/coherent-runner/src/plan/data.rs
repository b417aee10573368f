//! Datasets built once per planner and shared by the runs that use the same `[dataset]`.

use super::sections::Sections;
use crate::manifest::get;
use coherent_core::{ConfigError, DataError, Dataset, DatasetBuildError, Registry};
use serde::Deserialize;
use std::collections::HashMap;
use std::sync::Arc;
use toml::de::{DeValue, ValueDeserializer};
use toml::Spanned;

/// The datasets built so far, by their `[dataset]` table.
#[derive(Default)]
pub struct DataCache {
    built: HashMap<String, Arc<dyn Dataset>>,
}

impl DataCache {
    /// The dataset of `root`'s `[dataset]` table (built once), or the data error of its files
    /// (manifest errors go to `cx`).
    pub fn build(
        &mut self,
        cx: &mut Sections<'_>,
        root: &Spanned<DeValue<'static>>,
        registry: &Registry,
    ) -> (Option<Arc<dyn Dataset>>, Option<Arc<DataError>>) {
        let Some(value) = get(root, "dataset") else {
            return (None, None);
        };
        let key = toml::Value::deserialize(ValueDeserializer::from(value.clone()))
            .map(|v| v.to_string())
            .unwrap_or_default();
        let Some((entry, args)) = cx.plugin(value, "[dataset]", &registry.datasets) else {
            return (None, None);
        };
        let key = format!("{}:{key}", entry.name);
        if let Some(d) = self.built.get(&key) {
            return (Some(d.clone()), None);
        }
        match (entry.build)(&args) {
            Ok(d) => {
                for note in d.notes() {
                    cx.warn(ConfigError::new(Some(args.span_of("path")), note));
                }
                let d: Arc<dyn Dataset> = Arc::from(d);
                self.built.insert(key, d.clone());
                (Some(d), None)
            }
            Err(DatasetBuildError::Config(e)) => {
                cx.error(e);
                (None, None)
            }
            Err(DatasetBuildError::Data(e)) => (None, Some(Arc::new(e))),
        }
    }
}
