#!/usr/bin/env python3
"""The upstream Python pipeline's way of verifying: one `mlx_lm.generate` call per record with
`max_tokens=5`, answer parsed from the generated text. Same model weights as the Rust verifier
(the SmolLM2 GGUF converted to f32 by scripts/golden_mlx_lm.py), same arXiv texts.

    .venv/bin/python benches/verifier_python_baseline.py [RECORDS] [--input FILE] [--model GGUF]

`cyberfilter bench verifier` runs it with LD_PRELOAD set to the OpenBLAS its own build links, so
both sides use the same sgemm (the mlx-cpu wheel alone brings a reference BLAS about 15x slower);
BASELINE_BLAS names it in the output. Prints one JSON line.
"""
import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
import golden_mlx_lm  # noqa: E402

SAMPLE = os.path.join(golden_mlx_lm.ROOT, "..", "shared/realdata/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl")


def record_text(r):
    if "title" in r or "abstract" in r:
        return f"{r.get('title', '')}\n{r.get('abstract', '')}"
    return str(r.get("text", ""))


def main():
    import mlx_lm

    ap = argparse.ArgumentParser()
    ap.add_argument("records", nargs="?", type=int, default=32)
    ap.add_argument("--input", default=SAMPLE)
    ap.add_argument("--model", default=golden_mlx_lm.GGUF)
    a = ap.parse_args()
    n = a.records
    golden_mlx_lm.GGUF = a.model
    with open(a.input) as f:
        rows = [json.loads(line) for line in f if line.strip()][:n]
    texts = [record_text(r) for r in rows]
    with tempfile.TemporaryDirectory() as dst:
        golden_mlx_lm.convert(dst)
        model, tokenizer = mlx_lm.load(dst)
        prompts = []
        for t in texts:
            msg = [{"role": "user", "content": f"Is this text related to cybersecurity (YES/NO)?\n\nText: {t[:800]}\n\nAnswer YES or NO only."}]
            prompts.append(tokenizer.apply_chat_template(msg, add_generation_prompt=True, tokenize=False))
        prompt_tokens = sum(len(tokenizer.encode(p)) for p in prompts)
        mlx_lm.generate(model, tokenizer, prompt=prompts[0], max_tokens=5)  # warm-up
        start = time.perf_counter()
        yes = 0
        for p in prompts:
            out = mlx_lm.generate(model, tokenizer, prompt=p, max_tokens=5)
            yes += "YES" in out.upper()
        secs = time.perf_counter() - start
    blas = os.environ.get("BASELINE_BLAS") or "mlx-cpu wheel's bundled reference BLAS"
    print(json.dumps({"records": len(texts), "seconds": round(secs, 3), "records_per_s": round(len(texts) / secs, 4),
                      "prompt_tokens": prompt_tokens, "yes": yes, "blas": blas}))


if __name__ == "__main__":
    main()
