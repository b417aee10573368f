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
    // A new commit moves HEAD or the branch it points to. Only those files are watched (not
    // the directory of every branch), so commits on other branches do not rebuild the runner.
    // (A watched file that does not exist would rebuild every time: only existing ones are.)
    let branch = git(dir, &["symbolic-ref", "-q", "HEAD"]);
    let refs = ["HEAD", "packed-refs"].into_iter().chain(branch.as_deref());
    for name in refs {
        if let Some(file) = git(dir, &["rev-parse", "--git-path", name]) {
            let file = dir.join(file);
            if file.exists() {
                println!("cargo:rerun-if-changed={}", file.display());
            }
        }
    }
    println!("cargo:rerun-if-changed=build.rs");
}
