//! Tells the program what it was built for, for `--version`: the target
//! triple and the profile are known to build scripts only, so they are
//! passed on as compile-time environment variables.

use std::path::Path;

fn main() {
    let target = std::env::var("TARGET").unwrap_or_else(|_| "unknown".into());
    println!("cargo:rustc-env=LIGHTFI_TOKEN_TARGET={target}");
    println!("cargo:rustc-env=LIGHTFI_TOKEN_PROFILE={}", profile());
    println!("cargo:rerun-if-changed=build.rs");
}

/// The profile's name. Cargo's `PROFILE` says only `debug` or `release`
/// (`dist`, which inherits `release`, says `release`); the output folder
/// carries the real name: `<target dir>/[<triple>/]<profile>/build/<pkg>-<hash>/out`.
fn profile() -> String {
    let from_out_dir = std::env::var_os("OUT_DIR").and_then(|out| {
        let dir = Path::new(&out).ancestors().nth(3)?.file_name()?.to_str()?.to_string();
        Some(dir)
    });
    from_out_dir
        .or_else(|| std::env::var("PROFILE").ok())
        .unwrap_or_else(|| "unknown".into())
}
