//! ONNX Runtime through `ort` (load-dynamic: `libonnxruntime.so` from the onnxruntime wheel,
//! found through `ORT_DYLIB_PATH`, which tools/setup.sh writes into its env.sh).

use std::sync::OnceLock;

use anyhow::{anyhow, bail, Context, Result};
use ort::ep::ExecutionProvider;
use ort::{environment::Environment, session::Session, value::Tensor};

use super::Array;

static ENV: OnceLock<std::result::Result<Environment, String>> = OnceLock::new();
/// The intra-op threads of the environment's one shared pool, when it was created with one.
static SHARED_POOL: OnceLock<usize> = OnceLock::new();

/// The process-wide ORT environment (loads the library on first use).
pub fn environment() -> Result<&'static Environment> {
    ENV.get_or_init(|| create_environment(None)).as_ref().map_err(|e| anyhow!("{e}"))
}

/// Creates the process's ORT environment with one intra-op thread pool of `threads` (spinning
/// as ORT does by default) that every session shares, instead of a pool per session. Must come
/// before any other use of ORT in the process (ORT allows one environment per process): the
/// interleaved latency timing runs its two sessions in a process of its own for this, since two
/// pools on the same cores make the idle one's spinning workers slow the timed one.
pub fn init_shared_pool_environment(threads: usize) -> Result<()> {
    let mut created = false;
    ENV.get_or_init(|| {
        created = true;
        create_environment(Some(threads))
    })
    .as_ref()
    .map_err(|e| anyhow!("{e}"))?;
    if !created {
        bail!("the ONNX Runtime environment already exists in this process: a shared pool must be set up first");
    }
    let _ = SHARED_POOL.set(threads);
    Ok(())
}

/// The intra-op threads of the shared pool, if the environment has one.
pub fn shared_pool_threads() -> Option<usize> {
    SHARED_POOL.get().copied()
}

fn create_environment(shared_pool: Option<usize>) -> std::result::Result<Environment, String> {
    let path = std::env::var("ORT_DYLIB_PATH")
        .map_err(|_| "ORT_DYLIB_PATH is not set: run tools/setup.sh and source ~/.cache/dnas/env.sh".to_string())?;
    if !std::path::Path::new(&path).exists() {
        return Err(format!("ORT_DYLIB_PATH points to '{path}', which does not exist"));
    }
    let mut builder = ort::init_from(&path).map_err(|e| format!("cannot load ONNX Runtime from '{path}': {e}"))?.with_name("dnas");
    if let Some(threads) = shared_pool {
        let pool = ort::environment::GlobalThreadPoolOptions::default()
            .with_intra_threads(threads)
            .and_then(|p| p.with_spin_control(true))
            .map_err(|e| format!("ORT shared thread pool of {threads} thread(s): {e}"))?;
        builder = builder.with_global_thread_pool(pool);
    }
    builder.build().map_err(|e| format!("cannot create the ONNX Runtime environment: {e}"))
}

/// Which ONNX Runtime execution provider runs a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum OrtProvider {
    Cpu,
    /// XNNPACK (the mobile CPU kernels); absent from the PyPI CPU wheel.
    Xnnpack,
    /// CUDA device 0; needs `onnxruntime-gpu`.
    Cuda,
}

impl OrtProvider {
    /// ONNX Runtime's name for it.
    pub fn ort_name(self) -> &'static str {
        match self {
            OrtProvider::Cpu => "CPUExecutionProvider",
            OrtProvider::Xnnpack => ort::ep::XNNPACK::NAME,
            OrtProvider::Cuda => ort::ep::CUDA::NAME,
        }
    }

    /// Whether the loaded onnxruntime library was built with this provider.
    pub fn available(self) -> Result<bool> {
        environment()?;
        Ok(match self {
            OrtProvider::Cpu => true,
            OrtProvider::Xnnpack => ort::ep::XNNPACK::is_available().map_err(|e| anyhow!("ORT provider query: {e}"))?,
            OrtProvider::Cuda => ort::ep::CUDA::is_available().map_err(|e| anyhow!("ORT provider query: {e}"))?,
        })
    }
}

/// A loaded ORT session for a single-input model.
pub struct OrtModel {
    session: Session,
    input: String,
}

impl OrtModel {
    /// Builds a CPU session from ONNX bytes with `threads` intra-op threads (0 = ORT's default).
    pub fn new(bytes: &[u8], threads: usize) -> Result<OrtModel> {
        OrtModel::with_provider(bytes, threads, OrtProvider::Cpu)
    }

    /// A session on `provider`. A provider other than the CPU must register, or this fails: a
    /// silent fallback to the CPU would report CPU figures under the provider's name.
    pub fn with_provider(bytes: &[u8], threads: usize, provider: OrtProvider) -> Result<OrtModel> {
        OrtModel::with_options(bytes, threads, provider, true)
    }

    /// As [`OrtModel::with_provider`]; `spinning: false` stops ORT's intra-op threads from
    /// busy-waiting after each run (ORT's default is to spin), which a benchmark alternating ORT
    /// with another engine on the same cores needs, or the spinning threads slow the other one.
    pub fn with_options(bytes: &[u8], threads: usize, provider: OrtProvider, spinning: bool) -> Result<OrtModel> {
        let env = environment()?;
        let mut b = Session::builder(env).map_err(|e| anyhow!("ORT session builder: {e}"))?;
        if let Some(pool) = shared_pool_threads() {
            // Sessions of a shared-pool environment have no threads of their own.
            if threads > 0 && provider == OrtProvider::Cpu && threads != pool {
                bail!("this process's ORT thread pool has {pool} thread(s), not the {threads} asked for");
            }
        } else if threads > 0 {
            b = b.with_intra_threads(threads).map_err(|e| anyhow!("ORT intra threads: {e}"))?;
        }
        if !spinning {
            b = b.with_intra_op_spinning(false).map_err(|e| anyhow!("ORT intra-op spinning: {e}"))?;
        }
        if provider != OrtProvider::Cpu {
            if !provider.available()? {
                bail!("the loaded onnxruntime has no {} (ORT_DYLIB_PATH)", provider.ort_name());
            }
            let ep = match provider {
                OrtProvider::Xnnpack => {
                    let n = std::num::NonZeroUsize::new(threads.max(1)).unwrap_or(std::num::NonZeroUsize::MIN);
                    ort::ep::XNNPACK::default().with_intra_op_num_threads(n).build()
                }
                _ => ort::ep::CUDA::default().with_device_id(0).build(),
            };
            b = b.with_execution_providers([ep.error_on_failure()]).map_err(|e| anyhow!("cannot register {}: {e}", provider.ort_name()))?;
        }
        let session = b.commit_from_memory(bytes).map_err(|e| anyhow!("ONNX Runtime refused the model: {e}"))?;
        let input = session.inputs().first().ok_or_else(|| anyhow!("the model has no input"))?.name().to_string();
        Ok(OrtModel { session, input })
    }

    /// Runs the model on one f32 input; returns every output in declaration order.
    pub fn run(&mut self, x: &Array) -> Result<Vec<Array>> {
        let shape: Vec<i64> = x.shape.iter().map(|&d| d as i64).collect();
        let t = Tensor::from_array((shape, x.data.clone())).context("ORT input tensor")?;
        let outputs = self.session.run(ort::inputs![self.input.as_str() => t]).map_err(|e| anyhow!("ONNX Runtime run failed: {e}"))?;
        let mut out = Vec::new();
        for (name, v) in outputs.iter() {
            let (shape, data) = v.try_extract_tensor::<f32>().with_context(|| format!("ORT output '{name}'"))?;
            out.push(Array { shape: shape.iter().map(|&d| d as usize).collect(), data: data.to_vec() });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// ORT has one environment per process: a shared pool asked for after it exists is refused,
    /// never silently ignored (which would time two pools and call it one).
    #[test]
    fn a_shared_pool_after_the_environment_exists_is_refused() {
        environment().expect("ONNX Runtime (tools/test.sh sets ORT_DYLIB_PATH)");
        let e = init_shared_pool_environment(2).unwrap_err().to_string();
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(shared_pool_threads(), None);
    }
}
