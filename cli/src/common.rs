//! What both binaries (`fusionprot` and `fusionprot-torch`) do around a command: logging to
//! stderr and the one-line error report.

/// The error and its causes joined by `: `, each said once: a library error that already ends
/// with its source's words (`{path}: {source}`) is not followed by them again.
pub fn describe(err: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if out.ends_with(&text) {
            continue;
        }
        if !out.is_empty() {
            out.push_str(": ");
        }
        out.push_str(&text);
    }
    out
}

/// A command's result as the process's exit code; an error is printed first, on one line.
pub fn exit_code(result: anyhow::Result<std::process::ExitCode>) -> std::process::ExitCode {
    result.unwrap_or_else(|err| {
        eprintln!("error: {}", describe(&err));
        std::process::ExitCode::FAILURE
    })
}

/// A reader that closes our stdout early (`fusionprot query … | head`) ends the command quietly
/// with status 141 (128 + SIGPIPE, what a shell reports for tools killed by it), instead of
/// `println!`'s panic and backtrace. SIGPIPE itself stays ignored (Rust's default), so a socket
/// closed under the server or a client is an error to handle, never a silent death.
pub fn quiet_on_closed_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(141);
        }
        default(info);
    }));
}

/// Writes `bytes` to stdout; a reader that went away (`| head`) ends the process quietly with
/// status 141, as [`quiet_on_closed_stdout`] does for `println!`.
///
/// # Errors
/// Any other write error.
#[allow(dead_code)] // fusionprot-torch writes no bulk output to stdout
pub fn write_stdout(bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(141),
        other => other,
    }
}

/// Logs go to stderr, `info` by default; `RUST_LOG` overrides.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
