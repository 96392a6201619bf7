//! The tracker's tests load libduckdb when it is linked dynamically (scripts/env sets
//! DUCKDB_LIB_DIR): an rpath to it, so nothing needs LD_LIBRARY_PATH.

fn main() {
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
