//! Tells the program what it was built for, for `--version`: the target
//! triple and the profile (`debug` or `release`) are known to build scripts
//! only, so they are passed on as compile-time environment variables.

fn main() {
    for (from, to) in [("TARGET", "LIGHTFI_TOKEN_TARGET"), ("PROFILE", "LIGHTFI_TOKEN_PROFILE")] {
        let value = std::env::var(from).unwrap_or_else(|_| "unknown".into());
        println!("cargo:rustc-env={to}={value}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
