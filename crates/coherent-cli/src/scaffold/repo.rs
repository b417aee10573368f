//! A new plugin inside coherent's repository: the crate `plugins/<kind>s/<name>/` and the edits
//! that link it into the `coherent` program, as README's "Writing a plugin" lists them:
//!
//! * `Cargo.toml`: the folder in `[workspace] members`, the package in
//!   `[workspace.dependencies]`;
//! * `crates/coherent-plugins/Cargo.toml`: the dependency;
//! * `crates/coherent-plugins/src/lib.rs`: its `PLUGINS` in the `plugin_crate!(...)` list;
//! * `tests/registry.rs`: the name in the expected names of its kind.
//!
//! Each new entry goes after the last one of the same kind. Every edit is computed before
//! anything is written, so a file that does not look as expected (its anchor is missing, or it
//! already has the entry) leaves the repository untouched, with an error naming the file.

use super::{templates, write_all, FileChange, Kind, Names};
use crate::Failure;
use std::path::{Path, PathBuf};
use toml_edit::{DocumentMut, InlineTable, Item, Key, Table, Value};

/// The root manifest.
const ROOT_CARGO: &str = "Cargo.toml";
/// The crate that links every bundled plugin crate.
const PLUGINS_CARGO: &str = "crates/coherent-plugins/Cargo.toml";
/// Its list of plugin crates.
const PLUGINS_LIB: &str = "crates/coherent-plugins/src/lib.rs";
/// The test of the registered names.
const REGISTRY_TEST: &str = "tests/registry.rs";

/// rustfmt's settings in this repository (`rustfmt.toml`: `max_width = 100`; the widths of
/// the default small heuristics follow from it).
const MAX_WIDTH: usize = 100;
/// rustfmt's `fn_call_width` (also for tuples) and `array_width`: 60% of the maximum width.
const LIST_WIDTH: usize = 60;
/// rustfmt's `short_array_element_width_threshold`: arrays of such short elements are laid out
/// several to a line.
const SHORT_ELEMENT: usize = 10;

/// Whether `dir` is the root of coherent's repository: a `Cargo.toml` with `[workspace]` and
/// the crate `crates/coherent-plugins`.
pub(crate) fn check_root(dir: &Path) -> Result<(), String> {
    let cargo = std::fs::read_to_string(dir.join(ROOT_CARGO)).unwrap_or_default();
    let workspace = cargo
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("workspace"));
    if workspace && dir.join(PLUGINS_CARGO).is_file() {
        Ok(())
    } else {
        Err(format!(
            "error: {} is not the root of coherent's repository (a Cargo.toml with [workspace] next to crates/coherent-plugins/)\n  = help: run `coherent new plugin` from the repository's root to add a plugin crate to it, or give `--out DIR` for a crate of plugins of your own",
            dir.display()
        ))
    }
}

/// An error in `file`, as a message naming it.
fn in_file(file: &'static str) -> impl Fn(String) -> String {
    move |e| format!("error: {file}: {e}")
}

/// The folder of the plugin's crate, relative to the root (`plugins/metrics/grad-norm`).
pub(crate) fn folder(kind: Kind, names: &Names) -> String {
    format!("plugins/{}/{}", kind.plugin_kind().plural(), names.dashed)
}

/// Everything `coherent new plugin` writes in the repository at `root`: the two files of the
/// crate, then the four edited files.
pub(crate) fn plan(root: &Path, kind: Kind, names: &Names) -> Result<Vec<FileChange>, String> {
    let folder = folder(kind, names);
    if root.join(&folder).exists() {
        return Err(format!(
            "error: {folder} exists already: choose another name, or remove the folder (nothing was written)"
        ));
    }
    let read = |file: &str| {
        std::fs::read_to_string(root.join(file)).map_err(|e| format!("error: {file}: {e}"))
    };
    let (package, krate) = (names.package(), names.crate_ident());
    let root_text = read(ROOT_CARGO)?;
    let same_kind = kind_packages(&root_text, kind).map_err(in_file(ROOT_CARGO))?;
    let root_new = add_member(&root_text, &folder, kind)
        .and_then(|t| add_workspace_dependency(&t, &package, &folder, &same_kind))
        .map_err(in_file(ROOT_CARGO))?;
    let plugins_cargo = add_dependency(&read(PLUGINS_CARGO)?, &package, &same_kind)
        .map_err(in_file(PLUGINS_CARGO))?;
    let same_kind_crates: Vec<String> = same_kind.iter().map(|p| p.replace('-', "_")).collect();
    let plugins_lib = add_to_plugin_list(&read(PLUGINS_LIB)?, &krate, &same_kind_crates)
        .map_err(in_file(PLUGINS_LIB))?;
    let registry = add_expected_name(&read(REGISTRY_TEST)?, kind, &names.name)
        .map_err(in_file(REGISTRY_TEST))?;
    let new = |path: String, contents: String| FileChange {
        path: PathBuf::from(path),
        contents,
        edit: false,
    };
    let edit = |path: &str, contents: String| FileChange {
        path: PathBuf::from(path),
        contents,
        edit: true,
    };
    Ok(vec![
        new(
            format!("{folder}/Cargo.toml"),
            templates::plugin_cargo(kind, names),
        ),
        new(
            format!("{folder}/src/lib.rs"),
            templates::plugin_source(kind, names, true),
        ),
        edit(ROOT_CARGO, root_new),
        edit(PLUGINS_CARGO, plugins_cargo),
        edit(PLUGINS_LIB, plugins_lib),
        edit(REGISTRY_TEST, registry),
    ])
}

/// `coherent new plugin KIND NAME` in the repository at `root` (the working directory).
pub(crate) fn new_plugin(root: &Path, kind: Kind, names: &Names) -> Result<(), Failure> {
    check_root(root).map_err(Failure::Usage)?;
    let changes = plan(root, kind, names).map_err(Failure::Usage)?;
    write_all(root, &changes)?;
    for change in &changes {
        let what = match (change.edit, change.path.to_str()) {
            (false, _) => "wrote ",
            (true, Some(ROOT_CARGO)) => "edited (workspace members and dependencies) ",
            (true, Some(PLUGINS_CARGO)) => "edited (the dependency) ",
            (true, Some(PLUGINS_LIB)) => "edited (its PLUGINS in plugin_crate!) ",
            (true, _) => "edited (the expected names) ",
        };
        println!("{what}{}", change.path.display());
    }
    println!(
        "\nThe {} plugin `{}` is in {}: edit its src/lib.rs (what to change is at its top). Next:",
        kind.word(),
        names.name,
        folder(kind, names),
    );
    let test = format!("cargo test --release -p {}", names.package());
    let list = "cargo run --release -- plugins";
    let width = test.len().max(list.len());
    println!("  {test:<width$}  # its tests");
    println!("  {list:<width$}  # lists it with its parameters");
    Ok(())
}

/// The packages of `[workspace.dependencies]` whose path is a plugin folder of `kind`
/// (`plugins/<kind>s/...`), in order.
fn kind_packages(root_cargo: &str, kind: Kind) -> Result<Vec<String>, String> {
    let doc: DocumentMut = root_cargo.parse().map_err(|e| format!("{e}"))?;
    let prefix = format!("plugins/{}/", kind.plugin_kind().plural());
    let deps = workspace_table(&doc, "dependencies")?;
    Ok(deps
        .iter()
        .filter(|(_, item)| {
            let path = item.get("path").and_then(|p| p.as_str());
            path.is_some_and(|p| p.starts_with(&prefix))
        })
        .map(|(key, _)| key.to_string())
        .collect())
}

/// `[workspace.<name>]` of a parsed root manifest.
fn workspace_table<'a>(doc: &'a DocumentMut, name: &str) -> Result<&'a Table, String> {
    doc.get("workspace")
        .and_then(|w| w.get(name))
        .and_then(Item::as_table)
        .ok_or_else(|| format!("no [workspace.{name}] table"))
}

/// Adds `folder` to `[workspace] members`, after the last member of the same kind (else after
/// the last plugin, else at the end), formatted like the member before it.
pub(crate) fn add_member(text: &str, folder: &str, kind: Kind) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let members = doc
        .get_mut("workspace")
        .and_then(|w| w.get_mut("members"))
        .and_then(Item::as_array_mut)
        .ok_or("no `members` array in [workspace]")?;
    let paths: Vec<&str> = members.iter().filter_map(Value::as_str).collect();
    if paths.contains(&folder) {
        return Err(format!("`{folder}` is already in [workspace] members"));
    }
    let kind_prefix = format!("plugins/{}/", kind.plugin_kind().plural());
    let after = paths
        .iter()
        .rposition(|p| p.starts_with(&kind_prefix))
        .or_else(|| paths.iter().rposition(|p| p.starts_with("plugins/")))
        .or(paths.len().checked_sub(1));
    let at = after.map_or(0, |i| i + 1);
    let prefix = after
        .and_then(|i| members.get(i))
        .and_then(|v| v.decor().prefix())
        .and_then(|p| p.as_str())
        .unwrap_or("\n    ")
        .to_string();
    let mut value = Value::from(folder);
    value.decor_mut().set_prefix(prefix);
    members.insert_formatted(at, value);
    Ok(doc.to_string())
}

/// Inserts `key = item` into `table` after the key at `after` (else first), keeping the order,
/// comments and formatting of the other entries.
fn insert_after(table: &mut Table, after: Option<usize>, key: &str, item: Item) {
    let keys: Vec<String> = table.iter().map(|(k, _)| k.to_string()).collect();
    let entries: Vec<(Key, Item)> = keys
        .iter()
        .filter_map(|k| table.get_key_value(k))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    table.clear();
    let mut item = Some(item);
    if after.is_none() {
        table.insert(key, item.take().expect("once"));
    }
    for (i, (k, v)) in entries.into_iter().enumerate() {
        table.insert_formatted(&k, v);
        if Some(i) == after {
            table.insert(key, item.take().expect("once"));
        }
    }
}

/// The index of the last key of `table` in `same_kind`, else of the last `coherent-*` key,
/// else of the last key.
fn anchor(table: &Table, same_kind: &[String]) -> Option<usize> {
    let keys: Vec<&str> = table.iter().map(|(k, _)| k).collect();
    keys.iter()
        .rposition(|k| same_kind.iter().any(|s| s == k))
        .or_else(|| keys.iter().rposition(|k| k.starts_with("coherent-")))
        .or(keys.len().checked_sub(1))
}

/// Adds `package = { path = "folder" }` to `[workspace.dependencies]`, after the last package
/// of `same_kind`.
pub(crate) fn add_workspace_dependency(
    text: &str,
    package: &str,
    folder: &str,
    same_kind: &[String],
) -> Result<String, String> {
    let mut path = InlineTable::new();
    path.insert("path", Value::from(folder));
    let taken = format!("`{package}` is already in [workspace.dependencies]: choose another name");
    let entry = Item::Value(Value::InlineTable(path));
    let table = ["workspace", "dependencies"];
    insert_dependency(text, &table, (package, entry), same_kind, taken)
}

/// Adds `package.workspace = true` to `[dependencies]` (of `crates/coherent-plugins`), after
/// the last package of `same_kind`.
pub(crate) fn add_dependency(
    text: &str,
    package: &str,
    same_kind: &[String],
) -> Result<String, String> {
    let mut inherit = Table::new();
    inherit.set_dotted(true);
    inherit.insert("workspace", toml_edit::value(true));
    let taken = format!("`{package}` is already in [dependencies]");
    let entry = (package, Item::Table(inherit));
    insert_dependency(text, &["dependencies"], entry, same_kind, taken)
}

/// Inserts `package = entry` into the table at the dotted path `table` of the manifest `text`,
/// after the last package of `same_kind`; `taken` is the error when the package is there
/// already.
fn insert_dependency(
    text: &str,
    table: &[&str],
    (package, entry): (&str, Item),
    same_kind: &[String],
    taken: String,
) -> Result<String, String> {
    let mut doc: DocumentMut = text.parse().map_err(|e| format!("{e}"))?;
    let deps = table
        .iter()
        .try_fold(doc.as_item_mut(), |item, key| item.get_mut(*key))
        .and_then(Item::as_table_mut)
        .ok_or_else(|| format!("no [{}] table", table.join(".")))?;
    if deps.contains_key(package) {
        return Err(taken);
    }
    let at = anchor(deps, same_kind);
    insert_after(deps, at, package, entry);
    Ok(doc.to_string())
}

/// The byte range of the first `open` ... matching `close` at or after `from` in `text`, counting
/// nested `open`/`close` characters (not inside strings or comments: the lists edited here
/// hold paths and string literals without brackets).
fn delimited(text: &str, from: usize, open: char, close: char) -> Option<(usize, usize)> {
    let start = from + text[from..].find(open)?;
    let mut depth = 0;
    for (i, c) in text[start..].char_indices() {
        if c == open {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return Some((start, start + i + 1));
            }
        }
    }
    None
}

/// Adds `krate::PLUGINS` to the `coherent_core::plugin_crate!(...)` list of
/// `crates/coherent-plugins/src/lib.rs` (one crate per line), after the last crate of
/// `same_kind`.
pub(crate) fn add_to_plugin_list(
    text: &str,
    krate: &str,
    same_kind: &[String],
) -> Result<String, String> {
    const ANCHOR: &str = "coherent_core::plugin_crate!(";
    let missing = || {
        format!("no `{ANCHOR} ... );` list of plugin crates found; add `{krate}::PLUGINS,` to it by hand")
    };
    let at = text.find(ANCHOR).ok_or_else(missing)?;
    let (open, close) = delimited(text, at, '(', ')').ok_or_else(missing)?;
    let body = &text[open + 1..close - 1];
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let entry = format!("{krate}::PLUGINS");
    if lines
        .iter()
        .any(|l| l.trim().trim_end_matches(',') == entry)
    {
        return Err(format!("`{entry}` is already in the plugin_crate! list"));
    }
    let comment = |l: &str| l.trim_start().starts_with("//");
    let unended = |l: &&str| !comment(l) && !l.trim_end().ends_with(',');
    if !body.starts_with('\n') || lines.iter().any(unended) {
        return Err(format!(
            "the `{ANCHOR}` list is not one crate per line, each ending with a comma; add `{entry},` to it by hand"
        ));
    }
    let crate_of = |line: &str| {
        line.trim()
            .trim_end_matches(',')
            .trim_end_matches("::PLUGINS")
            .to_string()
    };
    let after = lines
        .iter()
        .rposition(|l| same_kind.contains(&crate_of(l)))
        .or(lines.len().checked_sub(1));
    let indent = after.map_or("    ".to_string(), |i| {
        let line = lines[i];
        line[..line.len() - line.trim_start().len()].to_string()
    });
    let mut new_body = String::from("\n");
    let mut added = false;
    if after.is_none() {
        new_body.push_str(&format!("{indent}{entry},\n"));
        added = true;
    }
    for (i, line) in lines.iter().enumerate() {
        new_body.push_str(line);
        new_body.push('\n');
        if Some(i) == after && !added {
            new_body.push_str(&format!("{indent}{entry},\n"));
        }
    }
    Ok(format!(
        "{}{new_body}{}",
        &text[..open + 1],
        &text[close - 1..]
    ))
}

/// Adds `name` to the names of `kind` in `EXPECTED` of `tests/registry.rs`, in sorted order,
/// laid out as rustfmt lays it out.
pub(crate) fn add_expected_name(text: &str, kind: Kind, name: &str) -> Result<String, String> {
    let kind_path = format!("PluginKind::{}", kind.title());
    let missing = |what: &str| {
        format!(
            "no {what} found for `({kind_path}, &[...])` in the EXPECTED list; add \"{name}\" to it by hand"
        )
    };
    let start = text
        .find("EXPECTED")
        .ok_or_else(|| missing("EXPECTED list"))?;
    let at = start
        + text[start..]
            .find(&format!("{kind_path},"))
            .ok_or_else(|| missing("entry"))?;
    // the tuple: from its `(` (the last one before the kind) to its `)` and the comma after it
    let open = text[..at].rfind('(').ok_or_else(|| missing("tuple"))?;
    if !text[open + 1..at].trim().is_empty() {
        return Err(missing("tuple"));
    }
    let (array_open, array_close) =
        delimited(text, at, '[', ']').ok_or_else(|| missing("names"))?;
    let (_, close) = delimited(text, open, '(', ')').ok_or_else(|| missing("tuple"))?;
    if array_close > close || !text[close..].starts_with(',') {
        return Err(missing("tuple"));
    }
    let mut names: Vec<String> = Vec::new();
    for item in text[array_open + 1..array_close - 1].split(',') {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        let unquoted = item.strip_prefix('"').and_then(|i| i.strip_suffix('"'));
        match unquoted {
            Some(n) if !n.contains('"') => names.push(n.to_string()),
            _ => return Err(format!("{kind_path}: `{item}` is not a name in quotes")),
        }
    }
    if names.iter().any(|n| n == name) {
        return Err(format!("\"{name}\" is already expected for {kind_path}"));
    }
    let at = names.partition_point(|n| n.as_str() < name);
    names.insert(at, name.to_string());
    let line_start = text[..open].rfind('\n').map_or(0, |i| i + 1);
    let indent = &text[line_start..open];
    if !indent.trim().is_empty() {
        return Err(missing("tuple on a line of its own"));
    }
    let entry = expected_entry(indent, &kind_path, &names);
    Ok(format!(
        "{}{entry}{}",
        &text[..line_start],
        &text[close + 1..]
    ))
}

/// `(kind, &["a", "b", ...]),` at `indent`, as rustfmt formats it with this repository's
/// settings: on one line when the tuple is short enough, else one element per line, the array
/// on one line when short enough, else one name per line, or several when all are short.
fn expected_entry(indent: &str, kind_path: &str, names: &[String]) -> String {
    let quoted: Vec<String> = names.iter().map(|n| format!("\"{n}\"")).collect();
    let items = quoted.join(", ");
    let tuple = format!("{kind_path}, &[{items}]");
    let one_line = format!("{indent}({tuple}),");
    if tuple.len() <= LIST_WIDTH && one_line.len() <= MAX_WIDTH {
        return one_line;
    }
    let inner = format!("{indent}    ");
    let array_line = format!("{inner}&[{items}],");
    let array = if items.len() <= LIST_WIDTH && array_line.len() <= MAX_WIDTH {
        array_line
    } else if quoted.iter().all(|q| q.len() <= SHORT_ELEMENT) {
        // several short names to a line, as many as fit
        let element = format!("{inner}    ");
        let mut lines: Vec<String> = Vec::new();
        let mut line = element.clone();
        for q in &quoted {
            let piece = format!("{q},");
            let extra = if line.len() == element.len() {
                piece.len()
            } else {
                piece.len() + 1
            };
            if line.len() > element.len() && line.len() + extra > MAX_WIDTH {
                lines.push(std::mem::replace(&mut line, element.clone()));
            }
            if line.len() > element.len() {
                line.push(' ');
            }
            line.push_str(&piece);
        }
        lines.push(line);
        format!("{inner}&[\n{}\n{inner}],", lines.join("\n"))
    } else {
        let element = format!("{inner}    ");
        let lines: Vec<String> = quoted.iter().map(|q| format!("{element}{q},")).collect();
        format!("{inner}&[\n{}\n{inner}],", lines.join("\n"))
    };
    format!("{indent}(\n{inner}{kind_path},\n{array}\n{indent}),")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The repository's root, two levels above this crate.
    fn repo() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
    }

    /// A temporary copy of the four files the command edits, from the repository.
    fn copy_of_repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for file in [ROOT_CARGO, PLUGINS_CARGO, PLUGINS_LIB, REGISTRY_TEST] {
            let to = dir.path().join(file);
            std::fs::create_dir_all(to.parent().unwrap()).unwrap();
            std::fs::copy(repo().join(file), to).unwrap();
        }
        dir
    }

    /// The lines of `new` that are not in `old`, checking that every line of `old` is still
    /// there, in order.
    fn added_lines(old: &str, new: &str) -> Vec<String> {
        let mut old_lines = old.lines().peekable();
        let mut added = Vec::new();
        for line in new.lines() {
            if old_lines.peek() == Some(&line) {
                old_lines.next();
            } else {
                added.push(line.to_string());
            }
        }
        assert_eq!(old_lines.next(), None, "a line of the original is missing");
        added
    }

    #[test]
    fn the_repository_root_is_recognised() {
        assert_eq!(check_root(&repo()), Ok(()));
        let copy = copy_of_repo();
        assert_eq!(check_root(copy.path()), Ok(()));
        let e = check_root(&copy.path().join("crates")).unwrap_err();
        assert!(
            e.contains("is not the root of coherent's repository"),
            "{e}"
        );
        assert!(e.contains("--out DIR"), "{e}");
        // a Cargo.toml without [workspace] is not the root
        std::fs::write(copy.path().join(ROOT_CARGO), "[package]\nname = \"x\"\n").unwrap();
        assert!(check_root(copy.path()).is_err());
    }

    #[test]
    fn the_edits_add_exactly_the_expected_lines() {
        let copy = copy_of_repo();
        let names = Names::new("grad_norm");
        let changes = plan(copy.path(), Kind::Metric, &names).unwrap();
        let paths: Vec<&str> = changes.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "plugins/metrics/grad-norm/Cargo.toml",
                "plugins/metrics/grad-norm/src/lib.rs",
                ROOT_CARGO,
                PLUGINS_CARGO,
                PLUGINS_LIB,
                REGISTRY_TEST
            ]
        );
        let old = |file: &str| std::fs::read_to_string(copy.path().join(file)).unwrap();
        let added = |k: usize| added_lines(&old(paths[k]), &changes[k].contents);
        assert_eq!(
            added(2),
            [
                "    \"plugins/metrics/grad-norm\",",
                "coherent-grad-norm = { path = \"plugins/metrics/grad-norm\" }"
            ]
        );
        assert_eq!(added(3), ["coherent-grad-norm.workspace = true"]);
        assert_eq!(added(4), ["    coherent_grad_norm::PLUGINS,"]);
        assert_eq!(added(5), ["            \"grad_norm\","]);
        // each after the last of its kind
        let after = |k: usize, line: &str| {
            let text = &changes[k].contents;
            let at = text.find(line).unwrap();
            text[..at].lines().last().unwrap().to_string()
        };
        assert_eq!(
            after(2, "    \"plugins/metrics/grad-norm\""),
            "    \"plugins/metrics/cosine-matrix\","
        );
        assert!(after(2, "coherent-grad-norm =").starts_with("coherent-cosine-matrix ="));
        assert_eq!(
            after(3, "coherent-grad-norm."),
            "coherent-cosine-matrix.workspace = true"
        );
        assert_eq!(
            after(4, "    coherent_grad_norm::"),
            "    coherent_cosine_matrix::PLUGINS,"
        );
        assert_eq!(
            after(5, "            \"grad_norm\""),
            "            \"cosine_matrix\","
        );
    }

    #[test]
    fn the_edited_manifests_parse_and_list_the_new_crate() {
        let copy = copy_of_repo();
        let names = Names::new("blobs");
        let changes = plan(copy.path(), Kind::Dataset, &names).unwrap();
        let root: toml::Table = changes[2].contents.parse().unwrap();
        let workspace = root["workspace"].as_table().unwrap();
        let members = workspace["members"].as_array().unwrap();
        assert!(members
            .iter()
            .any(|m| m.as_str() == Some("plugins/datasets/blobs")));
        let dep = &workspace["dependencies"]["coherent-blobs"];
        assert_eq!(dep["path"].as_str(), Some("plugins/datasets/blobs"));
        let plugins: toml::Table = changes[3].contents.parse().unwrap();
        let dep = &plugins["dependencies"]["coherent-blobs"];
        assert_eq!(dep["workspace"].as_bool(), Some(true));
        // the new crate's manifest is a workspace member's
        let own: toml::Table = changes[0].contents.parse().unwrap();
        assert_eq!(own["package"]["name"].as_str(), Some("coherent-blobs"));
        assert_eq!(own["lints"]["workspace"].as_bool(), Some(true));
        assert_eq!(own["package"]["edition"]["workspace"].as_bool(), Some(true));
        // the datasets' names fit on one line, with the new one in order
        assert!(
            changes[5].contents.contains(
                "        &[\"blobs\", \"cifar10\", \"fashion_mnist\", \"mnist\", \"toy_linear\"],\n"
            ),
            "{}",
            changes[5].contents
        );
    }

    #[test]
    fn written_plugins_are_refused_a_second_time() {
        let copy = copy_of_repo();
        let names = Names::new("my_net");
        let changes = plan(copy.path(), Kind::Network, &names).unwrap();
        write_all(copy.path(), &changes).unwrap();
        assert!(copy
            .path()
            .join("plugins/networks/my-net/src/lib.rs")
            .is_file());
        let e = plan(copy.path(), Kind::Network, &names).unwrap_err();
        assert!(e.contains("plugins/networks/my-net exists already"), "{e}");
        // the folder alone removed: the edits find their entries and say so, naming the file
        std::fs::remove_dir_all(copy.path().join("plugins")).unwrap();
        let e = plan(copy.path(), Kind::Network, &names).unwrap_err();
        assert!(
            e.starts_with("error: Cargo.toml: `plugins/networks/my-net` is already"),
            "{e}"
        );
    }

    #[test]
    fn the_plugin_list_keeps_comments_and_refuses_other_layouts() {
        let text = "coherent_core::plugin_crate!(\n    // networks\n    coherent_mlp::PLUGINS,\n    coherent_mean::PLUGINS,\n);\n";
        let out = add_to_plugin_list(text, "coherent_x", &["coherent_mlp".into()]).unwrap();
        assert_eq!(
            out,
            "coherent_core::plugin_crate!(\n    // networks\n    coherent_mlp::PLUGINS,\n    coherent_x::PLUGINS,\n    coherent_mean::PLUGINS,\n);\n"
        );
        let e = add_to_plugin_list(&out, "coherent_x", &[]).unwrap_err();
        assert!(e.contains("already"), "{e}");
        let one_line = "coherent_core::plugin_crate!(a::PLUGINS);\n";
        let e = add_to_plugin_list(one_line, "coherent_x", &[]).unwrap_err();
        assert!(e.contains("one crate per line"), "{e}");
    }

    #[test]
    fn missing_anchors_are_named() {
        let e = add_to_plugin_list("pub fn f() {}\n", "coherent_x", &[]).unwrap_err();
        assert!(
            e.contains("coherent_core::plugin_crate!(") && e.contains("by hand"),
            "{e}"
        );
        let e = add_expected_name("const OTHER: u8 = 0;\n", Kind::Metric, "x").unwrap_err();
        assert!(e.contains("EXPECTED") && e.contains("\"x\""), "{e}");
        let e = add_member(
            "[package]\nname = \"x\"\n",
            "plugins/metrics/x",
            Kind::Metric,
        );
        assert!(e.unwrap_err().contains("members"));
        let e = add_dependency("[package]\nname = \"x\"\n", "coherent-x", &[]).unwrap_err();
        assert!(e.contains("[dependencies]"), "{e}");
        let copy = copy_of_repo();
        std::fs::write(copy.path().join(PLUGINS_LIB), "//! nothing\n").unwrap();
        let e = plan(copy.path(), Kind::Metric, &Names::new("x")).unwrap_err();
        assert!(
            e.starts_with(
                "error: crates/coherent-plugins/src/lib.rs: no `coherent_core::plugin_crate!("
            ),
            "{e}"
        );
    }

    /// The expected layouts are rustfmt's (1.95, max_width = 100).
    #[test]
    fn expected_names_are_laid_out_as_rustfmt_does() {
        let entry = |kind: &str, names: &[&str]| {
            let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
            expected_entry("    ", kind, &names)
        };
        let observer = "PluginKind::Observer";
        // a tuple of at most 60 characters: one line
        assert_eq!(
            entry(observer, &["early_stopping", "learning_times"]),
            "    (PluginKind::Observer, &[\"early_stopping\", \"learning_times\"]),"
        );
        // the tuple too long for one line, the array not
        assert_eq!(
            entry("PluginKind::Network", &["alexnet", "lenet", "mlp2", "resnet", "vgg"]),
            "    (\n        PluginKind::Network,\n        &[\"alexnet\", \"lenet\", \"mlp2\", \"resnet\", \"vgg\"],\n    ),"
        );
        // the array too long: one name per line
        let long = [
            "early_stopping",
            "learning_times",
            "loss_fractions",
            "forgetting",
        ];
        assert_eq!(
            entry(observer, &long),
            "    (\n        PluginKind::Observer,\n        &[\n            \"early_stopping\",\n            \"learning_times\",\n            \"loss_fractions\",\n            \"forgetting\",\n        ],\n    ),"
        );
        // short names (at most 10 characters in quotes): as many to a line as fit
        let short = [
            "alexnet", "lenet", "mlp", "resnet", "vgg", "alexnet2", "lenet2", "mlp2",
        ];
        assert_eq!(
            entry("PluginKind::Network", &short),
            "    (\n        PluginKind::Network,\n        &[\n            \"alexnet\", \"lenet\", \"mlp\", \"resnet\", \"vgg\", \"alexnet2\", \"lenet2\", \"mlp2\",\n        ],\n    ),"
        );
        let many: Vec<String> = (0..24).map(|i| format!("n{i:05}")).collect();
        let many: Vec<&str> = many.iter().map(String::as_str).collect();
        let text = entry(observer, &many);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8, "{text}");
        assert_eq!(
            lines[3],
            "            \"n00000\", \"n00001\", \"n00002\", \"n00003\", \"n00004\", \"n00005\", \"n00006\", \"n00007\","
        );
        assert!(lines[5].ends_with("\"n00023\","), "{text}");
    }
}
