//! Compiles `csrc/shim.cpp` against the libtorch that torch-sys links (`DEP_TCH_LIBTORCH_LIB`,
//! the PyPI wheel's `torch/lib`; its headers sit beside it in `torch/include`), with the gloo
//! headers vendored in `vendor/` (the wheel ships none; see vendor/README.md for which commit and
//! why). With the `nccl` feature, ProcessGroupNCCL too, from `FUSIONPROT_CUDA_INCLUDE` (a
//! `:`-separated list of the CUDA runtime, crt/cccl and NCCL include folders).

fn main() {
    println!("cargo:rerun-if-changed=csrc/shim.cpp");
    println!("cargo:rerun-if-changed=vendor");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=FUSIONPROT_CUDA_INCLUDE");
    let lib = std::env::var("DEP_TCH_LIBTORCH_LIB")
        .expect("torch-sys did not say where libtorch is (DEP_TCH_LIBTORCH_LIB)");
    let lib = std::path::PathBuf::from(lib);
    let include = lib.join("../include");
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .std("c++17")
        // torch 2.11's wheels are built with the C++11 ABI (torch._C._GLIBCXX_USE_CXX11_ABI);
        // a mismatch fails at link time on std::__cxx11 symbols, never silently.
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .define("USE_C10D_GLOO", None)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .include("vendor")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .flag_if_supported("-Wno-missing-field-initializers")
        .file("csrc/shim.cpp");
    if std::env::var("CARGO_FEATURE_NCCL").is_ok() {
        build
            .define("USE_C10D_NCCL", None)
            .define("FUSIONPROT_NCCL", None);
        let dirs = std::env::var("FUSIONPROT_CUDA_INCLUDE")
            .expect("the nccl feature needs FUSIONPROT_CUDA_INCLUDE (scripts/build-gpu sets it)");
        for dir in dirs.split(':').filter(|d| !d.is_empty()) {
            build.include(dir);
        }
    }
    build.compile("fusionprot_dist_shim");
    println!("cargo:rustc-link-search=native={}", lib.display());
    if std::env::var("CARGO_FEATURE_NCCL").is_ok() {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
        println!("cargo:rustc-link-lib=dylib=c10_cuda");
    }
    // This crate's own tests find libtorch without LD_LIBRARY_PATH (binaries get theirs from
    // cli/build.rs).
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-link-lib=dylib=torch_cpu");
    println!("cargo:rustc-link-lib=dylib=c10");
}
