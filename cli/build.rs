//! Link settings shared by every crate whose binaries or tests load libtorch or libduckdb
//! (cli, trainer and tracker point their `build =` here): an rpath to each native library so that
//! nothing needs LD_LIBRARY_PATH, and libtorch_cuda force-linked so that a binary built on a CPU
//! machine still sees CUDA on a GPU machine. `rustc-link-arg` reaches only the package's own
//! binaries and tests, hence one script used by several packages instead of one in a library.

fn main() {
    if std::env::var("CARGO_PKG_NAME").as_deref() == Ok("fusionprot") {
        git_commit();
    }
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

/// The CLI records the commit it was built from (`fusionprot.git_commit` on tracked runs): the
/// HEAD of the checkout, when there is one. Only the CLI reruns on a new commit.
fn git_commit() {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
        println!("cargo:rerun-if-changed={dir}/packed-refs");
    }
    if let Some(commit) = git(&["rev-parse", "HEAD"]) {
        println!("cargo:rustc-env=FUSIONPROT_GIT_COMMIT={commit}");
    }
}
