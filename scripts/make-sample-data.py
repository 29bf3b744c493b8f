#!/usr/bin/env python3
"""Regenerate sample_data/ deterministically from ../shared/realdata (small real samples of
each feed; see sample_data/SOURCES.md). Run from the crate root:

    python3 scripts/make-sample-data.py [REALDATA_DIR]

Selections are fixed rules over the sorted input (no randomness), so the output only changes
when the input does. Records are copied verbatim; only wrappers are rebuilt (counts fixed).
"""
import json
import re
import shutil
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SRC = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared" / "realdata"
OUT = ROOT / "sample_data"


def nvd_api2():
    page = json.loads((SRC / "nvd/nvd-api2.0-page0-startIndex0-2000cves_reaphsoft.json").read_text())
    vulns = page["vulnerabilities"]
    rejected = [i for i, v in enumerate(vulns) if v["cve"].get("vulnStatus") == "Rejected"][:10]
    keep, i = set(rejected), 0
    while len(keep) < 60:
        keep.add(i)
        i += 1
    keep = sorted(keep)
    page["vulnerabilities"] = [vulns[i] for i in keep]
    page["resultsPerPage"] = len(keep)
    (OUT / "nvd").mkdir(parents=True, exist_ok=True)
    (OUT / "nvd/nvd-api2.0-page0-sample.json").write_text(json.dumps(page))
    return len(keep)


def nvd_legacy():
    feed = json.loads((SRC / "nvd/nvdcve-1.1-recent-2019-09-26_jeromeli.json").read_text())
    items = feed["CVE_Items"]
    keep = items[::24][:20]
    feed["CVE_Items"] = keep
    feed["CVE_data_numberOfCVEs"] = str(len(keep))
    (OUT / "nvd/nvdcve-1.1-recent-2019-09-26-sample.json").write_text(json.dumps(feed, indent=2))
    return len(keep)


def cve5():
    base = SRC / "cve5/vulnrichment"
    files = sorted(p for p in base.rglob("CVE-*.json"))
    rejected = [p for p in files if json.loads(p.read_text())["cveMetadata"]["state"] == "REJECTED"]
    keep = sorted(set(files[::16]) | set(rejected))
    for p in keep:
        dst = OUT / "cve5" / p.relative_to(base)
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(p, dst)
    return len(keep)


STIX_CAPS = {
    "attack-pattern": 25, "relationship": 25, "malware": 8, "tool": 2, "intrusion-set": 4,
    "course-of-action": 4, "x-mitre-tactic": 5, "campaign": 1, "x-mitre-data-component": 2,
    "x-mitre-data-source": 1, "x-mitre-matrix": 1, "x-mitre-collection": 1, "identity": 1,
    "marking-definition": 1,
}


def stix():
    bundle = json.loads((SRC / "attack/mobile-attack-17.1.json").read_text())
    objs = bundle["objects"]
    taken, keep = {}, []
    # Revoked and deprecated attack patterns first, so the sample shows both flags.
    flagged = [o for o in objs if o["type"] == "attack-pattern" and (o.get("revoked") or o.get("x_mitre_deprecated"))][:5]
    for o in flagged:
        taken["attack-pattern"] = taken.get("attack-pattern", 0) + 1
    for o in objs:
        t = o["type"]
        if o in flagged:
            keep.append(o)
        elif taken.get(t, 0) < STIX_CAPS.get(t, 0):
            taken[t] = taken.get(t, 0) + 1
            keep.append(o)
    ids = {o["id"] for o in keep}
    for o in keep:
        if o["type"] == "x-mitre-collection":
            o["x_mitre_contents"] = [c for c in o.get("x_mitre_contents", []) if c.get("object_ref") in ids]
    bundle["objects"] = keep
    (OUT / "attack").mkdir(parents=True, exist_ok=True)
    (OUT / "attack/mobile-attack-17.1-sample.json").write_text(json.dumps(bundle, indent=4, ensure_ascii=False))
    shutil.copyfile(SRC / "attack/ATTACK-LICENSE.txt", OUT / "attack/ATTACK-LICENSE.txt")
    return len(keep)


def elements(text, tag):
    """Verbatim spans of <tag ...>...</tag> (or <tag .../>) elements, in order."""
    pat = re.compile(r"<%s\b[^>]*?(?:/>|>.*?</%s>)" % (tag, tag), re.S)
    return pat.findall(text)


def catalog(src, dst, record_tag, section, must_ids, every, cats, views):
    text = src.read_text(encoding="utf-8")
    head_end = text.index("<%s>" % section)
    head = text[:head_end]
    root_tag = re.search(r"<(\w+_Catalog)\b", head).group(1)
    recs = elements(text, record_tag)
    keep = []
    for i, r in enumerate(recs):
        rid = re.search(r'\bID="(\d+)"', r).group(1)
        if i % every == 0 or rid in must_ids or ('Status="Deprecated"' in r and sum('Status="Deprecated"' in k for k in keep) < 3):
            keep.append(r)
    cat_spans = elements(text, "Category")[:cats]
    view_spans = elements(text, "View")[:views]
    body = head + "<%s>\n      " % section + "\n      ".join(keep) + "\n   </%s>\n" % section
    body += "   <Categories>\n      " + "\n      ".join(cat_spans) + "\n   </Categories>\n"
    body += "   <Views>\n      " + "\n      ".join(view_spans) + "\n   </Views>\n"
    body += "</%s>\n" % root_tag
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_text(body, encoding="utf-8")
    ET.fromstring(body.encode("utf-8"))  # must stay well-formed
    return len(keep), len(cat_spans), len(view_spans), body


def capec():
    n = catalog(SRC / "capec/capec_v3.9.xml", OUT / "capec/capec_v3.9-sample.xml", "Attack_Pattern",
                "Attack_Patterns", {"66", "7", "112"}, 24, 5, 2)
    shutil.copyfile(SRC / "capec/CAPEC-and-ATTACK-TERMS-OF-USE_mitre-cti.txt",
                    OUT / "capec/CAPEC-and-ATTACK-TERMS-OF-USE_mitre-cti.txt")
    # The upstream collector's shape: the catalogue as one JSON string.
    (OUT / "capec/capec_data_xml_data-sample.json").write_text(json.dumps({"xml_data": n[3]}))
    return n[:3]


def cwe():
    n = catalog(SRC / "cwe/cwec_v4.14.xml", OUT / "cwe/cwec_v4.14-sample.xml", "Weakness",
                "Weaknesses", {"79", "89", "787", "22"}, 40, 5, 2)
    shutil.copyfile(SRC / "cwe/CWE-TERMS-OF-USE.txt", OUT / "cwe/CWE-TERMS-OF-USE.txt")
    return n[:3]


def debian():
    lines = (SRC / "nonsecurity/debian-bookworm-changelog-entries.jsonl").read_text(encoding="utf-8").splitlines()
    sec = [l for l in lines if (lambda d: d["suite_is_security"] or d["mentions_cve"])(json.loads(l))]
    non = [l for l in lines if l not in sec]
    keep = set(sec[::9][:25]) | set(non[::65][:35])
    out = [l for l in lines if l in keep]
    (OUT / "nonsecurity").mkdir(parents=True, exist_ok=True)
    (OUT / "nonsecurity/debian-bookworm-changelog-sample.jsonl").write_text("\n".join(out) + "\n", encoding="utf-8")
    return len(out)


def arxiv():
    (OUT / "arxiv").mkdir(parents=True, exist_ok=True)
    name = "arxiv-cs-sample100_albertomontero.labelled.jsonl"
    shutil.copyfile(SRC / "arxiv" / name, OUT / "arxiv" / name)
    return sum(1 for l in (SRC / "arxiv" / name).read_text().splitlines() if l.strip())


def main():
    for sub in ["nvd", "cve5", "attack", "capec", "cwe", "nonsecurity", "arxiv"]:
        shutil.rmtree(OUT / sub, ignore_errors=True)
    counts = {
        "nvd api2": nvd_api2(),
        "nvd legacy": nvd_legacy(),
        "cve5 files": cve5(),
        "stix objects": stix(),
        "capec (patterns, categories, views)": capec(),
        "cwe (weaknesses, categories, views)": cwe(),
        "debian jsonl": debian(),
        "arxiv jsonl": arxiv(),
    }
    for k, v in counts.items():
        print(f"{k}: {v}")


if __name__ == "__main__":
    main()
