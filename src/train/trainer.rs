//! The one training loop: teacher training, supernet blocks and the child's retraining all run
//! through [`fit`] with a different [`Learner`].
//!
//! Per step: batch from the loader → `Learner::loss` → backward → optional gradient clipping →
//! optimizer step with the scheduled learning rate → optional EMA update. A non-finite loss stops
//! the run naming the step. Progress bar (loss, lr, images/s, ETA), a JSON-lines log
//! (`train.jsonl`), checkpoints every `ckpt_every` steps and at each epoch end; `resume` continues
//! from the last checkpoint exactly (bit-identical weights on the CPU).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::{Deserialize, Serialize};
use tch::Tensor as T;

use super::checkpoint::{self, CheckpointMeta};
use super::optim::{OptimConfig, Optimizer};
use super::schedule::{Decay, Schedule};
use crate::data::{Batch, Loader};

/// What the loop trains.
pub trait Learner {
    /// (name, tensor, weight decay?) of the trained parameters.
    fn parameters(&self) -> Vec<(String, T, bool)>;
    /// Everything a checkpoint holds (parameters and buffers).
    fn state(&self) -> Vec<(String, T)>;
    fn load_state(&mut self, named: &HashMap<String, T>) -> Result<()>;
    /// Forward pass in training mode and the loss to minimise. `step` is the global step (for
    /// seeded per-step choices such as supernet path sampling).
    fn loss(&mut self, batch: &Batch, step: usize) -> Result<T>;
    /// Per-parameter learning-rate multipliers, aligned with [`Learner::parameters`] (empty =
    /// all 1). Supernets of several blocks trained together give each block its own rate.
    fn lr_scales(&self) -> Vec<f64> {
        Vec::new()
    }
    /// Which parameters `step` trains, aligned with [`Learner::parameters`] (empty = all). A
    /// supernet trains only the sampled paths; the others must not move.
    fn active(&self, _step: usize) -> Vec<bool> {
        Vec::new()
    }
    /// Named parts of the loss averaged since the last call (e.g. each block's MSE when several
    /// supernet blocks train together), written into the `train.jsonl` step lines as `parts`.
    /// `Null` (the default) when the loss has no parts.
    fn take_loss_parts(&mut self) -> Result<serde_json::Value> {
        Ok(serde_json::Value::Null)
    }
    /// State that is not a tensor (e.g. Cream's board of best paths), saved in every checkpoint
    /// and handed back on resume. `Null` (the default) when there is none.
    fn extra_state(&self) -> serde_json::Value {
        serde_json::Value::Null
    }
    fn load_extra_state(&mut self, _state: &serde_json::Value) -> Result<()> {
        Ok(())
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainConfig {
    pub epochs: usize,
    pub lr: f64,
    pub weight_decay: f64,
    pub optim: OptimConfig,
    pub decay: Decay,
    pub warmup_epochs: f64,
    /// EMA decay of the weights (e.g. 0.999); `None` = off.
    pub ema: Option<f64>,
    /// Clip the global gradient norm to this value.
    pub clip: Option<f64>,
    pub ckpt_every: usize,
    pub log_every: usize,
    /// Stop after this many steps in total (smoke runs, tests).
    pub max_steps: Option<usize>,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FitSummary {
    pub steps: usize,
    pub epochs: usize,
    pub seconds: f64,
    /// Seconds the loop was blocked waiting for the data loader.
    pub data_wait_seconds: f64,
    pub final_loss: f64,
    pub images: usize,
    pub skipped_samples: usize,
    pub epoch_reports: Vec<serde_json::Value>,
}

/// Exponential moving average of the learner's state (parameters and buffers).
struct Ema {
    decay: f64,
    shadow: Vec<(String, T)>,
}

impl Ema {
    fn new(decay: f64, state: &[(String, T)]) -> Ema {
        Ema { decay, shadow: state.iter().map(|(k, t)| (k.clone(), t.detach().copy())).collect() }
    }
    fn update(&mut self, state: &[(String, T)]) -> Result<()> {
        let _g = tch::no_grad_guard();
        for ((_, s), (_, t)) in self.shadow.iter_mut().zip(state) {
            let _ = s.f_mul_scalar_(self.decay)?.f_add_(&(t.detach() * (1.0 - self.decay)))?;
        }
        Ok(())
    }
}

fn swap_in<L: Learner>(learner: &mut L, tensors: &[(String, T)]) -> Result<Vec<(String, T)>> {
    let current: Vec<(String, T)> = learner.state().iter().map(|(k, t)| (k.clone(), t.detach().copy())).collect();
    learner.load_state(&tensors.iter().map(|(k, t)| (k.clone(), t.shallow_clone())).collect())?;
    Ok(current)
}

/// A checkpoint read back: its metadata, its tensors by name, and the file(s) they came from.
pub type Loaded = (CheckpointMeta, HashMap<String, T>, String);

/// Where [`fit`] keeps its checkpoints. The default is one directory ([`checkpoint::Dir`]); the
/// block supernets split theirs per block (`search::block_checkpoints`), so a block trained in
/// one group resumes in any other.
pub trait CheckpointStore {
    /// The latest checkpoint, with the name of its tensor file for messages.
    fn load(&self) -> Result<Option<Loaded>>;
    fn save(&self, meta: &CheckpointMeta, tensors: &[(String, T)]) -> Result<()>;
    /// Whether any checkpoint is there (a fresh run refuses to overwrite one).
    fn holds(&self) -> bool;
}

impl CheckpointStore for checkpoint::Dir {
    fn load(&self) -> Result<Option<Loaded>> {
        Ok(checkpoint::load(&self.0)?.map(|(m, t)| {
            let file = checkpoint::dir(&self.0).join(&m.tensors).display().to_string();
            (m, t, file)
        }))
    }
    fn save(&self, meta: &CheckpointMeta, tensors: &[(String, T)]) -> Result<()> {
        checkpoint::save(&self.0, meta, tensors)
    }
    fn holds(&self) -> bool {
        checkpoint::dir(&self.0).join("checkpoint.json").exists()
    }
}

/// Trains `learner` on `loader` into `run` (checkpoints, `train.jsonl`, `final.safetensors`).
/// `on_epoch(learner, epoch)` runs after each epoch (evaluation); with EMA on it sees the EMA
/// weights, which are also what `final.safetensors` holds and what the learner ends with.
pub fn fit<L: Learner>(
    learner: &mut L,
    loader: &Loader,
    cfg: &TrainConfig,
    run: &Path,
    resume: bool,
    quiet: bool,
    on_epoch: &mut dyn FnMut(&mut L, usize) -> Result<serde_json::Value>,
) -> Result<FitSummary> {
    fit_with_store(learner, loader, cfg, run, &checkpoint::Dir(run.to_path_buf()), resume, quiet, on_epoch)
}

/// [`fit`] with the checkpoints kept in `store` (the log and `final.safetensors` stay in `run`).
#[allow(clippy::too_many_arguments)]
pub fn fit_with_store<L: Learner>(
    learner: &mut L,
    loader: &Loader,
    cfg: &TrainConfig,
    run: &Path,
    store: &dyn CheckpointStore,
    resume: bool,
    quiet: bool,
    on_epoch: &mut dyn FnMut(&mut L, usize) -> Result<serde_json::Value>,
) -> Result<FitSummary> {
    let bpe = loader.batches_per_epoch();
    if bpe == 0 {
        bail!("the training set has fewer samples than one batch");
    }
    let total = cfg.max_steps.map_or(bpe * cfg.epochs, |m| m.min(bpe * cfg.epochs));
    let sched = Schedule {
        base_lr: cfg.lr,
        decay: cfg.decay.clone(),
        warmup_steps: (cfg.warmup_epochs * bpe as f64).round() as usize,
        total_steps: bpe * cfg.epochs,
        steps_per_epoch: bpe,
    };
    let config_json =
        serde_json::json!({"train": cfg, "batch": loader.config().batch, "seed": loader.config().seed, "samples": loader.dataset().len()});
    let mut opt = Optimizer::new(cfg.optim.clone());
    let mut ema = cfg.ema.map(|d| Ema::new(d, &learner.state()));
    let mut summary = FitSummary::default();
    let mut step = 0usize;
    if resume {
        if let Some((meta, tensors, file)) = store.load()? {
            if meta.config != config_json {
                bail!(
                    "cannot resume '{}': it was started with different settings\n  checkpoint: {}\n  now:        {}",
                    run.display(),
                    meta.config,
                    config_json
                );
            }
            let pick = |prefix: &str| -> HashMap<String, T> {
                tensors.iter().filter_map(|(k, t)| k.strip_prefix(prefix).map(|n| (n.to_string(), t.shallow_clone()))).collect()
            };
            let here = || format!("checkpoint '{file}'");
            learner.load_state(&pick("model.")).with_context(here)?;
            learner.load_extra_state(&meta.extra["learner"]).with_context(here)?;
            let params = learner.parameters();
            opt.load_state(&pick("optim."), &params, meta.extra["optimizer_steps"].as_i64().unwrap_or(meta.step as i64))
                .with_context(here)?;
            if let Some(e) = ema.as_mut() {
                let shadow = pick("ema.");
                for (k, s) in e.shadow.iter_mut() {
                    let v = shadow.get(k).with_context(|| format!("{} has no EMA tensor '{k}'", here()))?;
                    s.f_copy_(v)?;
                }
            }
            step = meta.step;
            if let Ok(s) = serde_json::from_value::<FitSummary>(meta.extra["summary"].clone()) {
                summary = s;
            }
            if !quiet {
                eprintln!("resuming '{}' at step {} (epoch {}, batch {})", run.display(), meta.step, meta.epoch + 1, meta.batch);
            }
        }
    } else if store.holds() {
        bail!("'{}' already holds a checkpoint: pass --resume to continue it, or choose another directory", run.display());
    }
    std::fs::create_dir_all(run).with_context(|| format!("cannot create '{}'", run.display()))?;
    let mut log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(run.join("train.jsonl"))
        .with_context(|| format!("cannot open '{}'", run.join("train.jsonl").display()))?;
    let pb = if quiet { ProgressBar::hidden() } else { ProgressBar::new(total as u64) };
    pb.set_style(
        ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb.set_position(step as u64);
    let started = Instant::now();
    let prior_seconds = summary.seconds;
    let save = |step: usize, learner: &L, opt: &Optimizer, ema: &Option<Ema>, summary: &FitSummary| -> Result<()> {
        let mut tensors: Vec<(String, T)> = learner.state().into_iter().map(|(k, t)| (format!("model.{k}"), t)).collect();
        tensors.extend(opt.state().into_iter().map(|(k, t)| (format!("optim.{k}"), t)));
        if let Some(e) = ema {
            tensors.extend(e.shadow.iter().map(|(k, t)| (format!("ema.{k}"), t.shallow_clone())));
        }
        let meta = CheckpointMeta {
            step,
            epoch: step / bpe,
            batch: step % bpe,
            tensors: format!("state-{step}.safetensors"),
            config: config_json.clone(),
            extra: serde_json::json!({"optimizer_steps": opt.steps, "summary": summary, "learner": learner.extra_state()}),
            sha256: None,
        };
        store.save(&meta, &tensors)
    };
    let _armed = crate::util::signals::arm();
    let mut window = (Instant::now(), 0usize, 0.0f64, 0usize); // (since, images, loss sum, steps)
    while step < total {
        let epoch = step / bpe;
        let mut batches = loader.epoch(epoch, step % bpe);
        let epoch_start = Instant::now();
        let mut epoch_loss = (0.0, 0usize);
        let mut waited_before = Duration::ZERO;
        while step < total && step / bpe == epoch {
            let Some(batch) = batches.next() else { break };
            let wait = batches.waited() - waited_before;
            waited_before = batches.waited();
            summary.data_wait_seconds += wait.as_secs_f64();
            for s in &batch.skipped {
                pb.suspend(|| eprintln!("warning: skipped {s}"));
            }
            summary.skipped_samples += batch.skipped.len();
            if batch.n == 0 {
                step += 1;
                continue;
            }
            let lr = sched.lr(step);
            let params = learner.parameters();
            let scales = learner.lr_scales();
            let active = learner.active(step);
            // Only what this step trains: the others' stale gradients are never read (masked below).
            for (_, p, _) in params.iter().enumerate().filter(|(i, _)| active.get(*i).copied().unwrap_or(true)).map(|(_, p)| p) {
                let mut g = p.grad();
                if g.defined() {
                    let _ = g.f_zero_();
                }
            }
            let loss = learner.loss(&batch, step)?;
            let lv = loss.f_double_value(&[])?;
            if !lv.is_finite() {
                bail!(
                    "the loss is {lv} at step {step} (epoch {}, batch {}, lr {lr:.3e}): training stopped; \
                     lower the learning rate or set --clip",
                    epoch + 1,
                    step % bpe
                );
            }
            loss.f_backward()?;
            if let Some(max) = cfg.clip {
                clip_grad_norm(&params, max)?;
            }
            opt.step(&params, lr, &scales, &active, cfg.weight_decay)?;
            if let Some(e) = ema.as_mut() {
                e.update(&learner.state())?;
            }
            step += 1;
            summary.images += batch.n;
            epoch_loss.0 += lv;
            epoch_loss.1 += 1;
            window.1 += batch.n;
            window.2 += lv;
            window.3 += 1;
            summary.final_loss = lv;
            if window.3 >= cfg.log_every.max(1) || step == total {
                let secs = window.0.elapsed().as_secs_f64();
                let mut rec = serde_json::json!({"step": step, "epoch": epoch + 1, "loss": window.2 / window.3 as f64, "lr": lr,
                    "images_per_s": window.1 as f64 / secs, "data_wait_s": summary.data_wait_seconds});
                let parts = learner.take_loss_parts()?;
                if !parts.is_null() {
                    rec["parts"] = parts;
                }
                writeln!(log, "{rec}")?;
                pb.set_message(format!("loss {:.4}  lr {:.2e}  {:.0} img/s", window.2 / window.3 as f64, lr, window.1 as f64 / secs));
                window = (Instant::now(), 0, 0.0, 0);
            }
            pb.set_position(step as u64);
            let stop = crate::util::signals::stop_requested();
            if (cfg.ckpt_every > 0 && step.is_multiple_of(cfg.ckpt_every) && !step.is_multiple_of(bpe)) || stop.is_some() {
                summary.seconds = prior_seconds + started.elapsed().as_secs_f64();
                save(step, learner, &opt, &ema, &summary)?;
            }
            if let Some(sig) = stop {
                // Preempted (Slurm's SIGTERM, or --signal USR1 before the time limit): the
                // checkpoint above is exact, so the requeued job resumes bit for bit.
                pb.finish_and_clear();
                return Err(crate::util::signals::Preempted { signal: crate::util::signals::name(sig), step }.into());
            }
        }
        drop(batches);
        if step.is_multiple_of(bpe) || step == total {
            // Epoch end: evaluate (on EMA weights when on), log, checkpoint.
            let saved = match &ema {
                Some(e) => Some(swap_in(learner, &e.shadow)?),
                None => None,
            };
            let eval = on_epoch(learner, epoch)?;
            if let Some(s) = saved {
                learner.load_state(&s.into_iter().collect())?;
            }
            let secs = epoch_start.elapsed().as_secs_f64();
            let rec = serde_json::json!({"epoch": epoch + 1, "step": step, "train_loss": epoch_loss.0 / epoch_loss.1.max(1) as f64,
                "seconds": secs, "eval": eval});
            writeln!(log, "{rec}")?;
            pb.suspend(|| {
                if !quiet {
                    eprintln!(
                        "epoch {} ({step} steps, {secs:.0} s): train loss {:.4}  {}",
                        epoch + 1,
                        epoch_loss.0 / epoch_loss.1.max(1) as f64,
                        eval
                    )
                }
            });
            summary.epoch_reports.push(rec);
            summary.epochs = epoch + 1;
            summary.seconds = prior_seconds + started.elapsed().as_secs_f64();
            save(step, learner, &opt, &ema, &summary)?;
        }
    }
    pb.finish_and_clear();
    if let Some(e) = &ema {
        swap_in(learner, &e.shadow)?;
    }
    summary.steps = step;
    summary.seconds = prior_seconds + started.elapsed().as_secs_f64();
    checkpoint::write_tensors(&run.join("final.safetensors"), &learner.state())?;
    Ok(summary)
}

/// Scales all gradients so that their global L2 norm is at most `max`.
pub fn clip_grad_norm(params: &[(String, T, bool)], max: f64) -> Result<f64> {
    let _g = tch::no_grad_guard();
    let mut sq = 0.0;
    for (_, p, _) in params {
        let g = p.grad();
        if g.defined() {
            sq += g.f_square()?.f_sum(tch::Kind::Double)?.f_double_value(&[])?;
        }
    }
    let norm = sq.sqrt();
    if norm > max {
        for (_, p, _) in params {
            let mut g = p.grad();
            if g.defined() {
                let _ = g.f_mul_scalar_(max / (norm + 1e-6))?;
            }
        }
    }
    Ok(norm)
}
