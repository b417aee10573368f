//! Records the framework's git commit at build time (`COHERENT_GIT_COMMIT`), so every run knows
//! which source it was built from, whatever directory it runs in.

use std::path::Path;
use std::process::Command;

fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let dir = Path::new(&dir);
    if let Some(commit) = git(dir, &["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=COHERENT_GIT_COMMIT={commit}");
    }
    // A new commit moves HEAD or the branch it points to. HEAD is the checkout's own (a
    // worktree has one of its own); branches are in the common directory, shared by the
    // worktrees. Only paths that exist are watched: Cargo reruns a build script whose watched
    // path is missing every time, and with it everything that depends on this crate.
    let git_dir = git(dir, &["rev-parse", "--absolute-git-dir"]);
    let common = git(
        dir,
        &["rev-parse", "--path-format=absolute", "--git-common-dir"],
    );
    let watched = [
        git_dir.map(|d| format!("{d}/HEAD")),
        common.as_ref().map(|d| format!("{d}/refs/heads")),
        common.map(|d| format!("{d}/packed-refs")),
    ];
    for path in watched.into_iter().flatten() {
        if Path::new(&path).exists() {
            println!("cargo:rerun-if-changed={path}");
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
