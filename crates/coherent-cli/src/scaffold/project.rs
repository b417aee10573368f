//! A new plugin in a crate of plugins of one's own, outside coherent's repository
//! (`coherent new plugin KIND NAME --out DIR`).
//!
//! A new `DIR` becomes a crate that is its own workspace: path dependencies on coherent's
//! crates in its source tree, coherent's profiles (so that a shared `CARGO_TARGET_DIR` reuses
//! coherent's compiled crates), `src/lib.rs` declaring the crate's plugins and marked as made
//! by this command, and `src/main.rs`, the whole command line with the crate's plugins
//! (`coherent_cli::App`). Each plugin is a module `src/NAME.rs` with a `pub mod NAME;` line
//! in `src/lib.rs`, and a manifest `NAME.toml` that trains with it.

use super::templates::{self, PROJECT_MARKER};
use super::{write_all, FileChange, Kind, Names};
use crate::Failure;
use std::path::{Path, PathBuf};

/// The source tree this program was built from (two levels above this crate).
const BUILT_FROM: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Checks that `dir` is a coherent source tree: a workspace with the crates a crate of plugins
/// depends on. Returns it canonicalized.
pub(crate) fn check_framework(dir: &Path) -> Result<PathBuf, String> {
    let not = |why: String| {
        format!(
            "error: {} is not coherent's source tree: {why}\n  = help: give the directory of coherent's repository with --framework DIR",
            dir.display()
        )
    };
    let canonical = dir
        .canonicalize()
        .map_err(|e| not(format!("cannot read it ({e})")))?;
    let cargo = std::fs::read_to_string(canonical.join("Cargo.toml"))
        .map_err(|_| not("it has no Cargo.toml".into()))?;
    let workspace = cargo
        .parse::<toml::Table>()
        .is_ok_and(|t| t.contains_key("workspace"));
    if !workspace {
        return Err(not("its Cargo.toml has no [workspace]".into()));
    }
    for krate in ["coherent-core", "coherent-nn", "coherent-cli"] {
        if !canonical
            .join("crates")
            .join(krate)
            .join("Cargo.toml")
            .is_file()
        {
            return Err(not(format!("it has no crates/{krate}/Cargo.toml")));
        }
    }
    Ok(canonical)
}

/// The package name of a new crate of plugins in `dir`: the directory's name, which must be a
/// package name (`[A-Za-z][A-Za-z0-9_-]*`) other than the crates it depends on.
pub(crate) fn package_name(dir: &Path) -> Result<String, String> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| *n != "..")
        .ok_or_else(|| {
            format!(
                "error: {} has no name to give the new crate; give --out a directory with a name",
                dir.display()
            )
        })?;
    let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    let taken = ["coherent-core", "coherent-nn", "coherent-cli", "serde"];
    if !valid || taken.contains(&name.replace('_', "-").as_str()) {
        return Err(format!(
            "error: the crate made in {} would be named `{name}`, which cannot be: the directory's name must be a package name, [A-Za-z][A-Za-z0-9_-]* (e.g. `my-lab`), other than the crates it depends on",
            dir.display()
        ));
    }
    Ok(name.to_string())
}

/// What is in `dir`: nothing yet (absent or empty), or a crate of plugins made by this
/// command, with its package name.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Existing {
    /// No directory, or an empty one.
    Nothing,
    /// A crate of plugins of this package.
    Project(String),
}

/// Reads what is in `dir`, refusing a directory that is neither empty nor a crate of plugins
/// made by `coherent new plugin --out`.
pub(crate) fn existing(dir: &Path) -> Result<Existing, String> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Existing::Nothing),
        Err(e) => return Err(format!("error: {}: {e}", dir.display())),
    };
    if entries.count() == 0 {
        return Ok(Existing::Nothing);
    }
    let lib = dir.join("src/lib.rs");
    let marked = std::fs::read_to_string(&lib)
        .is_ok_and(|text| text.lines().any(|l| l.starts_with(PROJECT_MARKER)));
    if !marked {
        return Err(format!(
            "error: {} exists and is not a crate of plugins made by `coherent new plugin --out` ({} has no line starting `{PROJECT_MARKER}`)\n  = help: give --out a new directory, or add the plugin to a crate of your own by hand",
            dir.display(),
            lib.display()
        ));
    }
    let cargo_path = dir.join("Cargo.toml");
    let cargo = std::fs::read_to_string(&cargo_path)
        .map_err(|e| format!("error: {}: {e}", cargo_path.display()))?;
    let table: toml::Table = cargo
        .parse()
        .map_err(|e| format!("error: {}: {e}", cargo_path.display()))?;
    let package = table
        .get("package")
        .and_then(|p| p.get("name"))
        .and_then(|n| n.as_str())
        .ok_or_else(|| format!("error: {}: no [package] name", cargo_path.display()))?;
    Ok(Existing::Project(package.to_string()))
}

/// `src/lib.rs` with `pub mod name;` among its `pub mod` lines, in order (as rustfmt orders
/// them), or after the last line when it has none.
pub(crate) fn add_module(lib: &str, name: &str) -> Result<String, String> {
    let line = format!("pub mod {name};");
    let lines: Vec<&str> = lib.lines().collect();
    if lines.iter().any(|l| l.trim() == line) {
        return Err(format!("it declares `{line}` already"));
    }
    let is_mod = |l: &str| l.starts_with("pub mod ") && l.ends_with(';');
    let mut out: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
    match lines.iter().position(|l| is_mod(l)) {
        Some(first) => {
            let block = lines[first..].iter().take_while(|l| is_mod(l)).count();
            let at = lines[first..first + block]
                .iter()
                .position(|l| *l > line.as_str())
                .map_or(first + block, |k| first + k);
            out.insert(at, line);
        }
        None => {
            if out.last().is_some_and(|l| !l.trim().is_empty()) {
                out.push(String::new());
            }
            out.push(line);
        }
    }
    Ok(out.join("\n") + "\n")
}

/// Everything `coherent new plugin ... --out dir` writes, relative to `dir`, and the crate's
/// package name. `framework` is coherent's source tree, for a new crate.
pub(crate) fn plan(
    dir: &Path,
    framework: &Path,
    kind: Kind,
    names: &Names,
) -> Result<(Vec<FileChange>, String), String> {
    let name = names.name.as_str();
    if name == "lib" || name == "main" {
        return Err(format!(
            "error: `{name}` cannot be a plugin of a crate of plugins: src/{name}.rs is the crate's own; choose another name"
        ));
    }
    let mut changes = Vec::new();
    let (package, lib) = match existing(dir)? {
        Existing::Nothing => {
            // an existing empty directory named `.` or `..` is named by its full path
            let package = package_name(&dir.canonicalize().unwrap_or(dir.to_path_buf()))?;
            let framework = check_framework(framework)?;
            let mut lib = String::new();
            // inside a TOML string
            let quoted = framework
                .to_string_lossy()
                .replace('\\', "\\\\")
                .replace('"', "\\\"");
            let mut files = templates::project_files(&package, &quoted);
            // coherent's lock file: the same version of every dependency as coherent's build
            // (which a shared target directory then reuses); cargo adds this crate to it
            if let Ok(lock) = std::fs::read_to_string(framework.join("Cargo.lock")) {
                files.push(("Cargo.lock", lock));
            }
            for (path, contents) in files {
                if path == "src/lib.rs" {
                    lib = contents;
                } else {
                    changes.push(FileChange {
                        path: PathBuf::from(path),
                        contents,
                        edit: false,
                    });
                }
            }
            (package, lib)
        }
        Existing::Project(package) => {
            let path = dir.join("src/lib.rs");
            let lib = std::fs::read_to_string(&path)
                .map_err(|e| format!("error: {}: {e}", path.display()))?;
            (package, lib)
        }
    };
    let lib = add_module(&lib, name).map_err(|e| format!("error: src/lib.rs: {e}"))?;
    for (path, contents) in [
        (
            format!("src/{name}.rs"),
            templates::plugin_source(kind, names, false),
        ),
        (
            format!("{name}.toml"),
            templates::manifest(kind, names, &package),
        ),
    ] {
        if dir.join(&path).exists() {
            return Err(format!(
                "error: {} exists already: choose another name (nothing was written)",
                dir.join(&path).display()
            ));
        }
        changes.push(FileChange {
            path: PathBuf::from(path),
            contents,
            edit: false,
        });
    }
    let lib_exists = dir.join("src/lib.rs").exists();
    changes.push(FileChange {
        path: PathBuf::from("src/lib.rs"),
        contents: lib,
        edit: lib_exists,
    });
    Ok((changes, package))
}

/// `coherent new plugin KIND NAME --out dir [--framework framework]`.
pub(crate) fn new_plugin(
    dir: &Path,
    framework: Option<&Path>,
    kind: Kind,
    names: &Names,
) -> Result<(), Failure> {
    let framework = framework.unwrap_or(Path::new(BUILT_FROM));
    let (changes, package) = plan(dir, framework, kind, names).map_err(Failure::Usage)?;
    write_all(dir, &changes)?;
    for change in &changes {
        let what = if change.edit { "edited" } else { "wrote " };
        println!("{what} {}", dir.join(&change.path).display());
    }
    let name = &names.name;
    println!(
        "\nThe {} plugin `{name}` is in {}: edit it (what to change is at its top). Next, in {}:",
        kind.word(),
        dir.join("src").join(format!("{name}.rs")).display(),
        dir.display()
    );
    let steps = [
        ("cargo test --release".to_string(), "the plugins' tests"),
        ("cargo build --release".to_string(), ""),
        (
            format!("target/release/{package} plugins"),
            "lists every plugin with its parameters",
        ),
        (
            format!("target/release/{package} run {name}.toml"),
            "trains with the plugin",
        ),
    ];
    let width = steps.iter().map(|(s, _)| s.len()).max().unwrap_or(0);
    for (step, what) in steps {
        match what {
            "" => println!("  {step}"),
            _ => println!("  {step:<width$}  # {what}"),
        }
    }
    println!("With CARGO_TARGET_DIR set to coherent's target directory, the dependencies coherent compiled are reused (its own crates are compiled once more, for every crate outside its workspace).");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn framework() -> PathBuf {
        Path::new(BUILT_FROM).to_path_buf()
    }

    #[test]
    fn the_framework_is_recognised() {
        let tree = check_framework(&framework()).unwrap();
        assert!(tree.join("crates/coherent-cli/Cargo.toml").is_file());
        let e = check_framework(&tree.join("crates")).unwrap_err();
        assert!(
            e.contains("is not coherent's source tree") && e.contains("--framework"),
            "{e}"
        );
        let e = check_framework(Path::new("/nonexistent/coherent")).unwrap_err();
        assert!(e.contains("cannot read it"), "{e}");
    }

    #[test]
    fn package_names_come_from_the_directory() {
        assert_eq!(package_name(Path::new("/tmp/my-lab")).unwrap(), "my-lab");
        assert_eq!(package_name(Path::new("lab_2")).unwrap(), "lab_2");
        for bad in [
            "/tmp/2lab",
            "/tmp/my lab",
            "/tmp/lab.d",
            "/",
            "..",
            "/tmp/serde",
            "x/coherent_core",
        ] {
            assert!(package_name(Path::new(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn modules_are_added_in_order() {
        let lib = "//! doc\n\ncoherent_core::plugin_crate!();\n";
        let one = add_module(lib, "blobs").unwrap();
        assert_eq!(one, format!("{lib}\npub mod blobs;\n"));
        let two = add_module(&one, "aaa").unwrap();
        let three = add_module(&two, "zed").unwrap();
        assert!(
            three.ends_with("\npub mod aaa;\npub mod blobs;\npub mod zed;\n"),
            "{three}"
        );
        assert!(add_module(&three, "blobs").unwrap_err().contains("already"));
    }

    #[test]
    fn a_new_project_then_a_second_plugin() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("my-lab");
        let (changes, package) =
            plan(&out, &framework(), Kind::Metric, &Names::new("grad_norm")).unwrap();
        assert_eq!(package, "my-lab");
        let paths: Vec<&str> = changes.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(
            paths,
            [
                "Cargo.toml",
                ".gitignore",
                "src/main.rs",
                "Cargo.lock",
                "src/grad_norm.rs",
                "grad_norm.toml",
                "src/lib.rs"
            ]
        );
        let cargo: toml::Table = changes[0].contents.parse().unwrap();
        assert_eq!(cargo["package"]["name"].as_str(), Some("my-lab"));
        assert!(cargo["workspace"].as_table().unwrap().is_empty());
        let core = cargo["dependencies"]["coherent-core"]["path"]
            .as_str()
            .unwrap();
        assert!(
            Path::new(core).join("src/plugin_crate.rs").is_file(),
            "{core}"
        );
        assert_eq!(
            cargo["profile"]["release"]["codegen-units"].as_integer(),
            Some(4)
        );
        let main = &changes[2].contents;
        assert!(main.contains("App::new(\"my-lab\")") && main.contains(".with(&my_lab::PLUGINS)"));
        assert!(
            changes[3].contents.contains("name = \"dfdx\""),
            "coherent's lock file"
        );
        assert!(changes[6].contents.contains(PROJECT_MARKER));
        assert!(changes[6]
            .contents
            .ends_with("plugin_crate!();\n\npub mod grad_norm;\n"));
        write_all(&out, &changes).unwrap();
        assert_eq!(existing(&out).unwrap(), Existing::Project("my-lab".into()));
        // a second plugin: its module, its manifest and one line more in src/lib.rs
        let (changes, _) = plan(
            &out,
            Path::new("/unused"),
            Kind::Dataset,
            &Names::new("blobs"),
        )
        .unwrap();
        let paths: Vec<&str> = changes.iter().map(|c| c.path.to_str().unwrap()).collect();
        assert_eq!(paths, ["src/blobs.rs", "blobs.toml", "src/lib.rs"]);
        assert!(changes[2].edit);
        assert!(changes[2]
            .contents
            .ends_with("\npub mod blobs;\npub mod grad_norm;\n"));
        assert!(changes[1]
            .contents
            .contains("[dataset]\nplugin = \"blobs\""));
        // the same name again is refused
        let e = plan(&out, &framework(), Kind::Observer, &Names::new("grad_norm")).unwrap_err();
        assert!(e.contains("already"), "{e}");
    }

    #[test]
    fn other_directories_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let e = plan(dir.path(), &framework(), Kind::Metric, &Names::new("x")).unwrap_err();
        assert!(
            e.contains("is not a crate of plugins made by `coherent new plugin --out`"),
            "{e}"
        );
        let empty = tempfile::tempdir().unwrap();
        let named = empty.path().join("lab_3");
        std::fs::create_dir(&named).unwrap();
        let (_, package) = plan(
            &named.join("."),
            &framework(),
            Kind::Metric,
            &Names::new("x"),
        )
        .expect("an empty directory is new");
        assert_eq!(package, "lab_3");
        let bad_framework = empty.path().join("nothing");
        let e = plan(
            &empty.path().join("lab"),
            &bad_framework,
            Kind::Metric,
            &Names::new("x"),
        );
        assert!(e.unwrap_err().contains("is not coherent's source tree"));
        let e = plan(
            &empty.path().join("lab"),
            &framework(),
            Kind::Metric,
            &Names::new("lib"),
        );
        assert!(e.unwrap_err().contains("src/lib.rs is the crate's own"));
    }
}
