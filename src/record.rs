//! The record: the unit that flows from ingest through rules, the verifier and the store.
//! Shared by every room, so it lives here and nowhere else.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

/// Which feed format a record came from. Detected from content, not only from the file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "kebab-case")]
pub enum SourceKind {
    /// NVD CVE API 2.0 page: `vulnerabilities[].cve`.
    NvdApi2,
    /// Legacy NVD JSON 1.1 feed: `CVE_Items[]`.
    NvdLegacy,
    /// CVE JSON 5 record (cvelistV5 layout).
    Cve5,
    /// STIX 2.0/2.1 bundle object (ATT&CK).
    Stix,
    /// CAPEC XML Attack_Pattern or Category.
    Capec,
    /// CWE XML Weakness or Category.
    Cwe,
    /// Any other JSON record (JSON array element, wrapped list element, JSONL line).
    Json,
}

impl SourceKind {
    pub const ALL: [SourceKind; 7] = [
        SourceKind::NvdApi2,
        SourceKind::NvdLegacy,
        SourceKind::Cve5,
        SourceKind::Stix,
        SourceKind::Capec,
        SourceKind::Cwe,
        SourceKind::Json,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SourceKind::NvdApi2 => "nvd-api2",
            SourceKind::NvdLegacy => "nvd-legacy",
            SourceKind::Cve5 => "cve5",
            SourceKind::Stix => "stix",
            SourceKind::Capec => "capec",
            SourceKind::Cwe => "cwe",
            SourceKind::Json => "json",
        }
    }

    pub fn parse(s: &str) -> Option<SourceKind> {
        SourceKind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a record's original bytes live, so they can always be read back
/// (`crate::ingest::read_original`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Locator {
    /// The input file (as given or discovered; `.gz` files keep their compressed name).
    pub file: Arc<PathBuf>,
    /// 0-based position of the record among the records of its file.
    pub index: u64,
    /// Byte offset of the record's first byte in the (decompressed) file content.
    /// For records nested in a JSON string (a CAPEC catalogue under `xml_data`), the offset
    /// into the decoded string, with `outer_offset` set to the string's position.
    pub offset: u64,
    /// Length in bytes of the record's original text.
    pub len: u64,
    /// Set when the record sits inside a JSON string value; see `offset`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outer_offset: Option<u64>,
}

impl fmt::Display for Locator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}#{}@{}+{}",
            self.file.display(),
            self.index,
            self.offset,
            self.len
        )
    }
}

/// Marks that readers set from the record's own status fields.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordFlags {
    /// STIX `revoked: true`.
    pub revoked: bool,
    /// STIX `x_mitre_deprecated`, CAPEC/CWE `Status="Deprecated"` (`Obsolete` entries are not
    /// flagged: CAPEC 3.9 counts 559 non-deprecated patterns with its one Obsolete pattern in).
    pub deprecated: bool,
    /// CVE state REJECTED / NVD `vulnStatus: Rejected` / `** REJECT **` description.
    pub rejected: bool,
}

/// One record of a feed, with the text a curator would read.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// Natural identifier (CVE id, STIX id, `CAPEC-66`, `CWE-79`, a JSON record's `id`), or
    /// `file#index` when the record has none.
    pub id: String,
    pub source: SourceKind,
    /// Sub-type within the source: STIX `type` (`attack-pattern`, `relationship`, …),
    /// XML element (`Attack_Pattern`, `Category`, `Weakness`), `cve` for CVE feeds.
    pub kind: String,
    pub locator: Locator,
    /// Extracted text that rules and the verifier read. Never contains the file name.
    pub text: String,
    pub flags: RecordFlags,
    /// Whether this record's kind is scored (see `IngestOptions::stix_types`); unscored records
    /// are still counted and stored, and always land in the reject tier.
    pub scored: bool,
    /// Value of the label field asked for by `IngestOptions::label_field` (for `eval`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// What the workbench shows a curator as a record's name. Natural ids (CVE-2024-1, CAPEC-66)
/// say what a record is; a STIX id is an opaque UUID, so STIX objects show their first text line
/// instead, which the reader writes as the ATT&CK id and the object's name (`T1059.001
/// PowerShell`).
pub fn display_name(source: SourceKind, id: &str, text: &str) -> String {
    if source == SourceKind::Stix {
        if let Some(line) = text.lines().next().map(str::trim).filter(|l| !l.is_empty()) {
            return line.chars().take(80).collect();
        }
    }
    id.to_string()
}

impl Record {
    /// Stable content hash of the extracted text (the verifier cache key and resume check).
    pub fn content_hash(&self) -> [u8; 32] {
        *blake3::hash(self.text.as_bytes()).as_bytes()
    }
}
