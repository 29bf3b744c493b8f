//! Building the verifier a run asked for: shared by `cyberfilter run` and `cyberfilter-tui`,
//! so both binaries accept the same backends and report a missing model the same way.

use super::http::{self, HttpOptions};
use super::mlx;
use super::test_hash::HashVerifier;
use super::{Verifier, VerifierFactory, VerifyError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Which verifier backend answers verify-tier records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifierKind {
    /// No verifier: verify-tier records stay pending (stored, counted, exported as pending).
    None,
    /// Local model through MLX.
    Mlx,
    /// An HTTP inference server.
    Http,
    /// For tests only: a deterministic stand-in whose P(yes) comes from the text's hash (not
    /// a classifier), sleeping CYBERFILTER_TEST_VERIFIER_DELAY_MS per batch.
    #[value(hide = true)]
    TestHash,
}

impl VerifierKind {
    pub fn name(self) -> &'static str {
        match self {
            VerifierKind::None => "none",
            VerifierKind::Mlx => "mlx",
            VerifierKind::Http => "http",
            VerifierKind::TestHash => "test-hash",
        }
    }
}

/// Everything a binary knows about the verifier it should start.
#[derive(Debug, Clone)]
pub struct BackendChoice {
    pub kind: VerifierKind,
    /// The MLX model (default: [`mlx::default_model_path`]).
    pub model: Option<PathBuf>,
    /// The MLX verifier's text cut (default: [`mlx::MlxOptions`]'s).
    pub max_text_tokens: Option<usize>,
    pub http: HttpOptions,
    /// Batch delay of the test stand-in when `CYBERFILTER_TEST_VERIFIER_DELAY_MS` is unset.
    pub test_delay_ms: u64,
}

/// The factory for `choice` (`None` for `--verifier none`). A missing MLX model is an error
/// here, before the engine starts, rather than a failure on the verifier thread.
pub fn factory(choice: &BackendChoice) -> Result<Option<VerifierFactory>, VerifyError> {
    match choice.kind {
        VerifierKind::None => Ok(None),
        VerifierKind::Mlx => {
            let mut options = mlx::MlxOptions::default();
            if let Some(n) = choice.max_text_tokens {
                options.max_text_tokens = n;
            }
            let path = mlx_model_path(choice.model.as_deref());
            if !path.exists() {
                let hint = if choice.model.is_none() {
                    "the default model is fetched by ./scripts/setup.sh; run it, or pass --model PATH"
                } else {
                    "pass a .gguf file or a Hugging Face model folder"
                };
                return Err(VerifyError::Model {
                    path: path.display().to_string(),
                    reason: format!("does not exist ({hint})"),
                });
            }
            Ok(Some(mlx::factory_with(path, options)))
        }
        VerifierKind::Http => Ok(Some(http::factory(choice.http.clone()))),
        VerifierKind::TestHash => {
            let delay = Duration::from_millis(
                std::env::var("CYBERFILTER_TEST_VERIFIER_DELAY_MS")
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(choice.test_delay_ms),
            );
            Ok(Some(Box::new(move || {
                Ok(Box::new(HashVerifier { delay, batch: 16 }) as Box<dyn Verifier>)
            })))
        }
    }
}

/// The model the MLX verifier loads for `--model` (or its absence).
pub fn mlx_model_path(model: Option<&Path>) -> PathBuf {
    model
        .map(Path::to_path_buf)
        .unwrap_or_else(mlx::default_model_path)
}
