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

/// Logs go to stderr, `info` by default; `RUST_LOG` overrides.
pub fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
