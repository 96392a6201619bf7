//! Talking to a running tracker (`--tracker URL`): JSON in, JSON out, MLflow errors shown as such.

use anyhow::{Result, bail};
use serde_json::Value;

/// POSTs `body` to `url` + `path` and returns the JSON answer.
pub fn post(url: &str, token: Option<&str>, path: &str, body: &Value) -> Result<Value> {
    Ok(send(url, token, path, body)?.into_json()?)
}

/// POSTs `body` and returns the Arrow answer with what its headers say.
pub fn post_arrow(url: &str, token: Option<&str>, path: &str, body: &Value) -> Result<ArrowAnswer> {
    let resp = send(url, token, path, body)?;
    let truncated = resp.header(fusionprot_tracker::api::TRUNCATED_HEADER) == Some("true");
    let warnings = resp
        .header(fusionprot_tracker::api::WARNINGS_HEADER)
        .and_then(|w| serde_json::from_str(w).ok())
        .unwrap_or_default();
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut resp.into_reader(), &mut bytes)?;
    Ok(ArrowAnswer {
        bytes,
        truncated,
        warnings,
    })
}

/// An Arrow IPC answer of `/api/sql` with what its headers say.
pub struct ArrowAnswer {
    pub bytes: Vec<u8>,
    /// The row limit cut the result.
    pub truncated: bool,
    /// Registered datasets the server left out of the query, each with why.
    pub warnings: Vec<String>,
}

fn send(url: &str, token: Option<&str>, path: &str, body: &Value) -> Result<ureq::Response> {
    let full = format!("{}{path}", url.trim_end_matches('/'));
    let mut req = ureq::post(&full).set("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.set("Authorization", &format!("Bearer {t}"));
    }
    match req.send_string(&body.to_string()) {
        Ok(resp) => Ok(resp),
        Err(ureq::Error::Status(code, resp)) => {
            let text = resp.into_string().unwrap_or_default();
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            match (v.get("error_code"), v.get("message")) {
                (Some(c), Some(m)) => bail!(
                    "{full}: {code} {}: {}",
                    c.as_str().unwrap_or("?"),
                    m.as_str().unwrap_or("?")
                ),
                _ => bail!("{full}: HTTP {code}: {text}"),
            }
        }
        Err(e) => bail!("{full}: {e}"),
    }
}
