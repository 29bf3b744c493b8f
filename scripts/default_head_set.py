#!/usr/bin/env python3
"""Training set of the shipped default verdict head: weak labels from the default rules'
confident tiers over the redistributable parts of ../shared/realdata.

    python3 scripts/default_head_set.py OUT.jsonl [--cyberfilter target/release/cyberfilter]

Every record of the sources below is scored by `cyberfilter scan` (default rules). A record is
a weak positive when it is in the keep tier well above `high` (score >= 2 * high) and a weak
negative when it is in the reject tier well below `low` (score <= low / 2) with at least 80
characters of text; unscored kinds are left out. Each (source, class) is then sampled evenly
by position (every k-th, so spread across files) up to its quota.

Held out on purpose: arxiv/ (the arXiv figure is measured on it), and ctf/, reports/, news/
(measurement-only sets with no redistribution licence; their text never enters the project).
The texts themselves are not kept in the repository: only the head's weights, this script and
the manifest with the counts. OUT.sources.json gets the counts per source and class.
"""
import argparse
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

HIGH, LOW = 4.5, 2.0  # rules/default.toml [thresholds]
MIN_CHARS = 80
# (path under ../shared/realdata, quota of positives, quota of negatives)
SOURCES = [
    ("nvd", 150, 0),
    ("cve5", 100, 0),
    ("attack", 150, 0),
    ("capec", 100, 20),
    ("cwe", 100, 60),
    ("nonsecurity", 50, 450),
    ("labelled/patchdb_commit_messages.jsonl", 50, 350),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--cyberfilter", default="target/release/cyberfilter")
    ap.add_argument("--realdata", default="../shared/realdata")
    a = ap.parse_args()
    out = Path(a.out)
    lines = []
    counts = {}
    for rel, qpos, qneg in SOURCES:
        path = Path(a.realdata) / rel
        proc = subprocess.run(
            [a.cyberfilter, "scan", "--text", str(path)],
            capture_output=True, text=True, check=True,
        )
        pools = defaultdict(list)
        for line in proc.stdout.splitlines():
            r = json.loads(line)
            text = r.get("text") or ""
            if r.get("kind") in ("relationship",):
                continue
            if r["tier"] == "keep" and r["score"] >= 2 * HIGH:
                pools["security"].append(text)
            elif r["tier"] == "reject" and r["score"] <= LOW / 2 and len(text) >= MIN_CHARS:
                pools["non-security"].append(text)
        counts[rel] = {}
        for label, quota in (("security", qpos), ("non-security", qneg)):
            pool = pools[label]
            if quota == 0 or not pool:
                continue
            step = max(1, len(pool) // quota)
            picked = pool[::step][:quota]
            counts[rel][label] = {"picked": len(picked), "pool": len(pool)}
            for t in picked:
                lines.append(json.dumps({"text": t, "label": label, "group": rel}))
    out.write_text("\n".join(lines) + "\n")
    side = out.with_suffix(".sources.json")
    side.write_text(json.dumps({
        "what": "weak labels from the default rules' confident tiers over ../shared/realdata",
        "rule": f"positive: keep tier, score >= {2 * HIGH}; negative: reject tier, score <= {LOW / 2}, text >= {MIN_CHARS} chars; unscored kinds left out; every k-th of each pool",
        "held_out": ["arxiv/", "ctf/", "reports/", "news/"],
        "script": "scripts/default_head_set.py",
        "sources": counts,
        "records": len(lines),
    }, indent=2) + "\n")
    print(f"{len(lines)} records -> {out}; counts in {side}", file=sys.stderr)


if __name__ == "__main__":
    main()
