//! `fusionprot-torch doctor`: the libtorch part of `fusionprot doctor` (which runs this and
//! includes its lines): the libtorch version and location, a forward on the CPU and on each CUDA
//! device.

use std::process::ExitCode;

use clap::Args;
use fusionprot_trainer::{Device, runtime};

use crate::report::{self, Check};

#[derive(Debug, Args)]
pub struct TorchDoctorArgs {
    /// Also fail when no CUDA device is usable (for GPU machines).
    #[arg(long)]
    require_cuda: bool,
    /// Print the report as JSON on stdout instead of a table.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &TorchDoctorArgs) -> anyhow::Result<ExitCode> {
    report::finish(&checks(args.require_cuda), args.json)
}

fn checks(require_cuda: bool) -> Vec<Check> {
    let exe = std::env::current_exe()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|_| "location unknown".into());
    let mut checks = vec![Check::new(
        "fusionprot-torch",
        true,
        Ok(format!("{} ({exe})", env!("CARGO_PKG_VERSION"))),
    )];
    let info = runtime::libtorch_info();
    let location = info.lib_dir.as_ref().map_or_else(
        || "location unknown".to_owned(),
        |d| d.display().to_string(),
    );
    checks.push(Check::new(
        "libtorch",
        true,
        Ok(format!(
            "{} ({location})",
            info.version.as_deref().unwrap_or("version unknown")
        )),
    ));
    checks.push(Check::new(
        "CPU forward",
        true,
        smoke(Device::Cpu).map(|s| format!("{s}, {} threads", info.cpu_threads)),
    ));
    let cuda = if info.cuda_available {
        let cudnn = if info.cudnn_available {
            "cuDNN"
        } else {
            "no cuDNN"
        };
        Ok(format!("{} ({cudnn})", info.cuda_devices.join(", ")))
    } else {
        Err("not available (CPU only); on a GPU machine check the driver and that libtorch_cuda.so loads".to_owned())
    };
    checks.push(Check::new("CUDA", require_cuda, cuda));
    if info.cuda_available {
        checks.push(Check::new("CUDA forward", true, smoke(Device::Cuda(0))));
    }
    checks
}

fn smoke(device: Device) -> Result<String, String> {
    runtime::smoke_forward(device)
        .map(|r| {
            format!(
                "ok: linear+relu {:?} matches plain Rust (max |err| {:.1e}) in {:.2} ms",
                r.shape,
                r.max_abs_error,
                r.elapsed_secs * 1e3
            )
        })
        .map_err(|e| e.to_string())
}
