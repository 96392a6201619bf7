//! The one place that runs MMseqs2: finding the executable and reading its version. Every error
//! carries the command line, the exit status and the tail of stderr, and says how to install it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// How users install MMseqs2; part of every "not found" message.
pub const INSTALL_HINT: &str = "run scripts/setup (it installs the Debian/Ubuntu package `mmseqs2`), or set FUSIONPROT_MMSEQS to the executable";

/// Errors from running MMseqs2.
#[derive(Debug, thiserror::Error)]
pub enum MmseqsError {
    #[error("MMseqs2 not found ({searched}); {INSTALL_HINT}")]
    NotFound { searched: String },
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        source: std::io::Error,
    },
    #[error("`{command}` failed with {status}: {stderr_tail}")]
    Failed {
        command: String,
        status: std::process::ExitStatus,
        stderr_tail: String,
    },
}

/// A located MMseqs2 executable.
#[derive(Debug, Clone)]
pub struct Mmseqs {
    exe: PathBuf,
}

impl Mmseqs {
    /// Finds MMseqs2: `FUSIONPROT_MMSEQS` if set, else `mmseqs` on `PATH`.
    ///
    /// # Errors
    /// [`MmseqsError::NotFound`] naming where it looked.
    pub fn locate() -> Result<Self, MmseqsError> {
        if let Some(exe) = std::env::var_os("FUSIONPROT_MMSEQS") {
            let exe = PathBuf::from(exe);
            return if exe.is_file() {
                Ok(Self { exe })
            } else {
                Err(MmseqsError::NotFound {
                    searched: format!("FUSIONPROT_MMSEQS={}", exe.display()),
                })
            };
        }
        let path = std::env::var_os("PATH").unwrap_or_default();
        std::env::split_paths(&path)
            .map(|dir| dir.join("mmseqs"))
            .find(|exe| exe.is_file())
            .map(|exe| Self { exe })
            .ok_or_else(|| MmseqsError::NotFound {
                searched: "`mmseqs` on PATH".to_owned(),
            })
    }

    /// Uses a given executable path as is.
    pub fn at(exe: impl Into<PathBuf>) -> Self {
        Self { exe: exe.into() }
    }

    pub fn exe(&self) -> &Path {
        &self.exe
    }

    /// The version MMseqs2 reports (`mmseqs version`), e.g. `14-7e284+ds-1+b2` for Debian's release 14.
    ///
    /// # Errors
    /// When the executable cannot be started or exits non-zero.
    pub fn version(&self) -> Result<String, MmseqsError> {
        let out = self.run(&["version"])?;
        Ok(String::from_utf8_lossy(&out).trim().to_owned())
    }

    /// Runs MMseqs2 with `args` and returns its stdout.
    pub(crate) fn run<S: AsRef<std::ffi::OsStr>>(
        &self,
        args: &[S],
    ) -> Result<Vec<u8>, MmseqsError> {
        let shown: Vec<String> = args
            .iter()
            .map(|a| a.as_ref().to_string_lossy().into_owned())
            .collect();
        let command = format!("{} {}", self.exe.display(), shown.join(" "));
        let out = Command::new(&self.exe)
            .args(args)
            .output()
            .map_err(|source| MmseqsError::Spawn {
                command: command.clone(),
                source,
            })?;
        if !out.status.success() {
            return Err(MmseqsError::Failed {
                command,
                status: out.status,
                stderr_tail: tail(&out.stderr, 2000),
            });
        }
        Ok(out.stdout)
    }
}

/// The last `max_bytes` of `bytes` as text, cut at a character boundary.
fn tail(bytes: &[u8], max_bytes: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    text[start..].to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_executable_is_a_spawn_error_naming_the_command() {
        let err = Mmseqs::at("/nonexistent/mmseqs")
            .version()
            .expect_err("a missing file cannot run");
        let msg = err.to_string();
        assert!(msg.contains("/nonexistent/mmseqs version"), "{msg}");
    }

    #[test]
    fn failing_command_reports_status_and_stderr_tail() {
        // `sh version` stands in for an MMseqs2 that fails: sh cannot open a script named "version".
        let err = Mmseqs::at("/bin/sh")
            .version()
            .expect_err("sh exits non-zero");
        let msg = err.to_string();
        assert!(msg.contains("/bin/sh version"), "{msg}");
        assert!(msg.contains("exit status: 2"), "{msg}");
        assert!(msg.contains("cannot open"), "stderr tail missing: {msg}");
    }

    #[test]
    fn tail_keeps_the_end_and_respects_char_boundaries() {
        assert_eq!(tail(b"abcdef", 3), "def");
        assert_eq!(tail("xé".as_bytes(), 1), "");
        assert_eq!(tail(b"  ok \n", 100), "ok");
    }
}
