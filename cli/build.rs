//! Link settings of the two binaries and the tests. `fusionprot-torch` gets an rpath to
//! libtorch and libtorch_cuda force-linked, so a binary built on a CPU machine still sees CUDA
//! on a GPU machine; `fusionprot` gets neither (it must not load libtorch). The integration
//! tests read checkpoints with tch, so they get the rpath. Both binaries get DuckDB's rpath when
//! it is linked dynamically (scripts/env sets DUCKDB_LIB_DIR).

fn main() {
    git_commit();
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=DUCKDB_LIB_DIR");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg-bin=fusionprot-torch=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{lib}");
        // tch never references a torch_cuda symbol, so `--as-needed` would drop the library and
        // `tch::Cuda::is_available()` would be false even on a GPU machine.
        if std::path::Path::new(&lib).join("libtorch_cuda.so").exists() {
            for arg in [
                format!("-L{lib}"),
                "-Wl,--no-as-needed".into(),
                "-ltorch_cuda".into(),
                "-Wl,--as-needed".into(),
            ] {
                println!("cargo:rustc-link-arg-bin=fusionprot-torch={arg}");
            }
        }
    }
    if let Ok(dir) = std::env::var("DUCKDB_LIB_DIR") {
        println!("cargo:rustc-link-arg-bins=-Wl,-rpath,{dir}");
        println!("cargo:rustc-link-arg-tests=-Wl,-rpath,{dir}");
    }
}

/// The CLI records the commit it was built from (`fusionprot.git_commit` on tracked runs): the
/// HEAD of the checkout, when there is one.
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
