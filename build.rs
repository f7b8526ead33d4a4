//! Link settings a q extension needs per platform. q's C API symbols (ktn, krr, sd1, ...)
//! are resolved when q loads the library: Linux allows undefined symbols in a shared
//! object by default; macOS must be told to look them up at load time.
//!
//! Also the labels of `qprom_build_info` (src/registry.rs): QPROM_TARGET, the target
//! triple, and QPROM_REVISION, the git commit (`$QPROM_REVISION` if set, else
//! `git rev-parse`, else `unknown`, e.g. when built from a source archive).
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let s = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (out.status.success() && !s.is_empty()).then_some(s)
}

fn main() {
    println!("cargo:rustc-env=QPROM_TARGET={}", std::env::var("TARGET").unwrap_or_default());
    println!("cargo:rerun-if-env-changed=QPROM_REVISION");
    let rev = std::env::var("QPROM_REVISION").ok().filter(|s| !s.is_empty());
    let rev = rev.or_else(|| git(&["rev-parse", "--short=12", "HEAD"])).unwrap_or_else(|| "unknown".into());
    println!("cargo:rustc-env=QPROM_REVISION={rev}");
    // A new commit changes the revision: rerun when HEAD or the branch it names moves
    // (paths from git, so that worktrees and packed refs are covered).
    for p in [Some("HEAD".to_string()), git(&["symbolic-ref", "-q", "HEAD"]), Some("packed-refs".into())].into_iter().flatten() {
        if let Some(path) = git(&["rev-parse", "--git-path", &p]) {
            if std::path::Path::new(&path).exists() {
                println!("cargo:rerun-if-changed={path}");
            }
        }
    }

    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
