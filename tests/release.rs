//! The release archives: `scripts/release` builds the static Linux binary
//! and the Windows one with the shipping profile (into the usual target
//! folder, so a CI run that built them for the black-box suites packs those
//! same files), packs them, and its verify mode checks the checksums, the
//! exact list of files and each binary's `--version` (the Windows one under
//! wine). Then the verify mode is shown to refuse a changed archive and an
//! archive holding a file it should not (the wine test stub).
#![cfg(target_os = "linux")]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::*;

const TARGETS: [&str; 2] = ["x86_64-unknown-linux-musl", "x86_64-pc-windows-gnu"];

/// Runs the script as a person would from a shell: without the `CARGO_*`
/// variables cargo gives a test (`CARGO_PKG_NAME`, `CARGO_MANIFEST_DIR`, …).
/// Build scripts of dependencies watch some of them (`rerun-if-env-changed`),
/// so with them the shipped binary would be relinked, and would no longer be
/// the file `.ci/run` built and tested. The user's own settings stay.
fn script(args: &[&str]) -> Output {
    let mut cmd = Command::new("bash");
    cmd.arg(repo_root().join("scripts/release")).args(args);
    for (key, _) in std::env::vars_os() {
        let key = key.to_string_lossy();
        if key.starts_with("CARGO_") && !matches!(&*key, "CARGO_HOME" | "CARGO_TARGET_DIR" | "CARGO_BUILD_JOBS") {
            cmd.env_remove(&*key);
        }
    }
    cmd.env_remove("OUT_DIR")
        .env_remove("RUSTC_WRAPPER")
        .env_remove("CARGO");
    cmd.output().expect("run scripts/release")
}

#[track_caller]
fn assert_ok(out: &Output) {
    assert!(
        out.status.success(),
        "scripts/release failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The Rust targets, added with rustup when missing.
fn ensure_rust_targets() {
    let installed = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let installed = installed
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    for target in TARGETS.iter().filter(|t| !installed.lines().any(|l| l == **t)) {
        let added = Command::new("rustup").args(["target", "add", target]).status();
        assert!(
            added.is_ok_and(|s| s.success()),
            "the Rust target {target} is missing; run\n    rustup target add {target}"
        );
    }
}

fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

#[test]
fn musl_and_windows_archives_are_built_and_verified() {
    TestTools::Apt(&["jq", "zip", "unzip", "musl-tools", "gcc-mingw-w64-x86-64", "wine"]).ensure();
    ensure_rust_targets();
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().to_str().unwrap();

    let built = script(&[&["--out", out][..], &TARGETS].concat());
    assert_ok(&built);
    let verified = script(&[&["--verify", out][..], &TARGETS].concat());
    assert_ok(&verified);
    let report = String::from_utf8_lossy(&verified.stdout);
    for (target, archive) in [
        (TARGETS[0], format!("lightfi-token-{}-{}.tar.gz", version(), TARGETS[0])),
        (TARGETS[1], format!("lightfi-token-{}-{}.zip", version(), TARGETS[1])),
    ] {
        assert!(report.contains(&format!("ok {archive}")), "{report}");
        assert!(
            report.contains(&format!("lightfi-token {} ({target}, ", version())),
            "{report}"
        );
        let sum = std::fs::read_to_string(dir.path().join(format!("{archive}.sha256"))).unwrap();
        assert!(sum.ends_with(&format!("  {archive}\n")), "sha256sum's format: {sum}");
    }

    a_changed_archive_is_refused(dir.path());
    an_archive_with_the_wine_stub_is_refused(dir.path());
}

fn musl_archive(dir: &Path) -> String {
    let name = format!("lightfi-token-{}-{}.tar.gz", version(), TARGETS[0]);
    dir.join(name).to_str().unwrap().to_string()
}

fn a_changed_archive_is_refused(dir: &Path) {
    let changed = tempfile::tempdir().unwrap();
    let archive = musl_archive(dir);
    let copy = changed.path().join(Path::new(&archive).file_name().unwrap());
    std::fs::copy(&archive, &copy).unwrap();
    std::fs::copy(format!("{archive}.sha256"), format!("{}.sha256", copy.display())).unwrap();
    let mut bytes = std::fs::read(&copy).unwrap();
    bytes.push(0);
    std::fs::write(&copy, bytes).unwrap();
    let out = script(&["--verify", changed.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("checksum does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The archive repacked with one more file, and a checksum that matches it.
fn an_archive_with_the_wine_stub_is_refused(dir: &Path) {
    let repacked = tempfile::tempdir().unwrap();
    let archive = musl_archive(dir);
    let name = Path::new(&archive).file_name().unwrap().to_str().unwrap().to_string();
    let top = name.trim_end_matches(".tar.gz");
    let sh = format!(
        "set -e; tar -xzf '{archive}'; touch '{top}/bcryptprimitives.dll'; \
         tar -czf '{name}' '{top}'; rm -r '{top}'; sha256sum '{name}' > '{name}.sha256'"
    );
    let status = Command::new("sh")
        .args(["-c", &sh])
        .current_dir(repacked.path())
        .status()
        .unwrap();
    assert!(status.success());
    let out = script(&["--verify", repacked.path().to_str().unwrap()]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("holds other files"), "{stderr}");
    assert!(stderr.contains("bcryptprimitives.dll"), "{stderr}");
}

/// The repository's address is said once, in Cargo.toml; the README's install
/// lines use that same address.
#[test]
fn the_readme_installs_from_the_repository_named_in_cargo_toml() {
    let repo = env!("CARGO_PKG_REPOSITORY");
    assert!(repo.starts_with("https://"), "Cargo.toml's repository: {repo:?}");
    let readme = std::fs::read_to_string(repo_root().join("README.md")).unwrap();
    assert!(readme.contains(&format!("cargo install --git {repo} --locked")));
    assert!(readme.contains(&format!("<{repo}/releases>")));
    for (at, _) in readme.match_indices("github.com/lightfi") {
        let address = &readme[readme[..at].rfind("https://").unwrap()..];
        assert!(
            address.starts_with(repo),
            "another spelling: {}",
            &address[..repo.len()]
        );
    }
}
