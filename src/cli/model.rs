//! `cyberfilter model convert FILE.gguf --out DIR [--dtype f32|f16|bf16] [--force]`: writes the
//! GGUF's weights, tokenizer and chat template as a Hugging Face folder that the MLX verifier,
//! transformers and mlx_lm load (see `verify::mlx::convert`).
//!
//! Exit codes: 0 written; 2 usage (a non-empty `--out` without `--force`); 65 the model cannot
//! be read (not a GGUF, unsupported quantisation or architecture, ...); 66 the file does not
//! exist; 74 writing the folder failed.

use super::{EXIT_DATAERR, EXIT_IOERR, EXIT_NOINPUT, EXIT_OK, EXIT_USAGE};
use crate::verify::mlx::convert::{self, ConvertError, OutDtype};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum ModelCommand {
    /// Write a GGUF model as a Hugging Face folder (safetensors, config.json, tokenizer.json,
    /// chat template).
    Convert(ConvertArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum DtypeArg {
    /// The weights exactly as the GGUF loader uses them (dequantized to f32).
    F32,
    F16,
    Bf16,
}

#[derive(Debug, clap::Args)]
pub struct ConvertArgs {
    /// The GGUF model file.
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// Output folder (created if needed).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
    /// Dtype of the written weights.
    #[arg(long, value_enum, default_value = "f32")]
    pub dtype: DtypeArg,
    /// Write into a non-empty folder, replacing files of the same names.
    #[arg(long)]
    pub force: bool,
}

pub fn run(cmd: &ModelCommand) -> i32 {
    match cmd {
        ModelCommand::Convert(args) => run_convert(args),
    }
}

fn run_convert(args: &ConvertArgs) -> i32 {
    if !args.file.exists() {
        eprintln!(
            "cyberfilter: model convert: {}: file does not exist",
            args.file.display()
        );
        return EXIT_NOINPUT;
    }
    let non_empty = std::fs::read_dir(&args.out).is_ok_and(|mut d| d.next().is_some());
    if non_empty && !args.force {
        eprintln!(
            "cyberfilter: model convert: {} is not empty; pass --force to write into it",
            args.out.display()
        );
        return EXIT_USAGE;
    }
    if args.out.exists() && !args.out.is_dir() {
        eprintln!(
            "cyberfilter: model convert: {} exists and is not a folder",
            args.out.display()
        );
        return EXIT_USAGE;
    }
    let dtype = match args.dtype {
        DtypeArg::F32 => OutDtype::F32,
        DtypeArg::F16 => OutDtype::F16,
        DtypeArg::Bf16 => OutDtype::Bf16,
    };
    match convert::convert(&args.file, &args.out, dtype) {
        Ok(r) => {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            eprintln!(
                "cyberfilter: wrote {} ({} {}, {} tensors, {:.1} MB{}{})",
                r.out.display(),
                r.arch,
                r.dtype,
                r.tensors,
                r.bytes as f64 / 1e6,
                if r.tied_embeddings {
                    ", tied embeddings"
                } else {
                    ""
                },
                if r.unpermuted_qk {
                    ", Q/K rows in Hugging Face order"
                } else {
                    ""
                }
            );
            EXIT_OK
        }
        Err(e @ ConvertError::Load(_)) => {
            eprintln!("cyberfilter: model convert: {e}");
            EXIT_DATAERR
        }
        Err(e @ ConvertError::Write { .. }) => {
            eprintln!("cyberfilter: model convert: {e}");
            EXIT_IOERR
        }
    }
}
