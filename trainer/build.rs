//! The trainer's tests and benchmarks load libtorch: an rpath to it, so nothing needs
//! LD_LIBRARY_PATH (`rustc-link-arg` reaches only this package's own test binaries).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
