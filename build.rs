//! Build script: compiles `schemas/onnx.proto` with protox + prost-build (no protoc needed) and
//! makes the dnas binaries find libtorch at run time.
//!
//! tch's own build script links libtorch for the `torch-sys` crate only; its link arguments do not
//! reach our binaries. Without an rpath the binary fails to start, and without `--no-as-needed`
//! the linker drops `libtorch_cuda.so` (nothing references it directly), so CUDA silently never
//! loads (tch-rs issue 980). We therefore add both here for every binary, test and bench.
use std::path::PathBuf;

fn main() {
    println!("cargo:rerun-if-changed=schemas/onnx.proto");
    let fds = protox::compile(["schemas/onnx.proto"], ["schemas"]).expect("compile schemas/onnx.proto");
    prost_build::Config::new().compile_fds(fds).expect("generate Rust code from schemas/onnx.proto");

    println!("cargo:rerun-if-env-changed=DNAS_TORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    if std::env::var_os("CARGO_FEATURE_TORCH").is_none() {
        // The validation build (`--no-default-features`) links no libtorch.
        return;
    }
    if let Some(lib) = torch_lib_dir() {
        build_shim(&lib);
        let lib = lib.display();
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        println!("cargo:rustc-link-search=native={lib}");
        println!("cargo:rustc-link-arg=-Wl,--no-as-needed");
        println!("cargo:rustc-link-arg=-ltorch");
        println!("cargo:rustc-link-arg=-ltorch_cpu");
        if std::path::Path::new(&format!("{lib}/libtorch_cuda.so")).exists() {
            println!("cargo:rustc-link-arg=-ltorch_cuda");
        }
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
    } else {
        println!("cargo:warning=libtorch not found: set DNAS_TORCH_LIB or run tools/setup.sh and source its env.sh");
    }
}

/// Compiles `src/exec/shim/pointwise.cpp` (fused oneDNN convolution through libtorch's
/// dispatcher; see `exec::fused`) against the headers of the same libtorch.
fn build_shim(lib: &std::path::Path) {
    println!("cargo:rerun-if-changed=src/exec/shim/pointwise.cpp");
    let include = lib.parent().map(|p| p.join("include")).filter(|p| p.join("ATen").exists());
    let Some(include) = include else {
        panic!("libtorch headers not found next to '{}' (expected include/ATen); the torch wheel ships them", lib.display());
    };
    cc::Build::new()
        .cpp(true)
        .file("src/exec/shim/pointwise.cpp")
        .include(&include)
        .flag("-std=c++17")
        .define("_GLIBCXX_USE_CXX11_ABI", "1")
        .warnings(false)
        .compile("dnas_shim");
}

/// The libtorch `lib/` directory: `$DNAS_TORCH_LIB`, `$LIBTORCH/lib`, or the torch package of the
/// python first on PATH (as tch does with `LIBTORCH_USE_PYTORCH=1`).
fn torch_lib_dir() -> Option<PathBuf> {
    if let Ok(dir) = std::env::var("DNAS_TORCH_LIB") {
        return Some(PathBuf::from(dir));
    }
    if let Ok(dir) = std::env::var("LIBTORCH") {
        return Some(PathBuf::from(dir).join("lib"));
    }
    let out = std::process::Command::new("python3")
        .args(["-c", "import torch, os; print(os.path.join(os.path.dirname(torch.__file__), 'lib'))"])
        .output()
        .ok()?;
    let dir = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!dir.is_empty()).then(|| PathBuf::from(dir))
}
