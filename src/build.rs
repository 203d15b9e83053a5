//! Puts the commit teal is built from into `--version` (`TEAL_COMMIT`): the
//! short hash, `-dirty` when the work tree has changes; `unknown` outside a
//! git checkout (a crate tarball) or without git.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

fn main() {
    let commit = git(&["rev-parse", "--short=12", "HEAD"]).unwrap_or_else(|| "unknown".into());
    let dirty =
        git(&["status", "--porcelain", "--untracked-files=no"]).is_some_and(|s| !s.is_empty());
    let commit = if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    };
    println!("cargo:rustc-env=TEAL_COMMIT={commit}");
    // A new commit or checkout changes HEAD (or the branch it points at).
    for path in [".git/HEAD", ".git/index"] {
        println!("cargo:rerun-if-changed={path}");
    }
    if let Some(head) = std::fs::read_to_string(".git/HEAD").ok().and_then(|h| {
        h.strip_prefix("ref: ")
            .map(|r| format!(".git/{}", r.trim()))
    }) {
        println!("cargo:rerun-if-changed={head}");
    }
}
