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
    if let Some(git_dir) = git(dir, &["rev-parse", "--absolute-git-dir"]) {
        // a new commit moves HEAD or the branch it points to
        println!("cargo:rerun-if-changed={git_dir}/HEAD");
        println!("cargo:rerun-if-changed={git_dir}/refs/heads");
        println!("cargo:rerun-if-changed={git_dir}/packed-refs");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
