#!/usr/bin/env python3
"""Extract record texts from ../shared/realdata roughly as the ingest readers will, for tuning
the default rules before the real readers land. Writes JSONL {group, id, text} to stdout.

Groups name the expectation: sec:* should be kept, non:* should not, label:* are mixed.
Only a tuning aid: the committed realdata test runs the real ingest instead."""
import glob, json, os, sys, xml.etree.ElementTree as ET

ROOT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "../../../shared/realdata")
out = sys.stdout

def emit(group, rid, parts):
    text = "\n".join(p for p in parts if p)
    out.write(json.dumps({"group": group, "id": rid, "text": text}) + "\n")

def nvd_api2(path):
    d = json.load(open(path))
    for v in d["vulnerabilities"]:
        c = v["cve"]
        parts = [c["id"]]
        parts += [x["value"] for x in c.get("descriptions", []) if x.get("lang") == "en"]
        for w in c.get("weaknesses", []):
            parts += [x["value"] for x in w.get("description", []) if x.get("lang") == "en"]
        for key, ms in c.get("metrics", {}).items():
            for m in ms:
                parts.append(m.get("cvssData", {}).get("vectorString", ""))
        rejected = c.get("vulnStatus") == "Rejected" or any("** REJECT **" in p or p.startswith("Rejected reason:") for p in parts)
        emit("non:nvd-rejected" if rejected else "sec:nvd", c["id"], parts)

def nvd_legacy(path):
    d = json.load(open(path))
    for item in d["CVE_Items"]:
        c = item["cve"]
        rid = c["CVE_data_meta"]["ID"]
        parts = [rid]
        parts += [x["value"] for x in c["description"]["description_data"] if x.get("lang") == "en"]
        for pt in c.get("problemtype", {}).get("problemtype_data", []):
            parts += [x["value"] for x in pt.get("description", [])]
        imp = item.get("impact", {})
        parts.append(imp.get("baseMetricV3", {}).get("cvssV3", {}).get("vectorString", ""))
        parts.append(imp.get("baseMetricV2", {}).get("cvssV2", {}).get("vectorString", ""))
        rejected = any("** REJECT **" in p or p.startswith("Rejected reason:") for p in parts)
        emit("non:nvd-rejected" if rejected else "sec:nvd-legacy", rid, parts)

def cve5(path):
    d = json.load(open(path))
    meta = d["cveMetadata"]
    rid = meta["cveId"]
    cont = d.get("containers", {})
    parts = [rid]
    for c in [cont.get("cna", {})] + cont.get("adp", []):
        parts.append(c.get("title", ""))
        parts += [x["value"] for x in c.get("descriptions", []) if x.get("lang", "en").startswith("en")]
        parts += [x["value"] for x in c.get("rejectedReasons", []) if x.get("lang", "en").startswith("en")]
        for pt in c.get("problemTypes", []):
            for x in pt.get("descriptions", []):
                parts.append(x.get("cweId", ""))
                parts.append(x.get("description", ""))
        for m in c.get("metrics", []):
            for k, v in m.items():
                if isinstance(v, dict) and "vectorString" in v:
                    parts.append(v["vectorString"])
    group = "non:cve5-rejected" if meta.get("state") == "REJECTED" else "sec:cve5"
    emit(group, rid, parts)

def stix(path, tag):
    d = json.load(open(path))
    for o in d["objects"]:
        t = o.get("type")
        if t in ("relationship", "marking-definition", "identity", "x-mitre-collection",
                 "x-mitre-matrix", "x-mitre-data-source", "x-mitre-data-component",
                 "x-mitre-analytic", "x-mitre-detection-strategy"):
            continue
        parts = [o.get("name", ""), o.get("description", "")]
        for r in o.get("external_references", []):
            if r.get("source_name", "").startswith("mitre-") and r.get("external_id"):
                parts.append(r["external_id"])
        parts += o.get("x_mitre_platforms", [])
        parts += [k["phase_name"] for k in o.get("kill_chain_phases", [])]
        dead = o.get("revoked") or o.get("x_mitre_deprecated")
        group = ("dead:" if dead else "sec:") + "stix-" + t
        emit(group, o["id"], parts)

def text_of(el):
    return " ".join(" ".join(el.itertext()).split()) if el is not None else ""

def capec(path):
    ns = {"c": "http://capec.mitre.org/capec-3"}
    root = ET.parse(path).getroot()
    for ap in root.iterfind(".//c:Attack_Pattern", ns):
        parts = [ap.get("Name"), text_of(ap.find("c:Description", ns)), text_of(ap.find("c:Extended_Description", ns))]
        parts += ["CWE-" + w.get("CWE_ID") for w in ap.iterfind("c:Related_Weaknesses/c:Related_Weakness", ns)]
        dead = ap.get("Status") in ("Deprecated", "Obsolete")
        emit(("dead:" if dead else "sec:") + "capec", "CAPEC-" + ap.get("ID"), parts)

def cwe(path):
    ns = {"c": "http://cwe.mitre.org/cwe-7"}
    root = ET.parse(path).getroot()
    for w in root.iterfind(".//c:Weakness", ns):
        parts = [w.get("Name"), text_of(w.find("c:Description", ns)), text_of(w.find("c:Extended_Description", ns))]
        parts += ["CWE-" + r.get("CWE_ID") for r in w.iterfind("c:Related_Weaknesses/c:Related_Weakness", ns)]
        dead = w.get("Status") in ("Deprecated", "Obsolete")
        emit(("dead:" if dead else "sec:") + "cwe", "CWE-" + w.get("ID"), parts)

def arxiv(path):
    for line in open(path):
        r = json.loads(line)
        group = "label:arxiv-security" if r.get("label") == "security" else "label:arxiv-other"
        emit(group, r["id"], [r.get("title", ""), r.get("abstract", "")])

def debian(path):
    for line in open(path):
        r = json.loads(line)
        sec = r.get("suite_is_security") or r.get("mentions_cve")
        emit("label:debian-security" if sec else "non:debian", r["id"], [r.get("text", "")])

for p in sorted(glob.glob(f"{ROOT}/nvd/nvd-api2.0-*.json")): nvd_api2(p)
for p in sorted(glob.glob(f"{ROOT}/nvd/nvdcve-1.1-*.json")): nvd_legacy(p)
for p in sorted(glob.glob(f"{ROOT}/cve5/**/CVE-*.json", recursive=True)): cve5(p)
for p in sorted(glob.glob(f"{ROOT}/attack/*.json")): stix(p, os.path.basename(p))
capec(f"{ROOT}/capec/capec_v3.9.xml")
cwe(f"{ROOT}/cwe/cwec_v4.14.xml")
arxiv(f"{ROOT}/arxiv/arxiv-cs-sample100_albertomontero.labelled.jsonl")
debian(f"{ROOT}/nonsecurity/debian-bookworm-changelog-entries.jsonl")
