//! doctor's report: one line per part of the installation, printed as a table or as JSON. Shared
//! by `fusionprot doctor` and `fusionprot-torch doctor`, whose lines the first one includes.

use std::process::ExitCode;

use serde::{Deserialize, Serialize};

/// One line of the report.
#[derive(Debug, Serialize, Deserialize)]
pub struct Check {
    pub part: String,
    /// Version or result when the part works.
    pub ok: Option<String>,
    /// What is wrong and how to fix it, when it does not.
    pub problem: Option<String>,
    /// A missing required part makes doctor exit non-zero.
    pub required: bool,
}

impl Check {
    pub fn new(part: &str, required: bool, result: Result<String, String>) -> Self {
        let (ok, problem) = match result {
            Ok(v) => (Some(v), None),
            Err(e) => (None, Some(e)),
        };
        Self {
            part: part.to_owned(),
            ok,
            problem,
            required,
        }
    }

    fn failed(&self) -> bool {
        self.required && self.problem.is_some()
    }
}

/// Prints the report and turns it into the exit code: non-zero when a required part fails.
///
/// # Errors
/// The JSON cannot be written.
pub fn finish(checks: &[Check], json: bool) -> anyhow::Result<ExitCode> {
    if json {
        println!("{}", serde_json::to_string_pretty(checks)?);
    } else {
        for c in checks {
            let (mark, text) = match (&c.ok, &c.problem) {
                (Some(v), _) => ("ok  ", v.as_str()),
                (None, Some(p)) if c.required => ("FAIL", p.as_str()),
                (None, Some(p)) => ("--  ", p.as_str()),
                (None, None) => ("?   ", ""),
            };
            println!("{mark} {:<16} {text}", c.part);
        }
    }
    let failed: Vec<&str> = checks
        .iter()
        .filter(|c| c.failed())
        .map(|c| c.part.as_str())
        .collect();
    if failed.is_empty() {
        if !json {
            println!("\nall required parts work");
        }
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("doctor: missing or broken: {}", failed.join(", "));
        Ok(ExitCode::FAILURE)
    }
}
