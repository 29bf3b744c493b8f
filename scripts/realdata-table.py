#!/usr/bin/env python3
"""Per-source tier table of the default rules (or --rules FILE) on ../shared/realdata, as in the
README. Runs `cyberfilter scan` (build it first: cargo build --release) and groups its JSON lines
by source and the record's own status; Debian entries are split by their weak security signals
and arXiv by its cs.CR label, read from the input files themselves.

A second table covers security writing beyond the feeds and ordinary prose (issue #12): CTF
write-ups, HackerOne report titles, PatchDB commit messages by label and BBC articles not flagged
`mentions_security` (overall and per category), each also split in halves A and B by the FNV-1a
hash of the record id (even: A, odd: B), as tests/rules_realdata.rs does.

usage: scripts/realdata-table.py [REALDATA] [-- extra scan flags]"""
import collections, json, os, subprocess, sys

here = os.path.dirname(os.path.abspath(__file__))
root = os.path.join(here, "..")
args = sys.argv[1:]
extra = []
if "--" in args:
    i = args.index("--")
    args, extra = args[:i], args[i + 1:]
data = args[0] if args else os.path.join(root, "../shared/realdata")
binary = os.environ.get("CYBERFILTER", os.path.join(root, "target/release/cyberfilter"))

def scan(paths):
    p = subprocess.run([binary, "scan", *paths, *extra], capture_output=True, text=True)
    if p.returncode not in (0, 65):
        sys.exit(p.stderr)
    return [json.loads(l) for l in p.stdout.splitlines()]

groups = collections.OrderedDict()
def add(name, line):
    groups.setdefault(name, collections.Counter())[line["tier"]] += 1

def rejected(line):
    # NVD's newer rejected records say so in the description ("Rejected reason: ..."), which
    # the readers do not flag yet; count them with the flagged ones.
    return "rejected" in line.get("flags", []) or "\nRejected reason:" in line.get("text", "")

for line in scan([f"{data}/nvd", "--text"]):
    dead = rejected(line)
    add(f"{line['source']} CVEs" + (" (rejected)" if dead else ""), line)
for line in scan([f"{data}/cve5", "--text"]):
    add("cve5 CVEs" + (" (rejected)" if rejected(line) else ""), line)
for line in scan([f"{data}/attack"]):
    if line["kind"] in ("attack-pattern", "malware", "tool", "intrusion-set", "campaign", "course-of-action", "x-mitre-tactic"):
        dead = set(line.get("flags", [])) & {"revoked", "deprecated"}
        add(f"ATT&CK {line['kind']}" + (" (revoked/deprecated)" if dead else ""), line)
    else:
        add("ATT&CK other objects (not scored)", line)
for src, path in (("CAPEC", "capec"), ("CWE", "cwe")):
    for line in scan([f"{data}/{path}"]):
        dead = "deprecated" in line.get("flags", [])
        add(f"{src} {line['kind']}" + (" (deprecated)" if dead else ""), line)

arxiv = f"{data}/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl"
labels = {json.loads(l)["id"]: json.loads(l)["label"] for l in open(arxiv)}
for line in scan([arxiv]):
    add("arXiv cs.CR" if labels.get(line["id"]) == "security" else "arXiv other CS", line)

deb = f"{data}/nonsecurity/debian-bookworm-changelog-entries.jsonl"
sec = {}
for l in open(deb):
    r = json.loads(l)
    sec[r["id"]] = r["suite_is_security"] or r["mentions_cve"]
for line in scan([deb]):
    add("Debian changelog, security suite or CVE" if sec[line["id"]] else "Debian changelog, neither", line)

print("| records | n | keep | verify | reject | keep % |")
print("|---|---:|---:|---:|---:|---:|")
for name, c in groups.items():
    n = sum(c.values())
    print(f"| {name} | {n} | {c['keep']} | {c['verify']} | {c['reject']} | {100.0 * c['keep'] / n:.1f} |")


def fnv1a(s):
    h = 0xcbf29ce484222325
    for b in s.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h

beyond = collections.OrderedDict()
def add2(name, rid, line):
    for key in (name, f"{name} [{'A' if fnv1a(rid) % 2 == 0 else 'B'}]"):
        beyond.setdefault(key, collections.Counter())[line["tier"]] += 1

def meta(path):
    return {r["id"]: r for r in map(json.loads, open(path))}

for title, rel in (("CTF write-ups 2016", "ctf/ctf-write-ups-2016.jsonl"),
                   ("HackerOne report titles", "reports/hackerone-report-titles.jsonl")):
    for line in scan([f"{data}/{rel}"]):
        add2(title, line["id"], line)
patch = f"{data}/labelled/patchdb_commit_messages.jsonl"
m = meta(patch)
for line in scan([patch]):
    sec = m[line["id"]]["label"] == "security"
    add2("PatchDB security fixes" if sec else "PatchDB other commits", line["id"], line)
bbc = f"{data}/news/bbc-news-articles.jsonl"
m = meta(bbc)
lines = [l for l in scan([bbc]) if not m[l["id"]]["mentions_security"]]
for line in lines:
    add2("BBC not mentions_security", line["id"], line)
for line in lines:
    add2(f"BBC not mentions_security, {m[line['id']]['category']}", line["id"], line)

print()
print("| set [half] | n | keep % | verify % | reject % | keep+verify % |")
print("|---|---:|---:|---:|---:|---:|")
for name in (k for base in beyond if "[" not in base for k in (base, f"{base} [A]", f"{base} [B]")):
    c = beyond[name]
    n = sum(c.values())
    k, v, r = (100.0 * c[t] / n for t in ("keep", "verify", "reject"))
    print(f"| {name} | {n} | {k:.1f} | {v:.1f} | {r:.1f} | {k + v:.1f} |")
