//! The libtorch this process runs on: its version and location, CUDA devices, and a smoke forward
//! that checks libtorch computes what plain Rust computes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use tch::{Device, Kind, Tensor};

/// What `fusionprot doctor` reports about libtorch.
#[derive(Debug, Clone)]
pub struct LibtorchInfo {
    /// `torch.__version__` of the loaded library (e.g. `2.11.0+cu130`); `None` when the library's
    /// folder has no version file (a hand-made build).
    pub version: Option<String>,
    /// The folder `libtorch_cpu.so` was loaded from.
    pub lib_dir: Option<PathBuf>,
    pub cuda_available: bool,
    pub cudnn_available: bool,
    pub cuda_devices: Vec<String>,
    pub cpu_threads: i32,
}

/// Reads the state of the loaded libtorch. Cheap: no tensor is created.
/// Fixes libtorch's intra-op thread count (CPU results are bitwise reproducible for a fixed count).
pub fn set_threads(n: usize) {
    tch::set_num_threads(n.clamp(1, i32::MAX as usize) as i32);
}

pub fn libtorch_info() -> LibtorchInfo {
    let lib_dir = loaded_library_dir("libtorch_cpu.so");
    let version = lib_dir.as_deref().and_then(version_next_to);
    let cuda_available = tch::Cuda::is_available();
    let cuda_devices = if cuda_available {
        cuda_device_names(tch::Cuda::device_count())
    } else {
        Vec::new()
    };
    LibtorchInfo {
        version,
        lib_dir,
        cuda_available,
        cudnn_available: cuda_available && tch::Cuda::cudnn_is_available(),
        cuda_devices,
        cpu_threads: tch::get_num_threads(),
    }
}

/// The folder a shared library of this process was loaded from, read from `/proc/self/maps`, so
/// that it names the library actually in use (rpath or LD_LIBRARY_PATH), not the one built against.
fn loaded_library_dir(file_name: &str) -> Option<PathBuf> {
    let maps = std::fs::read_to_string("/proc/self/maps").ok()?;
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .map(Path::new)
        .find(|path| path.file_name().is_some_and(|n| n == file_name))
        .and_then(|path| path.parent().map(Path::to_path_buf))
}

/// The torch version recorded beside `lib/`: `torch/version.py` in a PyPI wheel, `build-version`
/// in a libtorch archive.
fn version_next_to(lib_dir: &Path) -> Option<String> {
    let root = lib_dir.parent()?;
    if let Ok(text) = std::fs::read_to_string(root.join("version.py")) {
        return text.lines().find_map(|line| {
            // `__version__ = '2.11.0+cu130'`, with or without a type annotation
            let (_, value) = line.strip_prefix("__version__")?.rsplit_once('=')?;
            Some(value.trim().trim_matches(['\'', '"']).to_owned())
        });
    }
    std::fs::read_to_string(root.join("build-version"))
        .ok()
        .map(|v| v.trim().to_owned())
}

/// CUDA device names from `nvidia-smi`, which every NVIDIA driver install has; libtorch's C API as
/// exposed by tch has no device-name call. Falls back to numbered names.
fn cuda_device_names(count: i64) -> Vec<String> {
    let names: Vec<String> = std::process::Command::new("nvidia-smi")
        .args(["--query-gpu=name", "--format=csv,noheader"])
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| {
            String::from_utf8_lossy(&out.stdout)
                .lines()
                .map(|l| l.trim().to_owned())
                .filter(|l| !l.is_empty())
                .collect()
        })
        .unwrap_or_default();
    (0..usize::try_from(count).unwrap_or(0))
        .map(|i| {
            names
                .get(i)
                .map_or_else(|| format!("cuda:{i}"), |n| format!("cuda:{i} {n}"))
        })
        .collect()
}

/// Result of [`smoke_forward`].
#[derive(Debug, Clone)]
pub struct SmokeReport {
    pub device: Device,
    /// Output shape of the forward, `[batch, out_features]`.
    pub shape: Vec<i64>,
    /// Largest |libtorch − plain Rust| over all outputs.
    pub max_abs_error: f64,
    pub elapsed_secs: f64,
}

/// The smoke forward disagreed with the plain-Rust reference, or libtorch failed.
#[derive(Debug, thiserror::Error)]
pub enum SmokeError {
    #[error("libtorch failed on {device:?}: {source}")]
    Torch {
        device: Device,
        source: tch::TchError,
    },
    #[error(
        "libtorch on {device:?} disagrees with the reference: max |error| {max_abs_error:e} > {tolerance:e}"
    )]
    Mismatch {
        device: Device,
        max_abs_error: f64,
        tolerance: f64,
    },
}

const SMOKE_BATCH: usize = 8;
const SMOKE_IN: usize = 64;
const SMOKE_OUT: usize = 32;
/// f32 with 64-term dot products of values in [-1, 1]: rounding stays far below this.
const SMOKE_TOLERANCE: f64 = 1e-4;

/// Runs `relu(x·Wᵀ + b)` on `device` with fixed inputs and checks it against the same computation
/// in f64 Rust. Catches a libtorch that loads but computes wrongly (ABI or BLAS trouble) and a CUDA
/// device that is visible but unusable.
///
/// # Errors
/// [`SmokeError::Torch`] when libtorch fails, [`SmokeError::Mismatch`] when results disagree.
pub fn smoke_forward(device: Device) -> Result<SmokeReport, SmokeError> {
    let torch = |source| SmokeError::Torch { device, source };
    let x = pattern(SMOKE_BATCH * SMOKE_IN, 1);
    let w = pattern(SMOKE_OUT * SMOKE_IN, 2);
    let b = pattern(SMOKE_OUT, 3);
    let start = Instant::now();
    let to_device = |v: &[f32], shape: &[i64]| -> Result<Tensor, tch::TchError> {
        Tensor::f_from_slice(v)?
            .f_reshape(shape)?
            .f_to_device(device)
    };
    let xt = to_device(&x, &[SMOKE_BATCH as i64, SMOKE_IN as i64]).map_err(torch)?;
    let wt = to_device(&w, &[SMOKE_OUT as i64, SMOKE_IN as i64]).map_err(torch)?;
    let bt = to_device(&b, &[SMOKE_OUT as i64]).map_err(torch)?;
    let yt = xt
        .f_linear(&wt, Some(&bt))
        .and_then(|y| y.f_relu())
        .and_then(|y| y.f_to_device(Device::Cpu))
        .and_then(|y| y.f_to_kind(Kind::Double))
        .map_err(torch)?;
    if device.is_cuda() {
        tch::Cuda::synchronize(0);
    }
    let elapsed_secs = start.elapsed().as_secs_f64();
    let shape = yt.size();
    let got = Vec::<f64>::try_from(yt.flatten(0, -1)).map_err(torch)?;
    let mut max_abs_error = 0.0_f64;
    for i in 0..SMOKE_BATCH {
        for o in 0..SMOKE_OUT {
            let dot: f64 = (0..SMOKE_IN)
                .map(|k| f64::from(x[i * SMOKE_IN + k]) * f64::from(w[o * SMOKE_IN + k]))
                .sum();
            let want = (dot + f64::from(b[o])).max(0.0);
            max_abs_error = max_abs_error.max((got[i * SMOKE_OUT + o] - want).abs());
        }
    }
    if max_abs_error > SMOKE_TOLERANCE {
        return Err(SmokeError::Mismatch {
            device,
            max_abs_error,
            tolerance: SMOKE_TOLERANCE,
        });
    }
    Ok(SmokeReport {
        device,
        shape,
        max_abs_error,
        elapsed_secs,
    })
}

/// Deterministic values in [-1, 1) without a random generator: a scrambled integer sequence.
fn pattern(n: usize, salt: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| {
            let h = (i.wrapping_mul(2_654_435_761) ^ salt.wrapping_mul(40_503))
                .wrapping_mul(2_246_822_519);
            (h >> 8) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smoke_forward_on_cpu_matches_plain_rust() {
        let report = smoke_forward(Device::Cpu).expect("libtorch CPU forward");
        assert_eq!(report.shape, [SMOKE_BATCH as i64, SMOKE_OUT as i64]);
        assert!(report.max_abs_error <= SMOKE_TOLERANCE);
    }

    #[test]
    fn libtorch_info_finds_the_loaded_library_and_its_version() {
        let info = libtorch_info();
        let dir = info
            .lib_dir
            .expect("libtorch_cpu.so is mapped into the test process");
        assert!(dir.join("libtorch_cpu.so").exists(), "{}", dir.display());
        let version = info.version.expect("the venv's torch has version.py");
        // tch 0.24 is built for exactly this torch; scripts/setup installs it.
        assert!(version.starts_with("2.11.0"), "{version}");
    }

    #[test]
    fn version_is_read_from_a_wheel_layout_and_from_a_libtorch_archive() {
        let wheel = tempfile::tempdir().expect("tempdir");
        std::fs::create_dir(wheel.path().join("lib")).expect("mkdir");
        std::fs::write(
            wheel.path().join("version.py"),
            "from typing import Optional\n__version__: str = '2.11.0+cu130'\ngit_version = 'abc'\n",
        )
        .expect("write");
        assert_eq!(
            version_next_to(&wheel.path().join("lib")).as_deref(),
            Some("2.11.0+cu130")
        );

        let archive = tempfile::tempdir().expect("tempdir");
        std::fs::write(archive.path().join("build-version"), "2.11.0+cpu\n").expect("write");
        assert_eq!(
            version_next_to(&archive.path().join("lib")).as_deref(),
            Some("2.11.0+cpu")
        );
    }

    #[test]
    fn pattern_is_deterministic_and_in_range() {
        let a = pattern(1000, 7);
        assert_eq!(a, pattern(1000, 7));
        assert_ne!(a, pattern(1000, 8));
        assert!(a.iter().all(|v| (-1.0..1.0).contains(v)));
    }
}
