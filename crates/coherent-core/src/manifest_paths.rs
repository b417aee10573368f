//! Relative paths in a manifest resolve against the manifest's directory, so a manifest means
//! the same thing from any working directory (a Slurm node, `cd experiments`, a test).

use std::path::{Path, PathBuf};

/// A relative path that no longer resolves: it names nothing next to the manifest, but
/// something relative to the working directory (where such paths used to resolve).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MovedPath {
    /// Where the path resolves now (the manifest's directory joined with it).
    pub resolved: PathBuf,
    /// The same target written relative to the manifest's directory.
    pub suggestion: PathBuf,
}

/// `path` resolved against `base` (the manifest's directory; `None`: the working directory,
/// for plugins built from code). An absolute `path` is kept. `Err` when the resolved path
/// does not exist but `path` does exist relative to the working directory.
pub fn resolve(base: Option<&Path>, path: &Path) -> Result<PathBuf, MovedPath> {
    let Some(base) = base.filter(|_| path.is_relative()) else {
        return Ok(path.to_path_buf());
    };
    let resolved = base.join(path);
    if resolved.exists() || !path.exists() {
        return Ok(resolved);
    }
    let absolute = |p: &Path| std::fs::canonicalize(p).ok();
    let suggestion = absolute(path)
        .zip(absolute(base))
        .and_then(|(target, base)| pathdiff::diff_paths(target, base))
        .unwrap_or_else(|| path.to_path_buf());
    Err(MovedPath {
        resolved,
        suggestion,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_resolve_next_to_the_manifest() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("experiments");
        std::fs::create_dir_all(base.join("data")).unwrap();
        let got = resolve(Some(&base), Path::new("data")).unwrap();
        assert_eq!(got, base.join("data"));
        assert_eq!(resolve(None, Path::new("data")).unwrap(), Path::new("data"));
        let absolute = tmp.path().join("elsewhere");
        assert_eq!(resolve(Some(&base), &absolute).unwrap(), absolute);
        // Neither here nor there: resolved next to the manifest, for the reader to report.
        let missing = resolve(Some(&base), Path::new("no-such-dir-anywhere")).unwrap();
        assert_eq!(missing, base.join("no-such-dir-anywhere"));
    }

    #[test]
    fn a_path_that_only_exists_from_the_working_directory_is_explained() {
        // `src` exists relative to the crate's directory, where `cargo test` runs.
        let tmp = tempfile::tempdir().unwrap();
        let moved = resolve(Some(tmp.path()), Path::new("src")).unwrap_err();
        assert_eq!(moved.resolved, tmp.path().join("src"));
        let back = std::fs::canonicalize(tmp.path().join(&moved.suggestion)).unwrap();
        assert_eq!(back, std::fs::canonicalize("src").unwrap());
    }
}
