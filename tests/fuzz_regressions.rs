//! The fuzz targets' inputs, checked on stable by `cargo test`: every file in
//! `fuzz/regressions/<target>/` (inputs that once failed a check) and
//! `fuzz/seeds/<target>/` (the starting corpus) goes through the same check
//! as the fuzz target (`fuzz/checks.rs`).

#[path = "../fuzz/checks.rs"]
mod checks;

use std::path::Path;

/// Run `check` on every input of `target`, naming each one that fails.
fn run(target: &str, check: fn(&[u8])) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut failed = Vec::new();
    let mut checked = 0;
    for kind in ["regressions", "seeds"] {
        let dir = root.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut paths: Vec<_> = entries.map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths {
            let name = path.file_name().unwrap().to_string_lossy();
            if name.starts_with('.') || name.ends_with(".md") {
                continue;
            }
            let input = std::fs::read(&path).unwrap();
            checked += 1;
            if std::panic::catch_unwind(|| check(&input)).is_err() {
                failed.push(format!("{kind}/{target}/{name}"));
            }
        }
    }
    assert!(checked > 0, "no inputs for {target} under {}", root.display());
    assert!(failed.is_empty(), "these inputs fail the {target} check: {failed:?}");
}

#[test]
fn git_credential() {
    run("git_credential", checks::git_credential);
}

#[test]
fn callback_query() {
    run("callback_query", checks::callback_query);
}

#[test]
fn config_toml() {
    run("config_toml", checks::config_toml);
}

#[test]
fn store_file() {
    run("store_file", checks::store_file);
}

#[test]
fn token_response() {
    run("token_response", checks::token_response);
}
