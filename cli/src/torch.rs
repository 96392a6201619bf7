//! The commands that run tensors live in the sibling binary `fusionprot-torch` (it links
//! libtorch; this one does not, so every data and tracking command starts in milliseconds).
//! `fusionprot train …` replaces this process with `fusionprot-torch train …` (`exec`): the same
//! process id, arguments, stdin / stdout / stderr, exit code and Ctrl-C, as if it ran here.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The subcommands `fusionprot-torch` runs.
pub const COMMANDS: [&str; 5] = ["train", "pretrain", "embed", "evaluate", "export"];

/// The sibling binary's file name.
pub const SIBLING: &str = "fusionprot-torch";

/// Whether `fusionprot ARGS` is a torch command: `ARGS[0]` is one (or `help` of one).
pub fn wants(args: &[OsString]) -> bool {
    let is_torch = |a: Option<&OsString>| {
        a.and_then(|a| a.to_str())
            .is_some_and(|a| COMMANDS.contains(&a))
    };
    is_torch(args.first()) || (args.first().is_some_and(|a| a == "help") && is_torch(args.get(1)))
}

/// The sibling is missing.
#[derive(Debug, thiserror::Error)]
#[error(
    "{SIBLING} is not installed: not beside {0} ({1}) and not on PATH. Training, pre-training, embedding, evaluation and export run in it (it links libtorch): build it with scripts/setup (or scripts/build-gpu on a GPU machine) and put it next to fusionprot"
)]
pub struct Missing(&'static str, String);

/// `fusionprot-torch`: beside this executable first, then on PATH.
///
/// # Errors
/// [`Missing`] when it is in neither place.
pub fn sibling() -> Result<PathBuf, Missing> {
    let here = std::env::current_exe()
        .ok()
        .and_then(|e| e.parent().map(Path::to_path_buf))
        .unwrap_or_default();
    let beside = here.join(SIBLING);
    if is_executable(&beside) {
        return Ok(beside);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(SIBLING))
        .find(|p| is_executable(p))
        .ok_or_else(|| Missing("fusionprot", here.display().to_string()))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Replaces this process with `fusionprot-torch ARGS` (`help CMD` becomes `CMD --help`).
/// Returns only when that cannot happen.
pub fn exec(mut args: Vec<OsString>) -> anyhow::Error {
    use std::os::unix::process::CommandExt;
    let exe = match sibling() {
        Ok(e) => e,
        Err(e) => return e.into(),
    };
    if args.first().is_some_and(|a| a == "help") {
        args.remove(0);
        args.truncate(1);
        args.push("--help".into());
    }
    let err = std::process::Command::new(&exe).args(&args).exec();
    anyhow::Error::new(err).context(format!("starting {}", exe.display()))
}
