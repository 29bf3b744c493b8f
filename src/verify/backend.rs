//! Building the verifier a run asked for: shared by `cyberfilter run` and `cyberfilter-tui`,
//! so both binaries accept the same backends and report a missing model the same way.

use super::mlx;
use super::{Verifier, VerifierFactory, VerifyError};
use crate::engine::verifier::HashVerifier;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The MLX verifier for `model` (default: the SmolLM2 GGUF fetched by `scripts/setup.sh`).
/// The path is checked here, before the engine starts, so a missing model is a clear error
/// up front rather than a failure on the verifier thread.
pub fn mlx_factory(
    model: Option<&Path>,
    options: mlx::MlxOptions,
) -> Result<(VerifierFactory, PathBuf), VerifyError> {
    let path = model
        .map(Path::to_path_buf)
        .unwrap_or_else(mlx::default_model_path);
    if !path.exists() {
        let hint = if model.is_none() {
            "the default model is fetched by ./scripts/setup.sh; run it, or pass --model PATH"
        } else {
            "pass a .gguf file or a Hugging Face model folder"
        };
        return Err(VerifyError::Model {
            path: path.display().to_string(),
            reason: format!("does not exist ({hint})"),
        });
    }
    Ok((mlx::factory_with(path.clone(), options), path))
}

/// The deterministic stand-in for tests (`--verifier test-hash`, hidden): P(yes) from the
/// text's hash, `delay` of sleep per batch. Not a classifier.
pub fn test_hash_factory(delay: Duration, batch: usize) -> VerifierFactory {
    Box::new(move || Ok(Box::new(HashVerifier { delay, batch }) as Box<dyn Verifier>))
}

/// Batch delay of the test stand-in, from `CYBERFILTER_TEST_VERIFIER_DELAY_MS`.
pub fn test_hash_delay(default_ms: u64) -> Duration {
    let ms = std::env::var("CYBERFILTER_TEST_VERIFIER_DELAY_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_ms);
    Duration::from_millis(ms)
}
