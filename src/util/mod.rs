//! Small shared helpers.

use std::io::Write;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// Writes a file atomically: a temporary file in the same directory, fsync, rename.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create directory '{}'", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp-{}", path.file_name().and_then(|s| s.to_str()).unwrap_or("out"), unique_suffix()));
    let mut f = std::fs::File::create(&tmp).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    f.write_all(bytes).and_then(|_| f.sync_all()).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename '{}' to '{}'", tmp.display(), path.display()))?;
    Ok(())
}

/// A name part no other process on any host sharing the directory will pick: host, pid and 64
/// random bits (temporary files of atomic writes, moved-aside directories).
pub fn unique_suffix() -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0));
    format!("{}-{}-{:016x}", lock::hostname(), std::process::id(), h.finish())
}

/// Differences between two JSON values, as field paths (`recipe.epochs: 4 vs 8`).
pub fn differences(path: &str, a: &serde_json::Value, b: &serde_json::Value, out: &mut Vec<String>) {
    match (a, b) {
        (serde_json::Value::Object(x), serde_json::Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                differences(&p, x.get(k).unwrap_or(&serde_json::Value::Null), y.get(k).unwrap_or(&serde_json::Value::Null), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} here vs {b} asked")),
        _ => {}
    }
}

/// `value` written to `path` on first use; later uses must ask for the same (else an error
/// naming every differing field).
pub fn create_or_match(path: &Path, value: &serde_json::Value, what: &str) -> Result<()> {
    if path.exists() {
        let have = read_json(path)?;
        let mut diff = Vec::new();
        differences("", &have, value, &mut diff);
        if !diff.is_empty() {
            bail!(
                "'{}' was made with other {what} settings: {} (use another directory, or the same settings)",
                path.display(),
                diff.join("; ")
            );
        }
        return Ok(());
    }
    write_atomic(path, serde_json::to_string_pretty(value)?.as_bytes())
}

/// Lower-case hex SHA-256 of `bytes` (teacher and artifact hashes, content-named files).
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// `7000000`, `7M`, `7.5m`, `500k`, `0.4G` → a count.
pub fn parse_count(s: &str) -> std::result::Result<u64, String> {
    let t = s.trim();
    let (num, mul) = match t.chars().last() {
        Some('k' | 'K') => (&t[..t.len() - 1], 1e3),
        Some('m' | 'M') => (&t[..t.len() - 1], 1e6),
        Some('g' | 'G') => (&t[..t.len() - 1], 1e9),
        _ => (t, 1.0),
    };
    let v: f64 = num.parse().map_err(|_| format!("'{s}' is not a count (e.g. 7000000, 7M, 500k)"))?;
    if !(v >= 0.0 && v.is_finite()) {
        return Err(format!("'{s}' must be ≥ 0"));
    }
    Ok((v * mul).round() as u64)
}

pub mod lock;
pub mod malloc;
pub mod rng;
pub mod schema;
pub mod signals;
pub use rng::Rng;

/// A JSON file, with errors naming it.
pub fn read_json(path: &Path) -> Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read '{}'", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("'{}' is not valid JSON", path.display()))
}

/// Peak resident set size of this process in MiB (Linux `VmHWM`; 0 elsewhere). Benchmarks print it.
pub fn peak_rss_mib() -> f64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        / 1024.0
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_with_suffixes() {
        assert_eq!(super::parse_count("7M"), Ok(7_000_000));
        assert_eq!(super::parse_count("7.5m"), Ok(7_500_000));
        assert_eq!(super::parse_count("500k"), Ok(500_000));
        assert_eq!(super::parse_count("1234"), Ok(1234));
        assert!(super::parse_count("lots").is_err());
        assert!(super::parse_count("-1M").is_err());
    }

    use super::*;

    #[test]
    fn create_or_match_names_the_differing_field() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("study.json");
        create_or_match(&p, &serde_json::json!({"recipe": {"epochs": 4, "batch": 128}}), "study").unwrap();
        create_or_match(&p, &serde_json::json!({"recipe": {"epochs": 4, "batch": 128}}), "study").unwrap();
        let e = create_or_match(&p, &serde_json::json!({"recipe": {"epochs": 8, "batch": 128}}), "study").unwrap_err().to_string();
        assert!(e.contains("recipe.epochs: 4 here vs 8 asked"), "{e}");
    }
}
