//! One searchable layer choice, written as a canonical string: `ir_k5_e6` is an inverted-residual
//! MBConv with a 5×5 depthwise kernel and expansion 6 (squeeze-excite and swish as the space
//! declares); `skip` is the identity (only where the layer's input and output shapes agree).
//! Parsing and printing are exact inverses.

use std::fmt;
use std::str::FromStr;

use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LayerOp {
    MbConv { kernel: usize, expand: usize },
    Skip,
}

impl LayerOp {
    pub fn is_skip(&self) -> bool {
        matches!(self, LayerOp::Skip)
    }
}

impl fmt::Display for LayerOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LayerOp::MbConv { kernel, expand } => write!(f, "ir_k{kernel}_e{expand}"),
            LayerOp::Skip => write!(f, "skip"),
        }
    }
}

impl FromStr for LayerOp {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> Result<LayerOp> {
        if s == "skip" {
            return Ok(LayerOp::Skip);
        }
        let bad = || anyhow!("'{s}' is not a layer op (expected 'skip' or 'ir_k<odd kernel>_e<expansion>', e.g. 'ir_k5_e6')");
        let rest = s.strip_prefix("ir_k").ok_or_else(bad)?;
        let (k, e) = rest.split_once("_e").ok_or_else(bad)?;
        let digits = |t: &str| !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) && !t.starts_with('0');
        if !digits(k) || !digits(e) {
            return Err(bad());
        }
        let (kernel, expand): (usize, usize) = (k.parse()?, e.parse()?);
        if kernel % 2 == 0 || kernel > 15 || expand == 0 || expand > 16 {
            bail!("'{s}': the kernel must be odd and ≤ 15, the expansion 1..=16");
        }
        Ok(LayerOp::MbConv { kernel, expand })
    }
}

impl Serialize for LayerOp {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for LayerOp {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<LayerOp, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_print_round_trip() {
        for k in [1, 3, 5, 7, 9] {
            for e in [1, 3, 4, 6] {
                let op = LayerOp::MbConv { kernel: k, expand: e };
                assert_eq!(op.to_string().parse::<LayerOp>().unwrap(), op);
            }
        }
        assert_eq!("skip".parse::<LayerOp>().unwrap(), LayerOp::Skip);
        for bad in ["ir_k4_e6", "ir_k3", "k3_e6", "ir_k03_e6", "ir_k3_e0", "ir_k3_e6x", "Skip", ""] {
            assert!(bad.parse::<LayerOp>().is_err(), "{bad} parsed");
        }
    }
}
