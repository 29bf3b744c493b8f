//! Tokenizers: `tokenizer.json` as it is, or a byte-level BPE rebuilt from GGUF metadata
//! (`tokenizer.ggml.*`) the way llama.cpp's converter laid it out.

use std::path::Path;

use tokenizers::models::bpe::BPE;
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::pre_tokenizers::split::{Split, SplitPattern};
use tokenizers::{
    AddedToken, DecoderWrapper, PreTokenizerWrapper, SplitDelimiterBehavior, Tokenizer,
};

use super::gguf::Meta;
use super::LoadError;

/// GGUF token types (llama.cpp `llama_token_type`): control and user-defined tokens are
/// matched whole, before BPE.
const TOKEN_TYPE_CONTROL: i32 = 3;
const TOKEN_TYPE_USER_DEFINED: i32 = 4;

/// The Llama 3 split pattern (`tokenizer.ggml.pre = llama-bpe` and friends).
const LLAMA3_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";
/// Qwen2's pattern: like Llama 3 but single digits.
const QWEN2_PATTERN: &str = r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+";

pub fn from_json(path: &Path) -> Result<Tokenizer, LoadError> {
    Tokenizer::from_file(path).map_err(|e| LoadError::new(path, format!("tokenizer.json: {e}")))
}

pub fn from_gguf(meta: &Meta) -> Result<Tokenizer, LoadError> {
    let model = meta.string("tokenizer.ggml.model")?.unwrap_or_default();
    if model != "gpt2" {
        return Err(meta.error(format!(
            "unsupported tokenizer model {model:?} in tokenizer.ggml.model (only byte-level BPE, \"gpt2\", is rebuilt from GGUF)"
        )));
    }
    let tokens = meta
        .strings("tokenizer.ggml.tokens")?
        .ok_or_else(|| meta.error("metadata tokenizer.ggml.tokens is missing".into()))?;
    let merges = meta
        .strings("tokenizer.ggml.merges")?
        .ok_or_else(|| meta.error("metadata tokenizer.ggml.merges is missing".into()))?;
    let types = meta
        .i32_list("tokenizer.ggml.token_type")?
        .unwrap_or_default();
    let pre = meta.string("tokenizer.ggml.pre")?.unwrap_or_default();
    build_bpe(&tokens, &merges, &types, &pre).map_err(|reason| meta.error(reason))
}

/// Byte-level BPE from a vocabulary (index = id), merges (`"a b"`), GGUF token types and the
/// llama.cpp pre-tokenizer name.
pub fn build_bpe(
    tokens: &[String],
    merges: &[String],
    types: &[i32],
    pre: &str,
) -> Result<Tokenizer, String> {
    let vocab: tokenizers::models::bpe::Vocab = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| (t.clone(), i as u32))
        .collect();
    let merges: Vec<(String, String)> = merges
        .iter()
        .map(|m| {
            m.split_once(' ')
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .ok_or_else(|| format!("malformed merge {m:?} (expected \"left right\")"))
        })
        .collect::<Result<_, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| format!("BPE: {e}"))?;
    let mut tokenizer = Tokenizer::new(bpe);
    let byte_level = ByteLevel::new(false, true, true);
    let pre_tokenizer: PreTokenizerWrapper = match pre {
        // SmolLM / StarCoder: digits one by one, then the GPT-2 byte-level split.
        "smollm" | "starcoder" | "refact" => Sequence::new(vec![
            Digits::new(true).into(),
            byte_level.into(),
        ])
        .into(),
        "llama-bpe" | "llama3" | "smaug-bpe" | "dbrx" => regex_then_bytes(LLAMA3_PATTERN)?,
        "qwen2" | "qwen35" | "deepseek-r1-qwen" => regex_then_bytes(QWEN2_PATTERN)?,
        "gpt2" | "default" | "" => byte_level.into(),
        other => {
            return Err(format!(
                "unsupported pre-tokenizer {other:?} in tokenizer.ggml.pre (supported: smollm, starcoder, llama-bpe, qwen2, gpt2)"
            ))
        }
    };
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(DecoderWrapper::ByteLevel(ByteLevel::default())));
    let specials: Vec<AddedToken> = types
        .iter()
        .enumerate()
        .filter(|(_, t)| matches!(**t, TOKEN_TYPE_CONTROL | TOKEN_TYPE_USER_DEFINED))
        .filter_map(|(i, t)| {
            tokens
                .get(i)
                .map(|s| AddedToken::from(s.clone(), *t == TOKEN_TYPE_CONTROL))
        })
        .collect();
    tokenizer.add_special_tokens(&specials);
    Ok(tokenizer)
}

fn regex_then_bytes(pattern: &str) -> Result<PreTokenizerWrapper, String> {
    let split = Split::new(
        SplitPattern::Regex(pattern.to_string()),
        SplitDelimiterBehavior::Isolated,
        false,
    )
    .map_err(|e| format!("pre-tokenizer regex: {e}"))?;
    Ok(Sequence::new(vec![
        split.into(),
        ByteLevel::new(false, true, false).into(),
    ])
    .into())
}

/// Token ids of `text` with special tokens recognised (they are part of the chat template).
pub fn encode(tokenizer: &Tokenizer, text: &str) -> Result<Vec<u32>, String> {
    tokenizer
        .encode(text, false)
        .map(|e| e.get_ids().to_vec())
        .map_err(|e| format!("tokenizer: {e}"))
}
