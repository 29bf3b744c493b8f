//! STIX 2.0/2.1 objects (ATT&CK bundles). Every type becomes a record; only the types in
//! `IngestOptions::stix_types` are scored, since relationships and bookkeeping objects are
//! thrown away by the next stage anyway.

use super::common::RecordParts;
use super::text::TextBuilder;
use crate::record::{RecordFlags, SourceKind};
use serde::Deserialize;
use std::borrow::Cow;

#[derive(Deserialize)]
pub(crate) struct StixObject<'a> {
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    id: Cow<'a, str>,
    #[serde(borrow, default)]
    name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    description: Option<Cow<'a, str>>,
    #[serde(default)]
    revoked: Option<bool>,
    #[serde(default)]
    x_mitre_deprecated: Option<bool>,
    #[serde(borrow, default)]
    external_references: Vec<ExternalReference<'a>>,
    #[serde(borrow, default)]
    x_mitre_platforms: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    kill_chain_phases: Vec<KillChainPhase<'a>>,
    #[serde(borrow, default)]
    aliases: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    x_mitre_aliases: Vec<Cow<'a, str>>,
    #[serde(borrow, default)]
    x_mitre_shortname: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    relationship_type: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct ExternalReference<'a> {
    #[serde(borrow, default)]
    source_name: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    external_id: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct KillChainPhase<'a> {
    #[serde(borrow, default)]
    phase_name: Option<Cow<'a, str>>,
}

/// ATT&CK ids come from the `mitre-attack` (or mobile/ics) external reference: `T1059.001`.
fn attack_id<'a>(refs: &'a [ExternalReference<'a>]) -> Option<&'a str> {
    refs.iter()
        .find(|r| {
            r.source_name
                .as_deref()
                .is_some_and(|s| s.starts_with("mitre-") && s.ends_with("attack"))
        })
        .and_then(|r| r.external_id.as_deref())
}

pub(crate) fn stix_parts(
    obj: StixObject<'_>,
    scored_types: &[String],
    max_text: usize,
) -> RecordParts {
    let mut t = TextBuilder::new(max_text);
    let name = obj.name.as_deref().unwrap_or("");
    match attack_id(&obj.external_references) {
        Some(aid) => t.line(&format!("{aid} {name}")),
        None => t.line(name),
    }
    if let Some(rel) = &obj.relationship_type {
        t.line(rel);
    }
    if let Some(d) = &obj.description {
        t.line(d);
    }
    let aliases = obj
        .aliases
        .iter()
        .chain(obj.x_mitre_aliases.iter())
        .map(|a| a.as_ref())
        .filter(|a| *a != name);
    t.joined("Aliases: ", ", ", aliases);
    t.joined(
        "Platforms: ",
        ", ",
        obj.x_mitre_platforms.iter().map(|p| p.as_ref()),
    );
    t.joined(
        "Tactics: ",
        ", ",
        obj.kill_chain_phases
            .iter()
            .filter_map(|k| k.phase_name.as_deref()),
    );
    if let Some(short) = &obj.x_mitre_shortname {
        t.line(&format!("Tactic: {short}"));
    }
    RecordParts {
        id: obj.id.to_string(),
        source: SourceKind::Stix,
        scored: scored_types.iter().any(|s| s == obj.kind.as_ref()),
        kind: obj.kind.into_owned(),
        text: t.finish(),
        flags: RecordFlags {
            revoked: obj.revoked.unwrap_or(false),
            deprecated: obj.x_mitre_deprecated.unwrap_or(false),
            rejected: false,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_pattern_text_and_flags() {
        let j = r#"{"type":"attack-pattern","id":"attack-pattern--1","name":"PowerShell",
          "description":"Adversaries may abuse PowerShell.","revoked":false,"x_mitre_deprecated":true,
          "external_references":[{"source_name":"capec","external_id":"CAPEC-1"},{"source_name":"mitre-attack","external_id":"T1059.001"}],
          "x_mitre_platforms":["Windows"],"kill_chain_phases":[{"kill_chain_name":"mitre-attack","phase_name":"execution"}]}"#;
        let p = stix_parts(
            serde_json::from_str(j).unwrap(),
            &["attack-pattern".into()],
            1 << 16,
        );
        assert_eq!(p.id, "attack-pattern--1");
        assert_eq!(p.kind, "attack-pattern");
        assert!(p.scored && p.flags.deprecated && !p.flags.revoked);
        assert_eq!(
            p.text,
            "T1059.001 PowerShell\nAdversaries may abuse PowerShell.\nPlatforms: Windows\nTactics: execution"
        );
    }

    #[test]
    fn relationship_is_not_scored_by_default() {
        let j = r#"{"type":"relationship","id":"relationship--1","relationship_type":"uses","description":"X uses Y.","revoked":true}"#;
        let p = stix_parts(
            serde_json::from_str(j).unwrap(),
            &crate::ingest::default_stix_types(),
            1 << 16,
        );
        assert!(!p.scored && p.flags.revoked);
        assert_eq!(p.text, "uses\nX uses Y.");
    }
}
