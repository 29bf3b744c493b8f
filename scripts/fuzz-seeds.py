#!/usr/bin/env python3
"""Writes the fuzz seed corpora under fuzz/corpus/TARGET/ (deterministic; rerun after adding a
source). Sources: sample_data/, tests/bad_input/ and small cuts of ../shared/realdata (the feeds
only: nvd, cve5, attack, capec, cwe, arxiv, nonsecurity, labelled; never ctf/reports/news).
Every seed is at most MAX bytes: whole small files, else the first records of a feed re-wrapped
in the feed's own wrapper (JSON), or the catalogue head with the first entries closed (XML)."""
import gzip, hashlib, json, os, re, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REAL = ROOT.parent / "shared" / "realdata"
OUT = ROOT / "fuzz" / "corpus"
MAX = 12 * 1024
seeds = {t: {} for t in ["detect", "json", "jsonl", "xml", "gzip", "record", "rules"]}


def add(target, data, name):
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX:
        data = data[:MAX]
    seeds[target][hashlib.sha1(data).hexdigest()[:16] + "-" + name] = data


def dumps(v):
    return json.dumps(v, ensure_ascii=False)


def json_cut(path, tag, n=2):
    """The feed's wrapper with its first n records; the records alone for `record`."""
    v = json.loads(path.read_text(encoding="utf-8"))
    for key, sel in (("vulnerabilities", 0), ("CVE_Items", 1), ("objects", 2)):
        if isinstance(v, dict) and isinstance(v.get(key), list):
            items = [i for i in v[key] if len(dumps(i)) < MAX // 2][:n]
            cut = dict(v)
            cut[key] = items
            add("json", dumps(cut), tag)
            add("detect", dumps(cut), tag)
            for i in items:
                add("record", bytes([sel]) + dumps(i).encode(), tag)
                add("jsonl", dumps(i), tag)
            add("jsonl", "\n".join(dumps(i) for i in items), tag)
            return
    if isinstance(v, list):
        v = v[:n]
    text = dumps(v)
    add("json", text, tag)
    add("detect", text, tag)
    add("record", bytes([5]) + text.encode(), tag)


def jsonl_cut(path, tag, n=3):
    lines = [l for l in path.read_text(encoding="utf-8").splitlines() if l.strip()][:n]
    add("jsonl", "\n".join(lines) + "\n", tag)
    add("detect", "\n".join(lines) + "\n", tag)
    add("json", "[" + ",".join(lines) + "]", tag)
    for l in lines[:1]:
        add("record", bytes([4]) + l.encode(), tag)
        add("record", bytes([0x84]) + l.encode(), tag + "-label")


def xml_cut(path, tag, entries=("Attack_Pattern", "Weakness", "Category"), n=2):
    text = path.read_text(encoding="utf-8")
    # Catalogue head up to the first entry, the first n entries, then the open tags closed.
    first = min((m.start() for e in entries for m in [re.search(r"<%s[ >]" % e, text)] if m),
                default=None)
    if first is None:
        add("xml", text[:MAX], tag)
        return
    head = text[:first]
    body, pos = [], first
    for _ in range(n):
        m = re.search(r"</(%s)>" % "|".join(entries), text[pos:])
        if not m:
            break
        body.append(text[pos:pos + m.end()])
        pos += m.end()
    opened = re.findall(r"<([A-Za-z_:][\w:.-]*)[^>]*?(?<!/)>", head)
    opened = [t for t in opened if not t.startswith("?")]
    tail = "".join("</%s>" % t for t in reversed(opened))
    cut = head + "".join(body) + tail
    add("xml", cut, tag)
    add("detect", cut, tag)


# sample_data
for p in sorted((ROOT / "sample_data").rglob("*")):
    if not p.is_file() or p.suffix not in (".json", ".jsonl", ".xml"):
        continue
    tag = p.stem[:40]
    if p.suffix == ".xml":
        xml_cut(p, tag)
    elif p.suffix == ".jsonl":
        jsonl_cut(p, tag)
    elif p.stat().st_size <= MAX:
        add("json", p.read_bytes(), tag)
        add("detect", p.read_bytes(), tag)
        add("record", bytes([5]) + p.read_bytes(), tag)
    else:
        json_cut(p, tag)

# the bad-input corpus, whole
for p in sorted((ROOT / "tests" / "bad_input").iterdir()):
    data = p.read_bytes()
    add("detect", data, p.stem)
    add({".xml": "xml", ".jsonl": "jsonl"}.get(p.suffix, "json"), data, p.stem)

# realdata: the feeds only
if REAL.is_dir():
    for p in sorted((REAL / "nvd").glob("*.json")):
        json_cut(p, p.stem[:40])
    for p in sorted((REAL / "cve5").rglob("CVE-*.json"))[::60]:
        if p.stat().st_size <= MAX:
            add("json", p.read_bytes(), p.stem)
            add("record", bytes([5]) + p.read_bytes(), p.stem)
    for p in sorted((REAL / "attack").glob("*.json")):
        json_cut(p, p.stem[:40], n=4)
    for p in sorted((REAL / "capec").glob("*.xml")) + sorted((REAL / "cwe").glob("*.xml")):
        xml_cut(p, p.stem[:40])
    for sub in ("arxiv", "nonsecurity", "labelled"):
        for p in sorted((REAL / sub).glob("*.jsonl")):
            jsonl_cut(p, p.stem[:40])
else:
    print("fuzz-seeds: %s not found; realdata cuts skipped" % REAL, file=sys.stderr)

# gzip: the detect seeds compressed (mtime 0 for determinism)
for name, data in list(seeds["detect"].items())[::2]:
    add("gzip", gzip.compress(data, mtime=0), name.split("-", 1)[1])

# rules: the shipped rule files, cut to their first rules, and the test ones
for p in sorted((ROOT / "rules").glob("*.toml")) + sorted((ROOT / "tests").rglob("*.toml")):
    text = p.read_text(encoding="utf-8")
    add("rules", text, p.stem)
    blocks = text.split("[[rule]]")
    if len(blocks) > 4:
        add("rules", "[[rule]]".join(blocks[:4]), p.stem + "-head")
        for i, b in enumerate(blocks[1:25]):
            add("rules", blocks[0] + "[[rule]]" + b, "%s-rule%d" % (p.stem, i))
# hand-written bad rule files: each a different refusal
BAD_RULES = {
    "bad-regex": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "(unclosed"\nweight = 1.0\n',
    "nan-weight": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "x"\nweight = nan\n',
    "inf-weight": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "x"\nweight = inf\n',
    "dup-name": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "x"\nweight = 1.0\n'
                '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "y"\nweight = 2.0\n',
    "thresholds": '[thresholds]\nhigh = 1.0\nlow = 2.0\nmin_text_len = -1\n',
    "not-toml": 'this is = not [toml',
    "empty-pattern": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = ""\nweight = 1.0\ncap = 0\n',
    "huge-repeat": '[[rule]]\nname = "a"\ncategory = "vuln"\npattern = "(a{1000}){1000}"\nweight = 1.0\n',
}
for name, text in BAD_RULES.items():
    add("rules", text, name)

for target, files in seeds.items():
    d = OUT / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.iterdir():
        old.unlink()
    for name, data in files.items():
        (d / name).write_bytes(data)
    print("fuzz-seeds: %-7s %4d seeds, %7d bytes" % (target, len(files), sum(map(len, files.values()))))
