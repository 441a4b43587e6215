//! Checkpoints of block supernets kept per block (`blocks/<i>/ckpt/`), not per training group:
//! a block started with others and requeued alone (or the reverse) resumes where it stopped.
//!
//! Blocks that train together share the loop — the step, the data order, the teacher forward —
//! but nothing else: each block's parameters, optimizer moments and path choices are its own, and
//! its trajectory does not depend on which blocks train beside it. So a group's checkpoint splits
//! exactly into one checkpoint per block (the tensors under `model.blocks.<i>.` and
//! `optim.blocks.<i>.`, the loop position, the epoch reports with only that block's held-out
//! loss), and blocks whose checkpoints stand at the same step merge back into one group. Blocks
//! at different steps train as separate groups ([`group_by_step`]); a process killed between two
//! blocks' writes leaves them at different steps, each checkpoint complete.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use tch::Tensor as T;

use crate::train::checkpoint::{self, CheckpointMeta};
use crate::train::trainer::Loaded;
use crate::train::{CheckpointStore, FitSummary};

/// One block of a group: its index, its name (the key of its held-out loss in the epoch
/// reports) and its directory (`blocks/<i>`, checkpoints in its `ckpt/`).
#[derive(Clone, Debug)]
pub struct BlockSlot {
    pub index: usize,
    pub name: String,
    pub dir: PathBuf,
}

/// The checkpoint store of a group of blocks training together.
pub struct PerBlock {
    pub blocks: Vec<BlockSlot>,
}

/// The step of the checkpoint in `block_dir`, without reading its tensors.
pub fn checkpoint_step(block_dir: &Path) -> Result<Option<usize>> {
    let p = checkpoint::dir(block_dir).join("checkpoint.json");
    if !p.exists() {
        return Ok(None);
    }
    let meta: CheckpointMeta =
        serde_json::from_str(&std::fs::read_to_string(&p).with_context(|| format!("cannot read '{}'", p.display()))?)
            .with_context(|| format!("'{}' is not a valid checkpoint", p.display()))?;
    Ok(Some(meta.step))
}

/// Splits `blocks` into groups whose checkpoints stand at the same step (`None` = not started),
/// in block order within a group; groups ordered by step.
pub fn group_by_step(blocks: &[BlockSlot]) -> Result<Vec<(Option<usize>, Vec<BlockSlot>)>> {
    let mut groups: BTreeMap<Option<usize>, Vec<BlockSlot>> = BTreeMap::new();
    for b in blocks {
        groups.entry(checkpoint_step(&b.dir)?).or_default().push(b.clone());
    }
    Ok(groups.into_iter().collect())
}

fn prefix(i: usize) -> String {
    format!("blocks.{i}.")
}

/// Whether a checkpoint tensor (`model.…`, `optim.…`, `ema.…`) belongs to block `i`.
fn belongs(key: &str, i: usize) -> bool {
    key.split_once('.').is_some_and(|(_, rest)| rest.starts_with(&prefix(i)))
}

/// `summary` with each epoch report's held-out losses restricted to `names`.
fn summary_for(summary: &serde_json::Value, names: &[&str]) -> serde_json::Value {
    let mut s = summary.clone();
    if let Some(reports) = s.get_mut("epoch_reports").and_then(|r| r.as_array_mut()) {
        for r in reports {
            if let Some(map) = r.pointer_mut("/eval/held_out_mse").and_then(|m| m.as_object_mut()) {
                map.retain(|k, _| names.contains(&k.as_str()));
            }
        }
    }
    s
}

impl CheckpointStore for PerBlock {
    fn save(&self, meta: &CheckpointMeta, tensors: &[(String, T)]) -> Result<()> {
        let owned = tensors.iter().filter(|(k, _)| !self.blocks.iter().any(|b| belongs(k, b.index))).count();
        if owned > 0 {
            bail!("{owned} checkpoint tensors belong to no block of the group (a supernet tensor outside 'blocks.<i>.')");
        }
        for b in &self.blocks {
            let mine: Vec<(String, T)> =
                tensors.iter().filter(|(k, _)| belongs(k, b.index)).map(|(k, t)| (k.clone(), t.shallow_clone())).collect();
            let mut extra = meta.extra.clone();
            extra["summary"] = summary_for(&meta.extra["summary"], &[b.name.as_str()]);
            extra["block"] = serde_json::json!(b.index);
            checkpoint::save(&b.dir, &CheckpointMeta { extra, ..meta.clone() }, &mine)?;
        }
        Ok(())
    }

    fn load(&self) -> Result<Option<Loaded>> {
        let mut parts = Vec::new();
        for b in &self.blocks {
            parts.push((b, checkpoint::load(&b.dir)?));
        }
        if parts.iter().all(|(_, p)| p.is_none()) {
            return Ok(None);
        }
        let steps: Vec<String> = parts
            .iter()
            .map(|(b, p)| format!("block {}: {}", b.index, p.as_ref().map_or("none".into(), |(m, _)| m.step.to_string())))
            .collect();
        let first = parts.iter().find_map(|(_, p)| p.as_ref()).map(|(m, _)| m.step);
        if parts.iter().any(|(_, p)| p.as_ref().map(|(m, _)| m.step) != first) {
            bail!("the blocks of this group have checkpoints at different steps ({}); train them apart", steps.join(", "));
        }
        let mut merged: Option<CheckpointMeta> = None;
        let mut tensors = HashMap::new();
        let mut files = Vec::new();
        let mut summary: Option<FitSummary> = None;
        for (b, p) in parts {
            let (meta, t) = p.expect("checked above: every block has one");
            files.push(checkpoint::dir(&b.dir).join(&meta.tensors).display().to_string());
            for (k, v) in t {
                if !belongs(&k, b.index) {
                    bail!("checkpoint '{}' holds '{k}', which is not block {}'s", files.last().unwrap(), b.index);
                }
                tensors.insert(k, v);
            }
            let s: FitSummary = serde_json::from_value(meta.extra["summary"].clone()).unwrap_or_default();
            summary = Some(match summary {
                None => s,
                Some(mut acc) => {
                    acc.seconds = acc.seconds.max(s.seconds);
                    acc.data_wait_seconds = acc.data_wait_seconds.max(s.data_wait_seconds);
                    for (a, r) in acc.epoch_reports.iter_mut().zip(&s.epoch_reports) {
                        if let (Some(into), Some(from)) = (
                            a.pointer_mut("/eval/held_out_mse").and_then(|m| m.as_object_mut()),
                            r.pointer("/eval/held_out_mse").and_then(|m| m.as_object()),
                        ) {
                            into.extend(from.iter().map(|(k, v)| (k.clone(), v.clone())));
                        }
                    }
                    acc
                }
            });
            merged.get_or_insert(meta);
        }
        let mut meta = merged.expect("at least one checkpoint");
        meta.extra["summary"] = serde_json::to_value(summary.unwrap_or_default())?;
        if let Some(o) = meta.extra.as_object_mut() {
            o.remove("block");
        }
        Ok(Some((meta, tensors, files.join(", "))))
    }

    fn holds(&self) -> bool {
        self.blocks.iter().any(|b| checkpoint::dir(&b.dir).join("checkpoint.json").exists())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(dir: &Path, i: usize) -> BlockSlot {
        BlockSlot { index: i, name: format!("s{i}"), dir: dir.join(i.to_string()) }
    }

    fn meta(step: usize) -> CheckpointMeta {
        let summary = FitSummary {
            steps: step,
            seconds: 1.0,
            epoch_reports: vec![serde_json::json!({"epoch": 1, "eval": {"held_out_mse": {"s0": 0.5, "s1": 0.25}}})],
            ..Default::default()
        };
        CheckpointMeta {
            step,
            epoch: 0,
            batch: step,
            tensors: format!("state-{step}.safetensors"),
            config: serde_json::json!({"lr": 1}),
            extra: serde_json::json!({"optimizer_steps": step, "summary": summary, "learner": null}),
            sha256: None,
        }
    }

    fn tensors() -> Vec<(String, T)> {
        vec![
            ("model.blocks.0.w".into(), T::from_slice(&[1.0f32, 2.0])),
            ("optim.blocks.0.w.0".into(), T::from_slice(&[3.0f32])),
            ("model.blocks.1.w".into(), T::from_slice(&[4.0f32])),
            ("optim.blocks.1.w.count".into(), T::from(7i64)),
        ]
    }

    #[test]
    fn a_group_checkpoint_splits_per_block_and_merges_back() {
        let d = tempfile::tempdir().unwrap();
        let both = PerBlock { blocks: vec![slot(d.path(), 0), slot(d.path(), 1)] };
        assert!(!both.holds());
        both.save(&meta(5), &tensors()).unwrap();
        // Each block alone: only its tensors and its own held-out loss.
        let one = PerBlock { blocks: vec![slot(d.path(), 1)] };
        let (m, t, _) = one.load().unwrap().unwrap();
        assert_eq!(m.step, 5);
        let mut keys: Vec<_> = t.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["model.blocks.1.w", "optim.blocks.1.w.count"]);
        assert_eq!(m.extra["summary"]["epoch_reports"][0]["eval"]["held_out_mse"], serde_json::json!({"s1": 0.25}));
        // Both again: everything, the held-out losses merged.
        let (m, t, files) = both.load().unwrap().unwrap();
        assert_eq!(t.len(), 4);
        assert_eq!(t["model.blocks.0.w"].f_double_value(&[1]).unwrap(), 2.0);
        assert_eq!(m.extra["summary"]["epoch_reports"][0]["eval"]["held_out_mse"], serde_json::json!({"s0": 0.5, "s1": 0.25}));
        assert!(files.contains("0/ckpt/state-5") && files.contains("1/ckpt/state-5"), "{files}");
    }

    #[test]
    fn blocks_at_different_steps_are_grouped_apart_and_refused_together() {
        let d = tempfile::tempdir().unwrap();
        PerBlock { blocks: vec![slot(d.path(), 0), slot(d.path(), 1)] }.save(&meta(5), &tensors()).unwrap();
        let t1: Vec<(String, T)> = tensors().into_iter().filter(|(k, _)| belongs(k, 1)).collect();
        PerBlock { blocks: vec![slot(d.path(), 1)] }.save(&meta(9), &t1).unwrap();
        let slots = [slot(d.path(), 0), slot(d.path(), 1), slot(d.path(), 2)];
        let groups = group_by_step(&slots).unwrap();
        let shape: Vec<(Option<usize>, Vec<usize>)> = groups.iter().map(|(s, g)| (*s, g.iter().map(|b| b.index).collect())).collect();
        assert_eq!(shape, [(None, vec![2]), (Some(5), vec![0]), (Some(9), vec![1])]);
        let err = PerBlock { blocks: slots[..2].to_vec() }.load().unwrap_err().to_string();
        assert!(err.contains("different steps") && err.contains("block 0: 5") && err.contains("block 1: 9"), "{err}");
    }

    #[test]
    fn a_tensor_of_no_block_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let mut t = tensors();
        t.push(("model.head.w".into(), T::from_slice(&[0.0f32])));
        let err = PerBlock { blocks: vec![slot(d.path(), 0), slot(d.path(), 1)] }.save(&meta(1), &t).unwrap_err().to_string();
        assert!(err.contains("belong to no block"), "{err}");
    }
}
