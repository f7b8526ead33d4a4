//! Link settings a q extension needs per platform. q's C API symbols (ktn, krr, sd1, ...)
//! are resolved when q loads the library: Linux allows undefined symbols in a shared
//! object by default; macOS must be told to look them up at load time.
fn main() {
    let os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    if os == "macos" {
        println!("cargo:rustc-cdylib-link-arg=-undefined");
        println!("cargo:rustc-cdylib-link-arg=dynamic_lookup");
    }
    println!("cargo:rerun-if-changed=build.rs");
}
