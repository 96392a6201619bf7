//! Progress bars on stderr; indicatif hides them when stderr is not a terminal.

use indicatif::{ProgressBar, ProgressStyle};

/// A bar counting `unit`, with a message slot for the current phase.
pub fn bar(unit: &str) -> ProgressBar {
    let bar = ProgressBar::new(0);
    let template =
        format!("{{msg:>28}} [{{bar:30}}] {{pos}}/{{len}} {unit} ({{per_sec}}, eta {{eta}})");
    if let Ok(style) = ProgressStyle::with_template(&template) {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}
