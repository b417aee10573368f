//! Plugin parameters as written in a manifest, with their source locations.

use serde::de::DeserializeOwned;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use toml::de::{DeTable, DeValue, ValueDeserializer};
use toml::Spanned;

/// A problem with a manifest value, located by byte offsets into the manifest's text.
///
/// Libraries return it; the runner renders it as `file:line:col` with the offending line.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ConfigError {
    /// Byte range of the offending key or value in the manifest, if known.
    pub span: Option<Range<usize>>,
    /// What is wrong and what was expected.
    pub message: String,
    /// Further help, e.g. the list of valid choices.
    pub help: Option<String>,
}

impl ConfigError {
    /// An error at `span`.
    pub fn new(span: Option<Range<usize>>, message: impl Into<String>) -> ConfigError {
        ConfigError {
            span,
            message: message.into(),
            help: None,
        }
    }

    /// Adds a help line.
    pub fn with_help(mut self, help: impl Into<String>) -> ConfigError {
        self.help = Some(help.into());
        self
    }
}

impl From<toml::de::Error> for ConfigError {
    fn from(e: toml::de::Error) -> ConfigError {
        ConfigError::new(e.span(), e.message().trim().to_string())
    }
}

/// The table of one plugin in a manifest (`[model]`, `[dataset]`, one `[[metrics]]` entry...)
/// without its `plugin` key.
///
/// A plugin reads its typed configuration with [`PluginArgs::parse`] (serde, so
/// `#[serde(deny_unknown_fields)]` and defaults work as usual, and errors point at the
/// offending key) and reports invalid values with [`PluginArgs::invalid`].
#[derive(Clone, Debug)]
pub struct PluginArgs {
    value: Spanned<DeValue<'static>>,
    base_dir: Option<Arc<Path>>,
}

impl PluginArgs {
    /// Wraps a table taken from a parsed manifest.
    pub fn new(value: Spanned<DeValue<'static>>) -> PluginArgs {
        PluginArgs {
            value,
            base_dir: None,
        }
    }

    /// The same table, its relative paths resolving against `dir` (the manifest's directory;
    /// see [`PluginArgs::resolve_path`]).
    pub fn with_base_dir(mut self, dir: &Path) -> PluginArgs {
        self.base_dir = Some(Arc::from(dir));
        self
    }

    /// `path`, the value of `key`, resolved against the manifest's directory (the working
    /// directory for tables not read from a manifest); absolute paths are kept. A relative path
    /// that names nothing next to the manifest but exists relative to the working directory
    /// (where relative paths used to resolve) is an error at `key` saying what to write.
    pub fn resolve_path(&self, key: &str, path: &Path) -> Result<PathBuf, ConfigError> {
        crate::manifest_paths::resolve(self.base_dir.as_deref(), path).map_err(|moved| {
            self.invalid(
                key,
                format!(
                    "`{}` does not exist: relative paths resolve against the manifest's directory",
                    moved.resolved.display()
                ),
            )
            .with_help(format!(
                "`{}` exists relative to the working directory; write `{key} = \"{}\"` (relative to the manifest) or an absolute path",
                path.display(),
                moved.suggestion.display()
            ))
        })
    }

    /// Parameters given as TOML text (`"hidden = [64]"`), for tests and programmatic use.
    /// Spans then refer to `text`.
    pub fn from_toml(text: &str) -> Result<PluginArgs, ConfigError> {
        let text: &'static str = Box::leak(text.to_string().into_boxed_str());
        let table = DeTable::parse(text)?;
        let span = table.span();
        Ok(PluginArgs::new(Spanned::new(
            span,
            DeValue::Table(table.into_inner()),
        )))
    }

    /// No parameters: every default.
    pub fn empty() -> PluginArgs {
        PluginArgs::from_toml("").expect("empty TOML parses")
    }

    /// Deserialises the typed configuration.
    pub fn parse<T: DeserializeOwned>(&self) -> Result<T, ConfigError> {
        T::deserialize(ValueDeserializer::from(self.value.clone())).map_err(ConfigError::from)
    }

    /// Builds a plugin that has no parameters of its own: the table is checked against the
    /// plugin's configuration `C` (so that an unknown key is an error), then `T::default()` is
    /// returned.
    pub fn checked_default<C: DeserializeOwned, T: Default>(&self) -> Result<T, ConfigError> {
        self.parse::<C>()?;
        Ok(T::default())
    }

    /// Span of the value of `key` (or of the whole table if the key is absent).
    pub fn span_of(&self, key: &str) -> Range<usize> {
        if let DeValue::Table(t) = self.value.get_ref() {
            if let Some((_, v)) = t.iter().find(|(k, _)| k.get_ref().as_ref() == key) {
                return v.span();
            }
        }
        self.value.span()
    }

    /// Whether the table has `key`.
    pub fn has(&self, key: &str) -> bool {
        matches!(self.value.get_ref(), DeValue::Table(t) if t.iter().any(|(k, _)| k.get_ref().as_ref() == key))
    }

    /// Splits the table in two, spans kept: the entries whose key is in `keys`, and the others.
    /// (The runner takes its own keys out of a plugin's table this way.)
    pub fn split_off(&self, keys: &[&str]) -> (PluginArgs, PluginArgs) {
        let (mut taken, mut rest) = (DeTable::new(), DeTable::new());
        if let DeValue::Table(t) = self.value.get_ref() {
            for (k, v) in t.iter() {
                let side = match keys.contains(&k.get_ref().as_ref()) {
                    true => &mut taken,
                    false => &mut rest,
                };
                side.insert(k.clone(), v.clone());
            }
        }
        let wrap = |t| PluginArgs {
            value: Spanned::new(self.value.span(), DeValue::Table(t)),
            base_dir: self.base_dir.clone(),
        };
        (wrap(taken), wrap(rest))
    }

    /// This table plus `key = value` taken from `other`'s key `from` (span kept), if `other`
    /// has it; a key given in both is `Err` with the span of the second.
    pub fn with_moved(
        &self,
        other: &PluginArgs,
        from: &str,
        key: &str,
    ) -> Result<PluginArgs, Range<usize>> {
        let DeValue::Table(source) = other.value.get_ref() else {
            return Ok(self.clone());
        };
        let Some((k, v)) = source.iter().find(|(k, _)| k.get_ref().as_ref() == from) else {
            return Ok(self.clone());
        };
        if self.has(key) {
            return Err(k.span());
        }
        let mut table = match self.value.get_ref() {
            DeValue::Table(t) => t.clone(),
            _ => DeTable::new(),
        };
        table.insert(
            Spanned::new(k.span(), std::borrow::Cow::Owned(key.to_string())),
            v.clone(),
        );
        Ok(PluginArgs {
            value: Spanned::new(self.value.span(), DeValue::Table(table)),
            base_dir: self.base_dir.clone(),
        })
    }

    /// An error about the value of `key`.
    pub fn invalid(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::new(
            Some(self.span_of(key)),
            format!("`{key}`: {}", message.into()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize, Debug)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        #[serde(default)]
        width: usize,
    }

    #[test]
    fn parse_reads_values_and_defaults() {
        assert_eq!(
            PluginArgs::from_toml("width = 3")
                .unwrap()
                .parse::<Conf>()
                .unwrap()
                .width,
            3
        );
        assert_eq!(PluginArgs::empty().parse::<Conf>().unwrap().width, 0);
    }

    #[test]
    fn unknown_keys_and_wrong_types_are_located() {
        let text = "width = 3\nwidht = 4\n";
        let err = PluginArgs::from_toml(text)
            .unwrap()
            .parse::<Conf>()
            .unwrap_err();
        assert!(err.message.contains("unknown field `widht`"), "{err:?}");
        assert!(err.message.contains("width"), "lists valid keys: {err:?}");
        assert_eq!(&text[err.span.unwrap()], "widht");

        let text = "width = \"wide\"";
        let err = PluginArgs::from_toml(text)
            .unwrap()
            .parse::<Conf>()
            .unwrap_err();
        assert_eq!(&text[err.span.clone().unwrap()], "\"wide\"", "{err:?}");
    }

    #[test]
    fn tables_split_and_take_moved_keys_with_their_spans() {
        let text = "every_steps = 5\nrel = 2.0\nsample = 10";
        let args = PluginArgs::from_toml(text).unwrap();
        let (mine, rest) = args.split_off(&["every_steps", "sample"]);
        assert!(mine.has("every_steps") && mine.has("sample") && !mine.has("rel"));
        assert!(rest.has("rel") && !rest.has("sample"));
        assert_eq!(&text[mine.span_of("sample")], "10");
        let old = PluginArgs::from_toml("fractions_every = 3").unwrap();
        let moved = PluginArgs::empty()
            .with_moved(&old, "fractions_every", "every")
            .unwrap();
        assert!(moved.has("every"));
        assert!(moved.with_moved(&old, "fractions_every", "every").is_err());
        let unchanged = rest.with_moved(&old, "absent", "every").unwrap();
        assert!(!unchanged.has("every"));
    }

    #[test]
    fn invalid_points_at_the_key_value() {
        let text = "width = 0";
        let args = PluginArgs::from_toml(text).unwrap();
        let err = args.invalid("width", "must be positive");
        assert_eq!(&text[err.span.unwrap()], "0");
        assert!(err.message.contains("`width`"));
    }
}
