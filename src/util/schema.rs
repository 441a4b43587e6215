//! JSON files checked against the built-in schemas: every violation reported with its field
//! path (`blocks[2].out`), and load errors that name the file. Shared by every file kind
//! (spaces, architectures, budgets).

use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};

/// `/blocks/2/out` → `blocks[2].out`.
fn field_path(pointer: &str) -> String {
    let mut out = String::new();
    for seg in pointer.split('/').filter(|s| !s.is_empty()) {
        if seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(seg);
        }
    }
    if out.is_empty() {
        "(top level)".into()
    } else {
        out
    }
}

/// Validates `value` against `schema`; every violation is reported with its field path.
pub fn check_schema(value: &serde_json::Value, schema: &str, what: &str) -> Result<()> {
    let schema: serde_json::Value = serde_json::from_str(schema).context("built-in schema")?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| anyhow!("built-in schema: {e}"))?;
    let errors: Vec<String> =
        validator.iter_errors(value).map(|e| format!("  {}: {}", field_path(e.instance_path().as_str()), e.masked())).collect();
    if !errors.is_empty() {
        bail!("{what} does not follow its schema:\n{}", errors.join("\n"));
    }
    Ok(())
}

/// Parses JSON `text` checked against `schema` into `T` (`what` names the kind in errors).
pub fn parse_checked<T: serde::de::DeserializeOwned>(text: &str, schema: &str, what: &str) -> Result<T> {
    let value: serde_json::Value = serde_json::from_str(text).context("not valid JSON")?;
    check_schema(&value, schema, "the file")?;
    serde_json::from_value(value).with_context(|| format!("not {what}"))
}

/// Reads `path` and parses it with `parse`; errors name the file.
pub fn load_with<T>(path: &Path, what: &str, parse: fn(&str) -> Result<T>) -> Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {what} '{}'", path.display()))?;
    parse(&text).with_context(|| format!("{what} '{}'", path.display()))
}
