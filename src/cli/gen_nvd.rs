//! `cyberfilter gen-nvd --size 1G OUT`: write a deterministic NVD-API-2.0-shaped file of about
//! the given size, for the scan benchmark. Records are built from a fixed vocabulary with a
//! seeded PRNG, streamed to the file (constant memory); the same seed and size give the same
//! bytes on every machine.

use super::{EXIT_IOERR, EXIT_OK, EXIT_USAGE};
use std::io::{BufWriter, Write};
use std::path::PathBuf;

#[derive(Debug, Clone, clap::Args)]
pub struct GenNvdArgs {
    /// Output file (`-` for stdout).
    #[arg(value_name = "OUT")]
    pub out: PathBuf,
    /// Target size: bytes, or with a K/M/G suffix (powers of 1024).
    #[arg(long, default_value = "1G", value_parser = parse_size)]
    pub size: u64,
    /// PRNG seed.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
}

/// `1G` → 1073741824; plain numbers are bytes.
pub fn parse_size(s: &str) -> Result<u64, String> {
    let s = s.trim();
    let (num, mult) = match s.chars().last().map(|c| c.to_ascii_uppercase()) {
        Some('K') => (&s[..s.len() - 1], 1u64 << 10),
        Some('M') => (&s[..s.len() - 1], 1 << 20),
        Some('G') => (&s[..s.len() - 1], 1 << 30),
        _ => (s, 1),
    };
    num.trim()
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .ok_or_else(|| format!("not a size: `{s}` (try 1G, 256M or 1000000)"))
}

/// SplitMix64: tiny, fast, and fully specified, so output never depends on a crate version.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

const VENDORS: &[&str] = &[
    "acme",
    "globex",
    "initech",
    "umbrella",
    "hooli",
    "stark",
    "wayne",
    "cyberdyne",
    "tyrell",
    "soylent",
    "wonka",
    "vandelay",
    "aperture",
    "oscorp",
    "massive_dynamic",
];
const PRODUCTS: &[&str] = &[
    "gateway",
    "web_server",
    "mail_agent",
    "router_firmware",
    "cms",
    "vpn_client",
    "image_viewer",
    "pdf_reader",
    "database",
    "ldap_server",
    "print_spooler",
    "media_player",
    "wiki",
    "forum",
    "hypervisor",
    "kernel_driver",
    "ssh_daemon",
    "dns_resolver",
    "backup_agent",
    "erp_suite",
];
const COMPONENTS: &[&str] = &[
    "the packet parser",
    "the login page",
    "the file upload handler",
    "the XML importer",
    "the session manager",
    "the image decoder",
    "the search function",
    "the admin panel",
    "the REST API",
    "the template engine",
    "the TLS handshake code",
    "the archive extractor",
    "the configuration loader",
    "the plugin loader",
    "the font renderer",
    "the DHCP client",
];
/// (weakness phrase, CWE id)
const FLAWS: &[(&str, &str)] = &[
    ("A heap-based buffer overflow", "CWE-122"),
    ("A stack-based buffer overflow", "CWE-121"),
    ("An SQL injection vulnerability", "CWE-89"),
    ("A cross-site scripting (XSS) vulnerability", "CWE-79"),
    ("A use-after-free", "CWE-416"),
    ("An integer overflow", "CWE-190"),
    ("A path traversal vulnerability", "CWE-22"),
    ("An OS command injection vulnerability", "CWE-78"),
    (
        "A cross-site request forgery (CSRF) vulnerability",
        "CWE-352",
    ),
    ("An out-of-bounds read", "CWE-125"),
    ("An out-of-bounds write", "CWE-787"),
    ("A NULL pointer dereference", "CWE-476"),
    ("Improper authentication", "CWE-287"),
    ("Missing authorization", "CWE-862"),
    ("An XML external entity (XXE) issue", "CWE-611"),
    ("Deserialization of untrusted data", "CWE-502"),
    ("A race condition", "CWE-362"),
    ("Uncontrolled resource consumption", "CWE-400"),
    ("An information exposure", "CWE-200"),
    ("A server-side request forgery (SSRF) issue", "CWE-918"),
];
const ACTORS: &[&str] = &[
    "remote attackers",
    "remote authenticated users",
    "local users",
    "unauthenticated attackers",
    "context-dependent attackers",
    "physically proximate attackers",
    "an attacker",
];
const IMPACTS: &[&str] = &[
    "execute arbitrary code",
    "cause a denial of service (crash)",
    "obtain sensitive information",
    "gain privileges",
    "bypass authentication",
    "inject arbitrary web script or HTML",
    "read arbitrary files",
    "execute arbitrary SQL commands",
    "cause a denial of service (memory consumption)",
    "write arbitrary files",
    "hijack the authentication of administrators",
];
const VECTORS: &[&str] = &[
    "a crafted packet",
    "a long URL",
    "a crafted HTTP request",
    "a malformed file",
    "the name parameter",
    "a crafted certificate",
    "a specially crafted archive",
    "unspecified vectors",
    "a crafted JSON document",
    "the id parameter to index.php",
];
const EXTRA: &[&str] = &[
    "This issue affects versions before the fixed release.",
    "The vendor has released an update to address the issue.",
    "NOTE: the vendor disputes this issue because the behavior is documented.",
    "This vulnerability is only exploitable when the optional module is enabled.",
    "Exploitation requires the victim to open a crafted document.",
    "The issue was discovered during an internal review and reported in the changelog.",
    "Users are advised to upgrade to the latest version, which contains a fix.",
    "Successful exploitation could lead to a complete compromise of the device.",
];
/// Records that read like ordinary software notes: a realistic minority of NVD text.
const PLAIN: &[&str] = &[
    "The {p} component in {v} {P} {ver} changes the default behavior of the scheduler when the clock is adjusted, which can lead to unexpected results in reports.",
    "{v} {P} {ver} does not correctly display the release notes on the start page after an upgrade from an earlier version.",
    "In {v} {P} {ver}, the export function writes timestamps in local time instead of UTC, which might cause confusion in shared calendars.",
];
const REF_TAGS: &[&str] = &[
    "Vendor Advisory",
    "Third Party Advisory",
    "Exploit",
    "Patch",
    "Mailing List",
    "Release Notes",
    "VDB Entry",
    "Issue Tracking",
];
const AV: &[&str] = &["N", "A", "L", "P"];
const CIA: &[&str] = &["H", "L", "N"];

/// One `{"cve":{…}}` element into `buf`.
fn record(rng: &mut Rng, n: u64, buf: &mut String) {
    use std::fmt::Write as _;
    let year = 1999 + (n % 27) as u32;
    let vendor = rng.pick(VENDORS);
    let product = rng.pick(PRODUCTS);
    let ver = format!("{}.{}.{}", 1 + rng.below(9), rng.below(20), rng.below(30));
    let (flaw, cwe) = FLAWS[rng.below(FLAWS.len())];
    let plain = rng.chance(6);
    let mut desc = String::with_capacity(512);
    if plain {
        desc.push_str(
            &rng.pick(PLAIN)
                .replace("{p}", rng.pick(COMPONENTS).trim_start_matches("the "))
                .replace("{v}", vendor)
                .replace("{P}", product)
                .replace("{ver}", &ver),
        );
    } else {
        let _ = write!(
            desc,
            "{flaw} in {} in {vendor} {product} {ver} allows {} to {} via {}.",
            rng.pick(COMPONENTS),
            rng.pick(ACTORS),
            rng.pick(IMPACTS),
            rng.pick(VECTORS)
        );
    }
    for _ in 0..rng.below(3) {
        desc.push(' ');
        desc.push_str(rng.pick(EXTRA));
    }
    let id = format!("CVE-{year}-{:05}", 1000 + n % 90_000);
    let day = 1 + rng.below(28);
    let month = 1 + rng.below(12);
    let (av, c, i, a) = (rng.pick(AV), rng.pick(CIA), rng.pick(CIA), rng.pick(CIA));
    let score = 2.0 + rng.below(80) as f32 / 10.0;
    let sev = match score {
        s if s >= 9.0 => "CRITICAL",
        s if s >= 7.0 => "HIGH",
        s if s >= 4.0 => "MEDIUM",
        _ => "LOW",
    };
    let _ = write!(
        buf,
        r#"{{"cve":{{"id":"{id}","sourceIdentifier":"cve@mitre.org","published":"{year}-{month:02}-{day:02}T18:15:13.170","lastModified":"2025-11-21T04:37:33.720","vulnStatus":"Analyzed","cveTags":[],"descriptions":[{{"lang":"en","value":"{desc}"}}"#
    );
    if rng.chance(40) {
        let _ = write!(
            buf,
            r#",{{"lang":"es","value":"Se ha encontrado un problema en {vendor} {product} {ver} que permite a los atacantes remotos comprometer el sistema."}}"#
        );
    }
    let _ = write!(
        buf,
        r#"],"metrics":{{"cvssMetricV31":[{{"source":"nvd@nist.gov","type":"Primary","cvssData":{{"version":"3.1","vectorString":"CVSS:3.1/AV:{av}/AC:L/PR:N/UI:N/S:U/C:{c}/I:{i}/A:{a}","baseScore":{score:.1},"baseSeverity":"{sev}","attackVector":"NETWORK","attackComplexity":"LOW","privilegesRequired":"NONE","userInteraction":"NONE","scope":"UNCHANGED","confidentialityImpact":"HIGH","integrityImpact":"HIGH","availabilityImpact":"HIGH"}},"exploitabilityScore":3.9,"impactScore":5.9}}]"#
    );
    if rng.chance(50) {
        let _ = write!(
            buf,
            r#","cvssMetricV2":[{{"source":"nvd@nist.gov","type":"Primary","cvssData":{{"version":"2.0","vectorString":"AV:{av}/AC:L/Au:N/C:P/I:P/A:P","baseScore":7.5,"accessVector":"NETWORK","accessComplexity":"LOW","authentication":"NONE","confidentialityImpact":"PARTIAL","integrityImpact":"PARTIAL","availabilityImpact":"PARTIAL"}},"baseSeverity":"HIGH","exploitabilityScore":10.0,"impactScore":6.4,"acInsufInfo":false,"obtainAllPrivilege":false,"obtainUserPrivilege":false,"obtainOtherPrivilege":false,"userInteractionRequired":false}}]"#
        );
    }
    let _ = write!(
        buf,
        r#"}},"weaknesses":[{{"source":"nvd@nist.gov","type":"Primary","description":[{{"lang":"en","value":"{}"}}]}}],"configurations":[{{"nodes":[{{"operator":"OR","negate":false,"cpeMatch":["#,
        if plain { "NVD-CWE-noinfo" } else { cwe }
    );
    let cpes = 1 + rng.below(6);
    for k in 0..cpes {
        let _ = write!(
            buf,
            r#"{}{{"vulnerable":true,"criteria":"cpe:2.3:a:{vendor}:{product}:{}.{}.{}:*:*:*:*:*:*:*","matchCriteriaId":"{:08X}-{:04X}-{:04X}-{:04X}-{:012X}"}}"#,
            if k > 0 { "," } else { "" },
            1 + rng.below(9),
            rng.below(20),
            rng.below(30),
            rng.next() as u32,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() as u16,
            rng.next() & 0xFFFF_FFFF_FFFF
        );
    }
    buf.push_str(r#"]}]}],"references":["#);
    let refs = 1 + rng.below(5);
    for k in 0..refs {
        let _ = write!(
            buf,
            r#"{}{{"url":"https://www.{vendor}.example/security/advisories/{}-{}","source":"cve@mitre.org","tags":["{}"]}}"#,
            if k > 0 { "," } else { "" },
            year,
            rng.below(10_000),
            rng.pick(REF_TAGS)
        );
    }
    buf.push_str("]}}");
}

const HEADER_TAIL: &str = r#","startIndex":0,"format":"NVD_CVE","version":"2.0","timestamp":"2026-01-01T00:00:00.000","vulnerabilities":["#;

/// How many records reach `size` bytes (a dry run of the same generator).
fn count_records(seed: u64, size: u64) -> u64 {
    let mut rng = Rng(seed);
    let mut buf = String::with_capacity(4096);
    // Header with a 10-digit count placeholder, the tail, then records and separators.
    let mut total = (r#"{"resultsPerPage":"#.len()
        + 10
        + r#","totalResults":"#.len()
        + 10
        + HEADER_TAIL.len()
        + 2) as u64;
    let mut n = 0;
    while total < size {
        buf.clear();
        record(&mut rng, n, &mut buf);
        total += buf.len() as u64 + u64::from(n > 0);
        n += 1;
    }
    n.max(1)
}

/// Write the whole document to `w`.
pub fn generate(w: &mut dyn Write, seed: u64, size: u64) -> std::io::Result<u64> {
    let n = count_records(seed, size);
    let mut rng = Rng(seed);
    write_page(w, n, &mut |i, buf| record(&mut rng, i, buf))
}

/// About `size` bytes of NVD API 2.0 page made of `items` (`{"cve":…}` elements as JSON text,
/// say a real page's) repeated in turn, or with `jsonl` one item a line: real text at any size,
/// for load tests. Returns how many records it wrote.
pub fn replicate(
    w: &mut dyn Write,
    items: &[String],
    size: u64,
    jsonl: bool,
) -> std::io::Result<u64> {
    if items.is_empty() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            "no records to replicate",
        ));
    }
    let item = |i: u64| items[(i % items.len() as u64) as usize].as_str();
    let (mut n, mut total) = (0u64, 0u64);
    while total < size {
        total += item(n).len() as u64 + 1;
        n += 1;
    }
    if !jsonl {
        return write_page(w, n, &mut |i, buf| buf.push_str(item(i)));
    }
    for i in 0..n {
        if i > 0 {
            w.write_all(b"\n")?;
        }
        w.write_all(item(i).as_bytes())?;
    }
    w.flush()?;
    Ok(n)
}

/// An NVD API 2.0 page of `n` records, `record(i, buf)` putting the i-th element into `buf`.
fn write_page(
    w: &mut dyn Write,
    n: u64,
    record: &mut dyn FnMut(u64, &mut String),
) -> std::io::Result<u64> {
    write!(
        w,
        r#"{{"resultsPerPage":{n},"totalResults":{n}{HEADER_TAIL}"#
    )?;
    let mut buf = String::with_capacity(4096);
    for i in 0..n {
        buf.clear();
        if i > 0 {
            buf.push(',');
        }
        record(i, &mut buf);
        w.write_all(buf.as_bytes())?;
    }
    w.write_all(b"]}")?;
    w.flush()?;
    Ok(n)
}

pub fn run(args: &GenNvdArgs) -> i32 {
    if args.size == 0 {
        eprintln!("cyberfilter gen-nvd: --size must be above 0");
        return EXIT_USAGE;
    }
    let result = if args.out.as_os_str() == "-" {
        generate(
            &mut BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
            args.seed,
            args.size,
        )
    } else {
        std::fs::File::create(&args.out).and_then(|f| {
            generate(
                &mut BufWriter::with_capacity(1 << 20, f),
                args.seed,
                args.size,
            )
        })
    };
    match result {
        Ok(n) => {
            eprintln!(
                "cyberfilter gen-nvd: wrote {n} records to {} (seed {})",
                args.out.display(),
                args.seed
            );
            EXIT_OK
        }
        Err(e) => {
            eprintln!("cyberfilter gen-nvd: {}: {e}", args.out.display());
            EXIT_IOERR
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("1G"), Ok(1 << 30));
        assert_eq!(parse_size("256m"), Ok(256 << 20));
        assert_eq!(parse_size("1000"), Ok(1000));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn output_is_deterministic_valid_json_of_about_the_size() {
        let mut a = Vec::new();
        let n = generate(&mut a, 7, 200_000).unwrap();
        let mut b = Vec::new();
        generate(&mut b, 7, 200_000).unwrap();
        assert_eq!(a, b, "same seed, same bytes");
        let mut c = Vec::new();
        generate(&mut c, 8, 200_000).unwrap();
        assert_ne!(a, c, "another seed, other bytes");

        assert!(a.len() as u64 >= 200_000 && (a.len() as u64) < 200_000 + 8_000);
        let v: serde_json::Value = serde_json::from_slice(&a).expect("valid JSON");
        let vulns = v["vulnerabilities"].as_array().unwrap();
        assert_eq!(vulns.len() as u64, n);
        assert_eq!(v["resultsPerPage"].as_u64(), Some(n));
        let cve = &vulns[3]["cve"];
        assert!(cve["id"].as_str().unwrap().starts_with("CVE-"));
        assert_eq!(cve["descriptions"][0]["lang"], "en");
        assert!(
            cve["metrics"]["cvssMetricV31"][0]["cvssData"]["vectorString"]
                .as_str()
                .unwrap()
                .starts_with("CVSS:3.1/AV:")
        );
    }

    #[test]
    fn replicate_repeats_the_items_to_the_size_as_a_page_or_lines() {
        let items = [r#"{"cve":{"id":"CVE-1"}}"#, r#"{"cve":{"id":"CVE-2"}}"#].map(String::from);
        let mut page = Vec::new();
        let n = replicate(&mut page, &items, 1000, false).unwrap();
        assert_eq!(n, 1000 / 23 + 1, "each item counts its separator");
        let v: serde_json::Value = serde_json::from_slice(&page).expect("valid JSON");
        let vulns = v["vulnerabilities"].as_array().unwrap();
        assert_eq!(
            (vulns.len() as u64, v["totalResults"].as_u64()),
            (n, Some(n))
        );
        assert_eq!(vulns[2]["cve"]["id"], "CVE-1");
        assert_eq!(vulns[3]["cve"]["id"], "CVE-2");
        let mut lines = Vec::new();
        assert_eq!(replicate(&mut lines, &items, 1000, true).unwrap(), n);
        let lines = String::from_utf8(lines).unwrap();
        assert_eq!(lines.lines().count() as u64, n);
        assert!(lines.lines().zip(items.iter().cycle()).all(|(l, i)| l == i));
        assert!(replicate(&mut Vec::new(), &[], 10, false).is_err());
    }
}
