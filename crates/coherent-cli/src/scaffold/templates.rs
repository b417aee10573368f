//! The templates of `coherent new plugin` (the `templates/` folder of this crate) and their
//! placeholders: `{{name}}` the plugin's manifest name, `{{Name}}` its CamelCase form (the
//! prefix of the types it defines), `{{PLUGIN_CRATE}}` the line declaring the crate's plugins
//! (only in a crate of one plugin), and the fields of the project files.

use super::{Kind, Names};

/// A plugin's source text: `src/lib.rs` of a plugin crate, or a module of a crate of plugins.
fn plugin_template(kind: Kind) -> &'static str {
    match kind {
        Kind::Network => include_str!("../../templates/plugins/network.rs.txt"),
        Kind::Dataset => include_str!("../../templates/plugins/dataset.rs.txt"),
        Kind::Metric => include_str!("../../templates/plugins/metric.rs.txt"),
        Kind::Aggregator => include_str!("../../templates/plugins/aggregator.rs.txt"),
        Kind::Observer => include_str!("../../templates/plugins/observer.rs.txt"),
    }
}

const PLUGIN_CARGO: &str = include_str!("../../templates/plugins/Cargo.toml.txt");
const PROJECT_CARGO: &str = include_str!("../../templates/project/Cargo.toml.txt");
const PROJECT_MAIN: &str = include_str!("../../templates/project/main.rs.txt");
const PROJECT_LIB: &str = include_str!("../../templates/project/lib.rs.txt");
const PROJECT_GITIGNORE: &str = include_str!("../../templates/project/gitignore.txt");
const PROJECT_MANIFEST: &str = include_str!("../../templates/project/manifest.toml.txt");

/// The line of `src/lib.rs` that marks a crate of plugins made by `coherent new plugin --out`
/// (the start of the line, as the project template writes it).
pub(crate) const PROJECT_MARKER: &str = "// coherent new plugin: project";

const PLUGIN_CRATE_LINE: &str = "{{PLUGIN_CRATE}}\n";

/// `text` with every `{{key}}` of `values` replaced.
///
/// # Panics
/// If a placeholder is left (a template and its values disagree: a bug of this crate).
fn fill(text: &str, values: &[(&str, &str)]) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    if let Some(at) = out.find("{{") {
        let end = out[at..].find("}}").map_or(out.len(), |e| at + e + 2);
        panic!("template placeholder {} has no value", &out[at..end]);
    }
    out
}

/// The plugin's source: with `own_crate`, the `src/lib.rs` of a crate of its own (declaring
/// the crate's plugins); else a module of a crate of plugins. Formatted by rustfmt when it can
/// be run (the templates are formatted for names of 8 characters, the length of `{{name}}`;
/// other names change the length of some lines).
pub(crate) fn plugin_source(kind: Kind, names: &Names, own_crate: bool) -> String {
    let text = unformatted_source(kind, names, own_crate);
    rustfmt(&text).unwrap_or(text)
}

/// [`plugin_source`] as the template has it, without rustfmt.
fn unformatted_source(kind: Kind, names: &Names, own_crate: bool) -> String {
    let declare = if own_crate {
        "coherent_core::plugin_crate!();\n\n"
    } else {
        ""
    };
    let text = plugin_template(kind).replace(PLUGIN_CRATE_LINE, declare);
    fill(&text, &[("name", &names.name), ("Name", &names.camel)])
}

/// `source` formatted by rustfmt (edition 2021, the settings of the working directory; this
/// repository's are the defaults but for the edition), or `None` when rustfmt cannot be run or
/// fails.
pub(crate) fn rustfmt(source: &str) -> Option<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let mut child = Command::new("rustfmt")
        .args(["--edition", "2021", "--emit", "stdout", "--quiet"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .ok()?;
    child.stdin.take()?.write_all(source.as_bytes()).ok()?;
    let out = child.wait_with_output().ok()?;
    let text = String::from_utf8(out.stdout).ok()?;
    (out.status.success() && !text.trim().is_empty()).then_some(text)
}

/// The type names the template of `kind` uses besides the ones it defines (its imports, the
/// prelude's types, derives), for [`super::check_name`]: a plugin whose types would be named
/// like one of them would not compile.
pub(crate) fn used_type_names(kind: Kind) -> Vec<String> {
    let code = code_only(plugin_template(kind));
    let mut names: Vec<String> = Vec::new();
    let mut rest = code.as_str();
    while let Some(start) = rest.find(|c: char| c.is_ascii_uppercase()) {
        let before = &rest[..start];
        let word_start = !before.ends_with(|c: char| c.is_ascii_alphanumeric() || c == '_');
        let len = rest[start..]
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len() - start);
        let word = &rest[start..start + len];
        // `{{Name}}` and `{{Name}}Config` are the template's own; `{{PLUGIN_CRATE}}` is no type
        let placeholder = before.ends_with("{{") || before.ends_with("}}");
        if word_start && !placeholder && !names.iter().any(|n| n == word) {
            names.push(word.to_string());
        }
        rest = &rest[start + len..];
    }
    names
}

/// `text` without its comments and the contents of its string literals.
fn code_only(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut in_comment, mut escaped) = (false, false, false);
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if in_comment {
            if c == '\n' {
                in_comment = false;
                out.push(c);
            }
        } else if in_string {
            match (escaped, c) {
                (false, '\\') => escaped = true,
                (false, '"') => {
                    in_string = false;
                    out.push(c);
                }
                _ => escaped = false,
            }
        } else if c == '/' && chars.peek() == Some(&'/') {
            in_comment = true;
        } else {
            in_string = c == '"';
            out.push(c);
        }
    }
    out
}

/// The `Cargo.toml` of a plugin crate in the repository.
pub(crate) fn plugin_cargo(kind: Kind, names: &Names) -> String {
    let mut dependencies = String::from("coherent-core.workspace = true\n");
    if kind == Kind::Network {
        dependencies.push_str("coherent-nn.workspace = true\n");
    }
    dependencies.push_str("serde.workspace = true\n");
    fill(
        PLUGIN_CARGO,
        &[
            ("dashed", &names.dashed),
            ("Kind", kind.title()),
            ("name", &names.name),
            ("description", kind.description()),
            ("dependencies", &dependencies),
        ],
    )
}

/// The files of a new crate of plugins, `(path in the project, contents)`: `package` is its
/// name, `framework` the directory of coherent's source tree (as written in `Cargo.toml`).
pub(crate) fn project_files(package: &str, framework: &str) -> Vec<(&'static str, String)> {
    let krate = package.replace('-', "_");
    let values = [
        ("package", package),
        ("crate", krate.as_str()),
        ("framework", framework),
    ];
    vec![
        ("Cargo.toml", fill(PROJECT_CARGO, &values)),
        (".gitignore", PROJECT_GITIGNORE.to_string()),
        ("src/main.rs", {
            let main = fill(PROJECT_MAIN, &values);
            rustfmt(&main).unwrap_or(main)
        }),
        ("src/lib.rs", fill(PROJECT_LIB, &values)),
    ]
}

/// A manifest that trains with the new plugin, for a crate of plugins whose program is
/// `package`: the bundled MNIST sample (the first 1,000 / 500 digits), an MLP, two epochs,
/// m-coherence every 10 steps; a new dataset replaces MNIST, a new network the MLP, and a new
/// metric, aggregator or observer is added.
pub(crate) fn manifest(kind: Kind, names: &Names, package: &str) -> String {
    let name = names.name.as_str();
    let dataset = match kind {
        Kind::Dataset => format!("[dataset]\nplugin = \"{name}\"   # with its default parameters\n"),
        _ => "[dataset]\nplugin = \"mnist\"   # the bundled sample: its first 1,000 training and 500 test digits\ntrain_limit = 1000\ntest_limit = 500\n".to_string(),
    };
    let model = match kind {
        Kind::Network => format!("[model]\nplugin = \"{name}\"   # with its default parameters\n"),
        _ => "[model]\nplugin = \"mlp\"\nhidden = [64]\n".to_string(),
    };
    let extra = match kind {
        Kind::Network | Kind::Dataset => String::new(),
        Kind::Metric => {
            format!("\n[[metrics]]\nplugin = \"{name}\"\nevery_steps = 10\nsample = 200\n")
        }
        Kind::Aggregator => format!("\n[aggregator]\nplugin = \"{name}\"\n"),
        Kind::Observer => format!("\n[[observers]]\nplugin = \"{name}\"\n"),
    };
    let text = fill(
        PROJECT_MANIFEST,
        &[
            ("kind", kind.word()),
            ("name", name),
            ("package", package),
            ("dataset", &dataset),
            ("model", &model),
            ("extra", &extra),
        ],
    );
    // the last section ends the file with one newline
    format!("{}\n", text.trim_end())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_placeholder_is_filled() {
        let names = Names::new("grad_norm2");
        for kind in Kind::ALL {
            for own_crate in [true, false] {
                let text = plugin_source(kind, &names, own_crate);
                assert!(!text.contains("{{"), "{kind:?}");
                assert!(text.contains("name: \"grad_norm2\""), "{kind:?}");
                assert!(text.contains("pub struct GradNorm2Config"), "{kind:?}");
                assert!(text.contains("params: "), "{kind:?}");
                assert_eq!(
                    text.contains("coherent_core::plugin_crate!();\n\n"),
                    own_crate,
                    "{kind:?}"
                );
                assert!(!text.contains("\n\n\n"), "{kind:?}: two blank lines");
            }
            let cargo = plugin_cargo(kind, &names);
            assert!(cargo.starts_with("[package]\nname = \"coherent-grad-norm2\"\n"));
            assert_eq!(cargo.contains("coherent-nn"), kind == Kind::Network);
            let manifest = manifest(kind, &names, "lab");
            let table: toml::Table = manifest.parse().expect("the manifest is TOML");
            assert_eq!(table["name"].as_str(), Some("grad_norm2"));
            assert!(manifest.contains("plugin = \"grad_norm2\""), "{manifest}");
            assert!(manifest.ends_with("\"\n") || manifest.ends_with("0\n"));
        }
        for (path, text) in project_files("my-lab", "/src/coherent") {
            assert!(!text.contains("{{"), "{path}");
        }
    }

    /// The templates as stored are formatted by rustfmt (for names of the placeholders'
    /// length), so that a plugin is formatted even where rustfmt cannot be run.
    #[test]
    fn the_templates_are_formatted() {
        let names = Names::new("abcdefgh");
        for kind in Kind::ALL {
            for own_crate in [true, false] {
                let text = unformatted_source(kind, &names, own_crate);
                let formatted = rustfmt(&text)
                    .expect("rustfmt runs (it is part of the toolchain this project needs)");
                if formatted != text {
                    let line = text
                        .lines()
                        .zip(formatted.lines())
                        .position(|(a, b)| a != b);
                    panic!(
                        "templates/plugins/{}.rs.txt is not formatted by rustfmt: line {:?} differs (own crate: {own_crate})",
                        kind.word(),
                        line.map(|l| l + 1)
                    );
                }
            }
        }
    }

    #[test]
    fn type_names_used_by_the_templates_are_found() {
        let used = used_type_names(Kind::Dataset);
        for name in [
            "Dataset",
            "Split",
            "Rng",
            "Result",
            "Vec",
            "Deserialize",
            "Box",
        ] {
            assert!(used.iter().any(|u| u == name), "{name} in {used:?}");
        }
        assert!(!used
            .iter()
            .any(|u| u.starts_with("Name") || u == "PLUGIN_CRATE"));
        let used = used_type_names(Kind::Metric);
        assert!(used.iter().any(|u| u == "SumsMetric"), "{used:?}");
    }
}
