//! Headless Chromium for the dashboard's browser tests: a page's DOM after its scripts ran,
//! screenshots, and attribute values read from the DOM.

use std::path::{Path, PathBuf};
use std::process::Command;

/// Debian's chromium-headless-shell (or chromium), where installed.
pub fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium-headless-shell", "/usr/bin/chromium"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

/// `url` without the live event stream: an open stream is a fetch that never ends, and headless
/// Chromium's virtual time waits for fetches to end.
pub fn still(url: &str) -> String {
    if url.contains("live=") {
        url.to_owned()
    } else {
        format!("{url}&live=0")
    }
}

/// Headless Chromium on `url` (without the live stream) with `action` (`--dump-dom`,
/// `--screenshot=FILE`), waiting under virtual time for the page's fetches; a page that never
/// settles fails in a minute, not at the test harness's limit.
pub fn chromium_on(browser: &Path, url: &str, action: &str) -> std::process::Output {
    Command::new("timeout")
        .arg("60")
        .arg(browser)
        .args([
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--window-size=1280,900",
            "--virtual-time-budget=20000",
            action,
            &still(url),
        ])
        .output()
        .expect("chromium")
}

/// The page at `url` after its scripts ran, as chromium serialises its DOM.
pub fn dom(browser: &Path, url: &str) -> String {
    let out = chromium_on(browser, url, "--dump-dom");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        text.contains("data-ready=\"1\""),
        "{url}: the page did not finish\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

pub fn screenshot(browser: &Path, url: &str, file: &Path) {
    let out = chromium_on(browser, url, &format!("--screenshot={}", file.display()));
    assert!(
        file.metadata().is_ok_and(|m| m.len() > 10_000),
        "no screenshot of {url}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Text of the elements of the serialised DOM that carry `attr="…"`, in order.
pub fn attrs(dom: &str, attr: &str) -> Vec<String> {
    dom.split(&format!("{attr}=\""))
        .skip(1)
        .map(|s| s.split('"').next().unwrap_or_default().to_owned())
        .collect()
}
