//! Reading the sections of a manifest while collecting every problem, located.

use crate::diagnostic::Diagnostic;
use crate::manifest::{get, Manifest};
use crate::protocol::ProtocolIssue;
use coherent_core::{renamed, ConfigError, PluginArgs};
use std::collections::BTreeMap;
use toml::de::DeValue;
use toml::Spanned;

/// A manifest value: a table, a list, a number.
pub type Value = Spanned<DeValue<'static>>;

/// The problems (and warnings) found while planning one run.
pub struct Sections<'m> {
    manifest: &'m Manifest,
    /// The errors.
    pub diags: Vec<Diagnostic>,
    /// The warnings (deprecated keys and names).
    pub warnings: Vec<Diagnostic>,
}

impl<'m> Sections<'m> {
    /// Nothing found yet in `manifest`.
    pub fn new(manifest: &'m Manifest) -> Sections<'m> {
        Sections {
            manifest,
            diags: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Records an error.
    pub fn error(&mut self, e: ConfigError) {
        self.diags.push(self.manifest.diagnostic(e));
    }

    /// Records an error at `span` with a help line.
    pub fn error_at(&mut self, span: std::ops::Range<usize>, message: String, help: String) {
        self.error(ConfigError::new(Some(span), message).with_help(help));
    }

    /// Records a warning.
    pub fn warn(&mut self, e: ConfigError) {
        self.warnings
            .push(self.manifest.diagnostic(e).into_warning());
    }

    /// The entry and arguments (without `plugin`) of the plugin table `value`.
    pub fn plugin<E: Copy>(
        &mut self,
        value: &Value,
        what: &str,
        entries: &BTreeMap<&'static str, E>,
    ) -> Option<(E, PluginArgs)> {
        let DeValue::Table(table) = value.get_ref() else {
            self.error(ConfigError::new(
                Some(value.span()),
                format!("{what} must be a table"),
            ));
            return None;
        };
        let names = entries.keys().copied().collect::<Vec<_>>().join(", ");
        let Some(plugin) = table.get("plugin") else {
            let message = format!("{what} has no `plugin` key");
            self.error_at(value.span(), message, format!("valid plugins: {names}"));
            return None;
        };
        let DeValue::String(name) = plugin.get_ref() else {
            self.error(ConfigError::new(
                Some(plugin.span()),
                "`plugin` must be a string",
            ));
            return None;
        };
        let entry = match entries.get(name.as_ref()) {
            Some(entry) => *entry,
            None => match renamed(name).and_then(|new| entries.get(new).map(|e| (new, *e))) {
                Some((new, entry)) => {
                    self.warn(
                        ConfigError::new(
                            Some(plugin.span()),
                            format!("plugin `{name}` is now called `{new}`"),
                        )
                        .with_help(format!("write `plugin = \"{new}\"`; the old name will go")),
                    );
                    entry
                }
                None => {
                    let message = format!("unknown plugin `{name}` for {what}");
                    self.error_at(plugin.span(), message, format!("valid plugins: {names}"));
                    return None;
                }
            },
        };
        let args = self.args(value);
        Some((entry, args.split_off(&["plugin"]).1))
    }

    /// The table `value` as plugin arguments, relative paths resolving next to the manifest.
    fn args(&self, value: &Value) -> PluginArgs {
        PluginArgs::new(value.clone()).with_base_dir(&self.manifest.dir())
    }

    /// One of the runner's own sections, parsed and validated, with its arguments.
    pub fn settings<T: serde::de::DeserializeOwned>(
        &mut self,
        root: &Value,
        key: &str,
        validate: impl Fn(&T, &PluginArgs) -> Vec<ConfigError>,
    ) -> (PluginArgs, Option<T>) {
        let args = self.section(root, key);
        match args.parse::<T>() {
            Ok(t) => {
                for e in validate(&t, &args) {
                    self.error(e);
                }
                (args, Some(t))
            }
            Err(e) => {
                self.error(e);
                (args, None)
            }
        }
    }

    /// The arguments of a section (empty if absent).
    pub fn section(&mut self, root: &Value, key: &str) -> PluginArgs {
        match get(root, key) {
            Some(v) if matches!(v.get_ref(), DeValue::Table(_)) => self.args(v),
            Some(v) => {
                self.error(ConfigError::new(
                    Some(v.span()),
                    format!("`{key}` must be a table"),
                ));
                PluginArgs::empty()
            }
            None => PluginArgs::empty(),
        }
    }

    /// The tables of a list of tables (`[[metrics]]`, `[[observers]]`).
    pub fn tables(&mut self, root: &Value, key: &str) -> Vec<Value> {
        match get(root, key) {
            None => vec![],
            Some(v) => match v.get_ref() {
                DeValue::Array(items) => items.iter().cloned().collect(),
                _ => {
                    let message = format!("`{key}` must be a list of tables");
                    self.error_at(
                        v.span(),
                        message,
                        format!("write each one as a `[[{key}]]` table"),
                    );
                    vec![]
                }
            },
        }
    }

    /// The error of a protocol's check, located at its `section.key`.
    pub fn locate(&self, root: &Value, issue: ProtocolIssue) -> ConfigError {
        let (section, key) = issue.key.split_once('.').unwrap_or((issue.key, ""));
        let span = get(root, section).map(|s| get(s, key).map_or(s.span(), |v| v.span()));
        let mut e = ConfigError::new(span, issue.message);
        e.help = issue.help;
        e
    }
}

/// The span of `key` in `value` (or of the whole value), for locating cross-checks.
pub fn span_in(value: Option<&Value>, key: &str) -> Option<std::ops::Range<usize>> {
    let value = value?;
    Some(get(value, key).map_or(value.span(), |v| v.span()))
}
