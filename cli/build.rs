//! Link settings shared by every crate whose binaries or tests load libtorch or libduckdb
//! (cli, trainer and tracker point their `build =` here): an rpath to each native library so that
//! nothing needs LD_LIBRARY_PATH, and libtorch_cuda force-linked so that a binary built on a CPU
//! machine still sees CUDA on a GPU machine. `rustc-link-arg` reaches only the package's own
//! binaries and tests, hence one script used by several packages instead of one in a library.

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        // tch never references a torch_cuda symbol, so `--as-needed` would drop the library and
        // `tch::Cuda::is_available()` would be false even on a GPU machine.
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            println!("cargo:rustc-link-arg=-L{lib}");
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
            println!("cargo:rustc-link-arg=-ltorch_cuda");
            println!("cargo:rustc-link-arg=-Wl,--as-needed");
        }
    }
    // Only set when DuckDB is linked dynamically (scripts/env); the bundled build needs nothing.
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
