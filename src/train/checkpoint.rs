//! Checkpoints: `ckpt/state-{step}.safetensors` (model parameters and buffers, optimizer state,
//! EMA shadow — PyTorch reads them with `safetensors.torch.load_file`) and `ckpt/checkpoint.json`
//! naming it. The tensor file is written first (to a temporary name, then renamed), the JSON last
//! and atomically, so a process killed at any moment leaves the previous checkpoint intact.
//! No RNG state needs saving: every random choice is a function of (seed, position), see
//! [`crate::util::Rng`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};
use tch::Tensor as T;

use crate::util::write_atomic;

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CheckpointMeta {
    /// Optimizer steps completed.
    pub step: usize,
    pub epoch: usize,
    /// Batches of `epoch` completed.
    pub batch: usize,
    pub tensors: String,
    /// The training configuration, to refuse a resume with different settings.
    pub config: serde_json::Value,
    /// Data loader time spent so far and other counters carried across resumes.
    #[serde(default)]
    pub extra: serde_json::Value,
    /// SHA-256 of the tensor file, set by [`save`]: a bit flip or a partial copy of the file is
    /// refused at resume instead of silently training on. Absent in older checkpoints.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
}

/// A run directory whose checkpoints live in its `ckpt/` (the default store of `fit`).
pub struct Dir(pub PathBuf);

pub fn dir(run: &Path) -> PathBuf {
    run.join("ckpt")
}

/// Writes tensors (contiguous CPU copies) to a safetensors file atomically.
pub fn write_tensors(path: &Path, tensors: &[(String, T)]) -> Result<()> {
    let cpu: Vec<(String, T)> =
        tensors.iter().map(|(k, t)| Ok((k.clone(), t.detach().f_to_device(tch::Device::Cpu)?.f_contiguous()?))).collect::<Result<_>>()?;
    let tmp = path.with_extension(format!("tmp-{}", crate::util::unique_suffix()));
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).with_context(|| format!("cannot create '{}'", d.display()))?;
    }
    T::write_safetensors(&cpu, &tmp).with_context(|| format!("cannot write '{}'", tmp.display()))?;
    std::fs::File::open(&tmp).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync '{}'", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename '{}'", tmp.display()))?;
    Ok(())
}

pub fn read_tensors(path: &Path) -> Result<HashMap<String, T>> {
    Ok(T::read_safetensors(path).with_context(|| format!("cannot read the safetensors file '{}'", path.display()))?.into_iter().collect())
}

fn file_sha256(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut f = std::fs::File::open(path).with_context(|| format!("cannot open '{}'", path.display()))?;
    let mut h = Sha256::new();
    std::io::copy(&mut f, &mut h).with_context(|| format!("cannot read '{}'", path.display()))?;
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

pub fn save(run: &Path, meta: &CheckpointMeta, tensors: &[(String, T)]) -> Result<()> {
    let d = dir(run);
    let path = d.join(&meta.tensors);
    write_tensors(&path, tensors)?;
    let meta = CheckpointMeta { sha256: Some(file_sha256(&path)?), ..meta.clone() };
    write_atomic(&d.join("checkpoint.json"), serde_json::to_string_pretty(&meta)?.as_bytes())?;
    // Older tensor files are no longer referenced.
    if let Ok(entries) = std::fs::read_dir(&d) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.starts_with("state-") && name.ends_with(".safetensors") && name != meta.tensors {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(())
}

/// The latest checkpoint of `run`, if any.
pub fn load(run: &Path) -> Result<Option<(CheckpointMeta, HashMap<String, T>)>> {
    let p = dir(run).join("checkpoint.json");
    if !p.exists() {
        return Ok(None);
    }
    let meta: CheckpointMeta =
        serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| format!("cannot read '{}'", p.display()))?)
            .with_context(|| format!("'{}' is not a valid checkpoint", p.display()))?;
    let path = dir(run).join(&meta.tensors);
    if let Some(want) = &meta.sha256 {
        let got = file_sha256(&path)?;
        anyhow::ensure!(
            &got == want,
            "checkpoint tensors '{}' are corrupted: SHA-256 {got}, but '{}' recorded {want} (a bit flip or a partial copy); delete {} to start over",
            path.display(),
            p.display(),
            dir(run).display()
        );
    }
    let tensors = read_tensors(&path)?;
    Ok(Some((meta, tensors)))
}
