//! Linux only: lets binaries and tests find the prebuilt `libmlx.so` (from the PyPI wheel
//! `mlx-cpu`, unpacked by `scripts/setup.sh`) through an rpath, and links OpenBLAS so MLX's
//! matmuls skip the wheel's bundled reference BLAS (about 10x faster on the CPU).
//! A dependency's link args do not reach this crate's targets, so this cannot live in mlx-sys.
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=MLX_PREFIX");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() != Ok("linux") {
        return;
    }
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let prefix = std::env::var_os("MLX_PREFIX")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join(".models/mlx-cpu/mlx"));
    let lib = prefix.join("lib");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    println!("cargo:rustc-env=CYBERFILTER_MLX_LIB={}", lib.display());

    let openblas = [
        "/usr/lib/x86_64-linux-gnu",
        "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64",
        "/usr/lib",
    ]
    .iter()
    .map(|d| Path::new(d).join("libopenblas.so.0"))
    .find(|p| p.exists());
    match openblas {
        // libmlx.so leaves cblas_sgemm & co. undefined-then-bundled; loading OpenBLAS first
        // interposes them. --no-as-needed keeps the otherwise "unused" library.
        Some(path) => {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-l:libopenblas.so.0,--as-needed");
            // `bench verifier` preloads the same library into the Python baseline.
            println!("cargo:rustc-env=CYBERFILTER_OPENBLAS={}", path.display());
        }
        None => println!(
            "cargo:warning=libopenblas.so.0 not found: MLX falls back to the wheel's slow reference BLAS (apt-get install libopenblas0-pthread)"
        ),
    }
}
