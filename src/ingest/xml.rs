//! CAPEC and CWE catalogues read as a stream of XML events. Element names are matched by local
//! name, so any namespace version works. DOCTYPE entity declarations and external DTDs are
//! refused before any record is read: entities are never expanded.

use super::common::{Place, RecordParts};
use super::text::{collapse_ws, push_unique, TextBuilder};
use super::{IngestError, IngestOptions};
use crate::record::{Record, RecordFlags, SourceKind};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::BufRead;
use std::ops::ControlFlow;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Catalog {
    Capec,
    Cwe,
}

impl Catalog {
    fn from_root(local: &[u8]) -> Option<Catalog> {
        match local {
            b"Attack_Pattern_Catalog" => Some(Catalog::Capec),
            b"Weakness_Catalog" => Some(Catalog::Cwe),
            _ => None,
        }
    }

    fn record_kind(self, local: &[u8]) -> Option<&'static str> {
        match (self, local) {
            (Catalog::Capec, b"Attack_Pattern") => Some("Attack_Pattern"),
            (Catalog::Cwe, b"Weakness") => Some("Weakness"),
            (_, b"Category") => Some("Category"),
            (_, b"View") => Some("View"),
            _ => None,
        }
    }

    fn source(self) -> SourceKind {
        match self {
            Catalog::Capec => SourceKind::Capec,
            Catalog::Cwe => SourceKind::Cwe,
        }
    }

    fn prefix(self) -> &'static str {
        match self {
            Catalog::Capec => "CAPEC",
            Catalog::Cwe => "CWE",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Field {
    Description,
    Extended,
    Summary,
    Objective,
}

impl Field {
    fn from_local(local: &[u8]) -> Option<Field> {
        match local {
            b"Description" => Some(Field::Description),
            b"Extended_Description" => Some(Field::Extended),
            b"Summary" => Some(Field::Summary),
            b"Objective" => Some(Field::Objective),
            _ => None,
        }
    }
}

/// A record element being read.
struct Building {
    kind: &'static str,
    start: u64,
    /// Element depth of the record itself (root is 1).
    depth: usize,
    id: String,
    name: String,
    status: String,
    field: Option<(Field, usize)>,
    description: String,
    extended: String,
    summary: String,
    objective: String,
    related: Vec<String>,
    error: Option<(u64, Bad)>,
}

/// The first problem inside a record; the record is skipped, reading goes on.
#[derive(Clone)]
enum Bad {
    Utf8,
    Text(String),
}

impl Building {
    fn field_text(&mut self, f: Field) -> &mut String {
        match f {
            Field::Description => &mut self.description,
            Field::Extended => &mut self.extended,
            Field::Summary => &mut self.summary,
            Field::Objective => &mut self.objective,
        }
    }
}

fn attr(e: &BytesStart<'_>, name: &[u8]) -> Option<String> {
    e.attributes().flatten().find_map(|a| {
        (a.key.local_name().as_ref() == name).then(|| {
            let raw = String::from_utf8_lossy(&a.value);
            quick_xml::escape::unescape(&raw)
                .map(|c| c.into_owned())
                .unwrap_or_else(|_| raw.into_owned())
        })
    })
}

/// Where the XML text lives: a file, or a JSON string inside one (`outer_offset`).
pub(crate) struct XmlSource<'a> {
    pub file: &'a Arc<PathBuf>,
    pub outer_offset: Option<u64>,
    pub first_index: u64,
}

/// Read every record of a CAPEC/CWE catalogue into `emit`. `Break` when the callback stopped
/// the stream; otherwise the counts (a fatal problem is emitted and ends the catalogue).
pub(crate) fn read_catalog<R: BufRead>(
    src: R,
    at: &XmlSource<'_>,
    opts: &IngestOptions,
    emit: &mut dyn FnMut(Result<Record, IngestError>) -> ControlFlow<()>,
) -> ControlFlow<(), XmlSummary> {
    let mut reader = Reader::from_reader(src);
    reader.config_mut().trim_text(false);
    let mut buf = Vec::with_capacity(64 * 1024);
    let mut sum = XmlSummary::default();
    let mut depth = 0usize;
    let mut catalog: Option<Catalog> = None;
    let mut cur: Option<Building> = None;
    let mut next_index = at.first_index;
    let place_str = |pos: u64| match at.outer_offset {
        Some(outer) => format!("byte {pos} of the string at byte {outer}"),
        None => format!("byte {pos}"),
    };
    let syntax = |pos: u64, what: String| IngestError::Syntax {
        file: at.file.as_ref().clone(),
        place: place_str(pos),
        what,
    };
    macro_rules! fatal {
        ($err:expr) => {{
            sum.errors += 1;
            sum.bytes = reader.buffer_position();
            return match emit(Err($err)) {
                ControlFlow::Continue(()) => ControlFlow::Continue(sum),
                ControlFlow::Break(()) => ControlFlow::Break(()),
            };
        }};
    }
    loop {
        buf.clear();
        let before = reader.buffer_position();
        let event = match reader.read_event_into(&mut buf) {
            Ok(ev) => ev,
            Err(e) => {
                let pos = reader.error_position();
                fatal!(IngestError::Syntax {
                    file: at.file.as_ref().clone(),
                    place: match at.outer_offset {
                        None => super::source::describe_place(at.file, pos),
                        Some(_) => place_str(pos),
                    },
                    what: format!("malformed XML: {e}"),
                })
            }
        };
        let mut finished: Option<Building> = None;
        match event {
            Event::DocType(t) => {
                let body = String::from_utf8_lossy(&t);
                if body.contains("<!ENTITY") || body.contains("SYSTEM") || body.contains("PUBLIC") {
                    fatal!(IngestError::XmlEntities {
                        file: at.file.as_ref().clone(),
                        place: place_str(before),
                    });
                }
            }
            Event::Start(ref e) | Event::Empty(ref e) if depth == 0 => {
                catalog = Catalog::from_root(e.local_name().as_ref());
                if catalog.is_none() {
                    fatal!(IngestError::Unsupported {
                        file: at.file.as_ref().clone(),
                        what: format!(
                            "XML root element <{}> at {} is neither a CAPEC Attack_Pattern_Catalog \
                             nor a CWE Weakness_Catalog",
                            String::from_utf8_lossy(e.local_name().as_ref()),
                            place_str(before)
                        ),
                    });
                }
                sum.catalog_source = catalog.map(Catalog::source);
                if matches!(event, Event::Start(_)) {
                    depth = 1;
                }
            }
            Event::Start(e) => {
                depth += 1;
                cur = open_element(cur, catalog, depth, &e, before);
            }
            Event::Empty(e) => {
                cur = open_element(cur, catalog, depth + 1, &e, before);
                if cur.as_ref().is_some_and(|b| b.depth == depth + 1) {
                    finished = cur.take();
                }
            }
            Event::End(_) => {
                if let Some(b) = &mut cur {
                    match b.field {
                        Some((_, fd)) if fd == depth => b.field = None,
                        Some((f, _)) => b.field_text(f).push(' '),
                        None => {}
                    }
                    if b.depth == depth {
                        finished = cur.take();
                    }
                }
                depth = depth.saturating_sub(1);
            }
            Event::Text(t) => {
                if let Some(b) = &mut cur {
                    match std::str::from_utf8(&t) {
                        Ok(s) => match quick_xml::escape::unescape(s) {
                            Ok(text) => append(b, &text, opts.max_text_bytes),
                            Err(e) => {
                                b.error.get_or_insert((
                                    before,
                                    Bad::Text(format!("{e}; custom entities are never expanded")),
                                ));
                            }
                        },
                        Err(e) => {
                            b.error
                                .get_or_insert((before + e.valid_up_to() as u64, Bad::Utf8));
                        }
                    }
                }
            }
            Event::CData(t) => {
                if let Some(b) = &mut cur {
                    match std::str::from_utf8(&t) {
                        Ok(s) => append(b, s, opts.max_text_bytes),
                        Err(e) => {
                            b.error
                                .get_or_insert((before + e.valid_up_to() as u64, Bad::Utf8));
                        }
                    }
                }
            }
            Event::Eof => {
                if catalog.is_none() {
                    fatal!(syntax(
                        before,
                        "no root element; expected a CAPEC or CWE catalogue".into()
                    ));
                }
                if depth > 0 {
                    fatal!(syntax(
                        before,
                        format!("unexpected end of input; expected {depth} more closing tag(s)")
                    ));
                }
                break;
            }
            _ => {}
        }
        if let (Some(b), Some(catalog)) = (finished, catalog) {
            let end = reader.buffer_position();
            let place = Place {
                file: at.file,
                opts,
                index: next_index,
                offset: b.start,
                len: end - b.start,
                outer_offset: at.outer_offset,
            };
            next_index += 1;
            let result = if place.len > opts.max_record_bytes {
                Err(IngestError::RecordTooLarge {
                    file: at.file.as_ref().clone(),
                    place: place_str(b.start),
                    len: place.len,
                    limit: opts.max_record_bytes,
                })
            } else if let Some((pos, bad)) = b.error.clone() {
                Err(match bad {
                    Bad::Utf8 => IngestError::InvalidUtf8 {
                        file: at.file.as_ref().clone(),
                        place: place_str(pos),
                    },
                    Bad::Text(what) => syntax(pos, what),
                })
            } else {
                Ok(place.record(parts(catalog, &b, opts.max_text_bytes)))
            };
            match &result {
                Ok(_) => sum.records += 1,
                Err(_) => sum.errors += 1,
            }
            if emit(result).is_break() {
                return ControlFlow::Break(());
            }
        }
    }
    sum.bytes = reader.buffer_position();
    ControlFlow::Continue(sum)
}

/// Update the record being built for an opening tag at `depth`, or start a new record.
fn open_element(
    cur: Option<Building>,
    catalog: Option<Catalog>,
    depth: usize,
    e: &BytesStart<'_>,
    start: u64,
) -> Option<Building> {
    let local = e.local_name();
    let local = local.as_ref();
    match cur {
        Some(mut b) => {
            if let Some((f, _)) = b.field {
                // Inline markup (xhtml:p, xhtml:li) separates words.
                b.field_text(f).push(' ');
            } else if depth == b.depth + 1 {
                if let Some(f) = Field::from_local(local) {
                    b.field = Some((f, depth));
                }
            }
            if local == b"Related_Weakness" {
                if let Some(id) = attr(e, b"CWE_ID") {
                    push_unique(&mut b.related, &format!("CWE-{id}"));
                }
            }
            Some(b)
        }
        None => {
            // Records sit under a section of the root: Catalog > Attack_Patterns > Attack_Pattern.
            let kind = catalog.filter(|_| depth == 3)?.record_kind(local)?;
            Some(Building {
                kind,
                start,
                depth,
                id: attr(e, b"ID").unwrap_or_default(),
                name: attr(e, b"Name").unwrap_or_default(),
                status: attr(e, b"Status").unwrap_or_default(),
                field: None,
                description: String::new(),
                extended: String::new(),
                summary: String::new(),
                objective: String::new(),
                related: Vec::new(),
                error: None,
            })
        }
    }
}

fn append(b: &mut Building, text: &str, max: usize) {
    if let Some((f, _)) = b.field {
        let s = b.field_text(f);
        if s.len() < max {
            s.push_str(super::text::truncate_str(text, max - s.len()));
        }
    }
}

#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct XmlSummary {
    pub records: u64,
    pub errors: u64,
    pub bytes: u64,
    pub catalog_source: Option<SourceKind>,
}

fn parts(catalog: Catalog, b: &Building, max_text: usize) -> RecordParts {
    let id = format!("{}-{}", catalog.prefix(), b.id);
    let mut t = TextBuilder::new(max_text);
    t.line(&format!("{id} {}", b.name));
    for field in [&b.description, &b.extended, &b.summary, &b.objective] {
        t.line(&collapse_ws(field));
    }
    t.joined(
        "Related weaknesses: ",
        ", ",
        b.related.iter().map(String::as_str),
    );
    let status = b.status.as_str();
    RecordParts {
        id,
        source: catalog.source(),
        kind: b.kind.to_string(),
        text: t.finish(),
        flags: RecordFlags {
            deprecated: status.eq_ignore_ascii_case("Deprecated"),
            ..RecordFlags::default()
        },
        // Views are lists of other entries, not content of their own.
        scored: b.kind != "View",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(xml: &str) -> Vec<Result<Record, IngestError>> {
        let file = Arc::new(PathBuf::from("t.xml"));
        let at = XmlSource {
            file: &file,
            outer_offset: None,
            first_index: 0,
        };
        let mut out = Vec::new();
        let _ = read_catalog(xml.as_bytes(), &at, &IngestOptions::default(), &mut |r| {
            out.push(r);
            ControlFlow::Continue(())
        });
        out
    }

    #[test]
    fn prefixed_namespaces_markup_and_kinds() {
        let xml = r#"<?xml version="1.0"?>
<c:Weakness_Catalog xmlns:c="http://cwe.mitre.org/cwe-99" xmlns:xhtml="http://www.w3.org/1999/xhtml">
 <c:Weaknesses>
  <c:Weakness ID="20" Name="Improper Input Validation" Status="Stable">
   <c:Description>The product <xhtml:b>does not</xhtml:b> validate input.</c:Description>
   <c:Extended_Description><xhtml:p>First.</xhtml:p><xhtml:p>Second.</xhtml:p></c:Extended_Description>
   <c:Related_Weaknesses><c:Related_Weakness Nature="ChildOf" CWE_ID="707"/></c:Related_Weaknesses>
  </c:Weakness>
  <c:Weakness ID="1" Name="Old" Status="Deprecated"/>
 </c:Weaknesses>
 <c:Views><c:View ID="1000" Name="Research" Status="Draft"><c:Objective>Research view.</c:Objective></c:View></c:Views>
</c:Weakness_Catalog>"#;
        let recs: Vec<Record> = read(xml).into_iter().map(Result::unwrap).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(recs[0].id, "CWE-20");
        assert_eq!(
            recs[0].text,
            "CWE-20 Improper Input Validation\nThe product does not validate input.\nFirst. Second.\n\
             Related weaknesses: CWE-707"
        );
        assert_eq!(
            &xml[recs[0].locator.offset as usize..][..26],
            "<c:Weakness ID=\"20\" Name=\""
        );
        assert!(
            xml[..(recs[0].locator.offset + recs[0].locator.len) as usize]
                .ends_with("</c:Weakness>")
        );
        assert!(recs[1].flags.deprecated && recs[1].scored);
        assert_eq!((recs[2].kind.as_str(), recs[2].scored), ("View", false));
        assert_eq!(recs[2].text, "CWE-1000 Research\nResearch view.");
    }

    #[test]
    fn other_xml_roots_are_unsupported() {
        let out = read("<rss><channel/></rss>");
        assert!(
            matches!(&out[..], [Err(IngestError::Unsupported { what, .. })] if what.contains("<rss>"))
        );
    }
}
