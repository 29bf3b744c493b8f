#!/usr/bin/env python3
"""The upstream Python pipeline's way of verifying: one `mlx_lm.generate` call per record with
`max_tokens=5`, answer parsed from the generated text. Same model weights as the Rust verifier
(the SmolLM2 GGUF converted to f32 by scripts/golden_mlx_lm.py), same arXiv texts.

    .venv/bin/python benches/verifier_python_baseline.py [RECORDS]
"""
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "scripts"))
from golden_mlx_lm import ROOT, convert  # noqa: E402

SAMPLE = os.path.join(ROOT, "..", "shared/realdata/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl")


def main():
    import mlx_lm

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 32
    rows = [json.loads(l) for l in open(SAMPLE)][:n]
    texts = [f"{r['title']}\n{r['abstract']}" for r in rows]
    with tempfile.TemporaryDirectory() as dst:
        convert(dst)
        model, tokenizer = mlx_lm.load(dst)
        prompts = []
        for t in texts:
            msg = [{"role": "user", "content": f"Is this text related to cybersecurity (YES/NO)?\n\nText: {t[:800]}\n\nAnswer YES or NO only."}]
            prompts.append(tokenizer.apply_chat_template(msg, add_generation_prompt=True, tokenize=False))
        mlx_lm.generate(model, tokenizer, prompt=prompts[0], max_tokens=5)  # warm-up
        start = time.perf_counter()
        yes = 0
        for p in prompts:
            out = mlx_lm.generate(model, tokenizer, prompt=p, max_tokens=5)
            yes += "YES" in out.upper()
        secs = time.perf_counter() - start
    print(json.dumps({"records": n, "seconds": round(secs, 3), "records_per_s": round(n / secs, 3), "yes": yes}))


if __name__ == "__main__":
    main()
