//! Reading a manifest: TOML syntax, top-level keys and the sweep, with every problem located.

use crate::diagnostic::{Diagnostic, Diagnostics};
use crate::sweep::RunSpec;
use std::path::{Path, PathBuf};
use toml::de::{DeTable, DeValue};
use toml::Spanned;

/// Top-level keys of a manifest (besides the sections named after protocol plugins).
pub const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "seed",
    "dataset",
    "model",
    "training",
    "aggregator",
    "metrics",
    "observers",
    "evaluation",
    "record",
    "sweep",
];

/// Every valid top-level key: [`TOP_LEVEL_KEYS`] and the protocols' sections.
pub fn top_level_keys() -> Vec<&'static str> {
    let mut keys = TOP_LEVEL_KEYS.to_vec();
    keys.extend(crate::protocol::ProtocolEntry::all().iter().map(|e| e.name));
    keys
}

/// A parsed manifest and the runs its sweep expands to.
#[derive(Debug)]
pub struct Manifest {
    /// The file it was read from.
    pub path: PathBuf,
    /// Its text.
    pub source: &'static str,
    /// Experiment name (the `name` key, or the file stem).
    pub name: String,
    /// The runs, in index order.
    pub runs: Vec<RunSpec>,
}

impl Manifest {
    /// The directory holding the manifest, against which its relative paths resolve.
    pub fn dir(&self) -> PathBuf {
        match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }

    /// Reads and checks the structure of the manifest at `path` (plugins are checked when a
    /// run is planned, see [`crate::plan()`]). The manifest must be a regular file of at most
    /// [`crate::manifest_file::MAX_MANIFEST_BYTES`], which is checked before it is opened.
    pub fn load(path: &Path) -> Result<Manifest, Diagnostics> {
        let bytes = crate::manifest_file::read_manifest(path)
            .map_err(|message| Diagnostics(vec![Diagnostic::at(path, "", None, message)]))?;
        Manifest::parse_bytes(path, bytes)
    }

    /// Parses the manifest file contents `bytes`, which must be UTF-8; `path` names it in
    /// diagnostics.
    pub fn parse_bytes(path: &Path, bytes: Vec<u8>) -> Result<Manifest, Diagnostics> {
        match String::from_utf8(bytes) {
            Ok(text) => Manifest::parse(path, text),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let text = String::from_utf8_lossy(e.as_bytes());
                Err(Diagnostics(vec![Diagnostic::at(
                    path,
                    &text,
                    Some(at..at + 1),
                    "the manifest is not valid UTF-8",
                )]))
            }
        }
    }

    /// Parses manifest `text`; `path` names it in diagnostics.
    pub fn parse(path: &Path, text: String) -> Result<Manifest, Diagnostics> {
        // Plugin arguments borrow the text for the whole program; manifests are small and read
        // once, so the text is leaked rather than threaded through every lifetime.
        let source: &'static str = Box::leak(text.into_boxed_str());
        let (root, errors) = DeTable::parse_recoverable(source);
        let mut diags: Vec<Diagnostic> = errors
            .into_iter()
            .map(|e| Diagnostic::at(path, source, e.span(), e.message().trim().to_string()))
            .collect();
        if !diags.is_empty() {
            return Err(Diagnostics(diags));
        }
        let root = root.into_inner();
        let valid = top_level_keys();
        for (key, _) in root.iter() {
            if !valid.contains(&key.get_ref().as_ref()) {
                diags.push(
                    Diagnostic::at(
                        path,
                        source,
                        Some(key.span()),
                        format!("unknown key `{}`", key.get_ref()),
                    )
                    .with_help(format!("valid top-level keys: {}", valid.join(", "))),
                );
            }
        }
        let name = match root.get("name") {
            None => path
                .file_stem()
                .map_or("experiment".into(), |s| s.to_string_lossy().into_owned()),
            Some(v) => match v.get_ref() {
                DeValue::String(s) if valid_name(s) => s.to_string(),
                _ => {
                    diags.push(Diagnostic::at(
                        path,
                        source,
                        Some(v.span()),
                        "`name` must be a non-empty string of letters, digits, `-`, `_` and `.`",
                    ));
                    String::new()
                }
            },
        };
        for section in ["dataset", "model"] {
            if root.get(section).is_none() {
                diags.push(
                    Diagnostic::at(path, source, Some(0..0), format!("missing section `[{section}]`"))
                        .with_help(format!("add a `[{section}]` table with a `plugin` key; `coherent plugins` lists them")),
                );
            }
        }
        let runs = match crate::sweep::expand(&root, source) {
            Ok(runs) => runs,
            Err(errors) => {
                diags.extend(
                    errors
                        .into_iter()
                        .map(|e| Diagnostic::from_config(path, source, e)),
                );
                vec![]
            }
        };
        if diags.is_empty() {
            Ok(Manifest {
                path: path.to_path_buf(),
                source,
                name,
                runs,
            })
        } else {
            Err(Diagnostics(diags))
        }
    }

    /// A diagnostic located in this manifest.
    pub fn diagnostic(&self, error: coherent_core::ConfigError) -> Diagnostic {
        Diagnostic::from_config(&self.path, self.source, error)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        && s != "."
        && s != ".."
}

/// The value of `key` in a table value, if any.
pub fn get<'a>(
    table: &'a Spanned<DeValue<'static>>,
    key: &str,
) -> Option<&'a Spanned<DeValue<'static>>> {
    match table.get_ref() {
        DeValue::Table(t) => t.get(key),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Manifest, Diagnostics> {
        Manifest::parse(Path::new("m.toml"), text.to_string())
    }

    #[test]
    fn reports_every_unknown_key_and_missing_section_at_once() {
        let err = parse("nmae = \"x\"\nsed = 1\n").unwrap_err();
        let msgs: Vec<&str> = err.0.iter().map(|d| d.message.as_str()).collect();
        assert!(
            msgs.contains(&"unknown key `nmae`") && msgs.contains(&"unknown key `sed`"),
            "{msgs:?}"
        );
        assert!(msgs
            .iter()
            .any(|m| m.contains("missing section `[dataset]`")));
        assert!(msgs.iter().any(|m| m.contains("missing section `[model]`")));
        assert_eq!(err.0[0].line, Some(1));
        assert!(err.0[0].help.as_deref().unwrap().contains("dataset"));
    }

    #[test]
    fn syntax_errors_are_located() {
        let err = parse("[dataset]\nplugin = \n").unwrap_err();
        assert_eq!(err.0[0].line, Some(2), "{err}");
    }

    #[test]
    fn bytes_that_are_not_utf8_are_located() {
        let err = Manifest::parse_bytes(
            Path::new("m.toml"),
            b"seed = 1\nname = \"a\xffb\"\n".to_vec(),
        )
        .unwrap_err();
        assert_eq!(
            (err.0[0].line, err.0[0].column),
            (Some(2), Some(10)),
            "{err}"
        );
    }

    #[test]
    fn name_defaults_to_the_file_stem() {
        let m = parse("[dataset]\nplugin = \"mnist\"\n[model]\nplugin = \"mlp\"\n").unwrap();
        assert_eq!(m.name, "m");
        assert_eq!(m.runs.len(), 1);
        assert!(
            parse("name = \"../x\"\n[dataset]\nplugin = \"a\"\n[model]\nplugin = \"b\"").is_err()
        );
    }
}
