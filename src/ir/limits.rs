//! Size limits for tensors a model declares or computes: checked element counts and a cap on the
//! bytes of any one tensor, refused by name before anything is allocated. The cap is 4 GiB unless
//! `DNAS_MAX_TENSOR_BYTES` says otherwise (bytes; a suffix K, M or G is read as KiB, MiB, GiB).

use std::sync::OnceLock;

use anyhow::{anyhow, bail, Result};

/// The cap when `DNAS_MAX_TENSOR_BYTES` is not set.
pub const DEFAULT_MAX_TENSOR_BYTES: u64 = 4 << 30;

/// The cap on the bytes of any one tensor (read once from the environment).
pub fn max_tensor_bytes() -> u64 {
    static CAP: OnceLock<u64> = OnceLock::new();
    *CAP.get_or_init(|| match std::env::var("DNAS_MAX_TENSOR_BYTES") {
        Ok(s) => parse_bytes(&s).unwrap_or_else(|| {
            eprintln!("warning: DNAS_MAX_TENSOR_BYTES='{s}' is not a size (e.g. 4G, 512M, 1048576); using 4 GiB");
            DEFAULT_MAX_TENSOR_BYTES
        }),
        Err(_) => DEFAULT_MAX_TENSOR_BYTES,
    })
}

/// "1048576", "512K", "64M", "4G" → bytes.
pub fn parse_bytes(s: &str) -> Option<u64> {
    let s = s.trim();
    let (num, shift) = match s.chars().last()? {
        'K' | 'k' => (&s[..s.len() - 1], 10),
        'M' | 'm' => (&s[..s.len() - 1], 20),
        'G' | 'g' => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    num.parse::<u64>().ok()?.checked_mul(1 << shift)
}

/// The element count of `dims`, or `None` when it overflows.
pub fn numel(dims: &[usize]) -> Option<usize> {
    dims.iter().try_fold(1usize, |n, &d| n.checked_mul(d))
}

/// The element count of `dims` for a tensor of `elem_bytes`-byte elements, or an error saying
/// why it cannot exist here (overflow, or more bytes than the cap). `what` names it.
pub fn check_size(what: &str, dims: &[usize], elem_bytes: usize) -> Result<usize> {
    let n = numel(dims).ok_or_else(|| anyhow!("{what} has shape {dims:?}, whose element count overflows"))?;
    let bytes = (n as u128) * (elem_bytes as u128);
    let cap = max_tensor_bytes();
    if bytes > cap as u128 {
        bail!(
            "{what} has shape {dims:?}: {} bytes, above the tensor size cap of {cap} bytes (set DNAS_MAX_TENSOR_BYTES to raise it)",
            bytes
        );
    }
    Ok(n)
}

/// `i64` dimensions (from a file) to `usize`, refusing negative ones; `what` names the source.
pub fn dims_from_i64(what: &str, dims: &[i64]) -> Result<Vec<usize>> {
    dims.iter().map(|&d| usize::try_from(d).map_err(|_| anyhow!("{what} has negative dimension {d} in {dims:?}"))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_counts_are_checked() {
        assert_eq!(numel(&[2, 3, 4]), Some(24));
        assert_eq!(numel(&[]), Some(1));
        assert_eq!(numel(&[1 << 32, 1 << 32, 1 << 32]), None);
        assert!(check_size("t", &[1 << 32, 1 << 32, 1 << 32], 4).unwrap_err().to_string().contains("overflows"));
        assert!(check_size("t", &[1 << 30, 1 << 30], 4).unwrap_err().to_string().contains("cap"));
        assert_eq!(check_size("t", &[2, 2], 4).unwrap(), 4);
    }

    #[test]
    fn sizes_parse_with_suffixes() {
        assert_eq!(parse_bytes("64M"), Some(64 << 20));
        assert_eq!(parse_bytes("4G"), Some(4 << 30));
        assert_eq!(parse_bytes("1000"), Some(1000));
        assert_eq!(parse_bytes("lots"), None);
        assert_eq!(parse_bytes("99999999999999G"), None);
    }
}
