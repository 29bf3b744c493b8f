use super::*;

fn rules(body: &str) -> RuleSet {
    RuleSet::from_toml(body, "test.toml").unwrap_or_else(|e| panic!("compile: {e}"))
}

fn errors(body: &str) -> Vec<String> {
    match RuleSet::from_toml(body, "bad.toml") {
        Ok(_) => panic!("expected errors"),
        Err(e) => e.all().iter().map(|e| e.to_string()).collect(),
    }
}

const TWO_RULES: &str = r#"
[[rule]]
name = "overflow"
category = "vulnerability"
pattern = 'buffer overflow'
weight = 3.0

[[rule]]
name = "packaging"
category = "negative"
pattern = 'debhelper'
weight = -1.5
cap = 2
"#;

#[test]
fn default_rules_compile_and_carry_thresholds() {
    let r = RuleSet::default_rules();
    assert!(r.len() > 20, "only {} default rules", r.len());
    let t = r.thresholds();
    assert!(t.low < t.high);
    assert_eq!(t, Thresholds::default(), "file and code defaults agree");
    assert_eq!(r.hash().len(), 64);
}

#[test]
fn score_is_weight_times_capped_count() {
    let r = rules(TWO_RULES);
    let s = r.score("A Buffer Overflow, then another buffer overflow.");
    assert_eq!(s.score, 6.0);
    assert_eq!(s.rule_names(), vec!["overflow"]);
    assert_eq!(s.hits[0].count, 2);
    assert_eq!(s.hits[0].category, "vulnerability");

    // cap = 2 on the negative rule: five mentions count twice.
    let s = r.score("debhelper debhelper debhelper debhelper debhelper");
    assert_eq!(s.score, -3.0);
    assert_eq!(s.hits[0].count, 2);
    assert_eq!(s.hits[0].contribution, -3.0);
}

#[test]
fn default_cap_is_three() {
    let r = rules(
        r#"
[[rule]]
name = "x"
category = "c"
pattern = 'exploit'
weight = 1
"#,
    );
    assert_eq!(r.score(&"exploit ".repeat(10)).score, DEFAULT_CAP as f32);
}

#[test]
fn word_bounded_by_default_and_opt_out() {
    let bounded = rules(
        r#"
[[rule]]
name = "des"
category = "crypto"
pattern = 'des'
weight = 2
"#,
    );
    // Upstream's substring matching scored "describes" as the DES cipher.
    assert_eq!(bounded.score("This describes the provides").score, 0.0);
    assert_eq!(bounded.score("uses DES encryption").score, 2.0);

    let substring = rules(
        r#"
[[rule]]
name = "des"
category = "crypto"
pattern = 'des'
weight = 2
word_bounded = false
"#,
    );
    assert_eq!(substring.score("This describes").score, 2.0);
}

#[test]
fn case_sensitivity_is_per_rule() {
    let r = rules(
        r#"
[[rule]]
name = "dos"
category = "impact"
pattern = 'DoS'
weight = 2
case_sensitive = true
"#,
    );
    assert_eq!(r.score("a DoS condition").score, 2.0);
    assert_eq!(r.score("dos tres cuatro and MS-DOS").score, 0.0);
}

#[test]
fn word_boundaries_work_beside_non_ascii_text() {
    let r = rules(TWO_RULES);
    assert_eq!(r.score("«buffer overflow» dans le décodeur").score, 3.0);
}

#[test]
fn no_match_gives_empty_score() {
    let r = rules(TWO_RULES);
    assert_eq!(r.score("a recipe for bread"), Score::default());
    assert_eq!(r.score(""), Score::default());
}

#[test]
fn hits_come_in_rule_file_order() {
    let r = rules(TWO_RULES);
    let s = r.score("debhelper fix for a buffer overflow");
    assert_eq!(s.rule_names(), vec!["overflow", "packaging"]);
    assert_eq!(s.score, 1.5);
}

#[test]
fn thresholds_section_is_read() {
    let r = rules(&format!(
        "[thresholds]\nhigh = 9\nlow = 1.5\nmin_text_len = 40\np_yes_cut = 0.7\n{TWO_RULES}"
    ));
    let t = r.thresholds();
    assert_eq!(
        (t.high, t.low, t.min_text_len, t.p_yes_cut),
        (9.0, 1.5, 40, 0.7)
    );
}

#[test]
fn tiers_from_two_thresholds_and_min_length() {
    let t = Thresholds {
        high: 6.0,
        low: 2.0,
        min_text_len: 20,
        p_yes_cut: 0.5,
    };
    assert_eq!(tier_for(6.0, 100, true, &t), Tier::Keep);
    assert_eq!(tier_for(5.99, 100, true, &t), Tier::Verify);
    assert_eq!(tier_for(2.0, 100, true, &t), Tier::Verify);
    assert_eq!(tier_for(1.99, 100, true, &t), Tier::Reject);
    assert_eq!(tier_for(50.0, 19, true, &t), Tier::Reject);
    assert_eq!(tier_for(50.0, 100, false, &t), Tier::Reject);
    // Thresholds are plain values: moving one re-tiers the same score.
    let moved = Thresholds { high: 5.0, ..t };
    assert_eq!(tier_for(5.5, 100, true, &moved), Tier::Keep);
}

#[test]
fn every_error_is_reported_with_rule_name_and_reason() {
    let errs = errors(
        r#"
[thresholds]
high = 1
low = 3
speed = 2

[[rule]]
name = "ok"
category = "c"
pattern = 'fine'
weight = 1

[[rule]]
name = "bad-regex"
category = "c"
pattern = 'exploit(s'
weight = 1

[[rule]]
name = "zero"
category = "c"
pattern = 'x'
weight = 0

[[rule]]
name = "ok"
category = "c"
pattern = 'again'
weight = 1

[[rule]]
name = "typo"
category = "c"
pattern = 'y'
wieght = 1

[[rule]]
category = "c"
pattern = 'z'
weight = 1

[[rule]]
name = "nan"
category = "c"
pattern = 'w'
weight = nan
cap = 0

[[rule]]
name = "empty"
category = "c"
pattern = 'a*'
weight = 1
"#,
    );
    let has = |needle: &str| {
        assert!(
            errs.iter().any(|e| e.contains(needle)),
            "no error containing {needle:?} in {errs:#?}"
        )
    };
    has("[thresholds] (line 2): unknown key `speed`");
    has("`low` (3) must not be above `high` (1)");
    has("rule `bad-regex`: bad pattern: regex parse error");
    has("rule `zero`: `weight` is 0");
    has("rule `ok`: duplicate rule name");
    has("rule `typo`: unknown key `wieght`");
    has("rule `typo`: missing `weight`");
    has("rule `#6 (line 37)`: missing `name`");
    has("rule `nan`: `weight` must be a finite number");
    has("rule `nan`: `cap` must be an integer from 1 to 1000");
    has("rule `empty`: pattern matches the empty string");
    assert_eq!(errs.len(), 11, "{errs:#?}");
    assert!(errs.iter().all(|e| e.starts_with("bad.toml: ")));
}

#[test]
fn syntax_errors_and_empty_files_are_errors() {
    let e = errors("[[rule]\nname=");
    assert_eq!(e.len(), 1);
    assert!(e[0].starts_with("bad.toml: "), "{e:?}");
    assert!(errors("version = 1\n")[0].contains("no [[rule]] entries"));
    assert!(
        errors("version = 2\n[[rule]]\nname='a'\ncategory='c'\npattern='a'\nweight=1\n")[0]
            .contains("unsupported version 2")
    );
    assert!(errors("colour = 'red'\n")[0].contains("unknown field `colour`"));
}

#[test]
fn from_file_names_the_path() {
    let err = RuleSet::from_file(Path::new("/nonexistent/rules.toml")).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("/nonexistent/rules.toml: cannot read"));
}

// The default rules on hand-written texts of each kind; the realdata figures live in
// tests/rules_realdata.rs.
#[test]
fn default_rules_separate_obvious_cases() {
    let r = RuleSet::default_rules();
    let t = r.thresholds();
    let tier = |text: &str| tier_for(r.score(text).score, text.len(), true, &t);

    assert_eq!(
        tier("CVE-2024-51234 A heap-based buffer overflow in the packet parser of Acme Gateway 4.2 allows remote attackers to execute arbitrary code via a crafted TLV field. CWE-122 CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"),
        Tier::Keep
    );
    assert_eq!(
        tier("Process Injection T1055 Adversaries may inject code into processes in order to evade process-based defenses as well as possibly elevate privileges. privilege-escalation defense-evasion Windows Linux macOS"),
        Tier::Keep
    );
    assert_eq!(
        tier("* New upstream release.\n* Bump Standards-Version to 4.6.2, no changes needed.\n* debian/control: update Build-Depends on debhelper-compat (= 13)."),
        Tier::Reject
    );
    assert_eq!(
        tier("* Update Danish translation of the debconf templates.\n* Fix typo in the manpage."),
        Tier::Reject
    );
    // "example" is ordinary prose, not a reason to reject (upstream lost 29% of ATT&CK to it).
    let with_example = "For example, an attacker may exploit a SQL injection vulnerability in the login form to bypass authentication.";
    assert_eq!(tier(with_example), Tier::Keep);
}

/// Two rules that match the same words: the phrase first.
const PHRASE_AND_WORD: &str = r#"
[[rule]]
name = "phrase"
category = "c"
pattern = 'privilege escalation'
weight = 3

[[rule]]
name = "word"
category = "c"
pattern = 'escalation|privilege'
weight = 1
"#;

#[test]
fn a_stretch_of_text_counts_for_one_rule() {
    let r = rules(PHRASE_AND_WORD);
    // The phrase takes its two words; only the later lone "escalation" counts for `word`.
    let s = r.score("privilege escalation, then escalation alone");
    assert_eq!(s.rule_names(), vec!["phrase", "word"]);
    assert_eq!(s.hits[1].count, 1);
    assert_eq!(s.score, 4.0);
}

/// The scorer's layout (literal prefilter with anchored units, unanchored parts) must not change
/// what is counted: the same spans and scores as one leftmost-first regex over every rule, on
/// the default rules, the rules before issue #12, twenty rules with gap constructs, and all of
/// them together.
#[test]
fn split_rule_set_counts_like_one_regex() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = |name: &str| -> Vec<RuleSpec> {
        RuleSet::from_file(&here.join("rules/testdata").join(name))
            .unwrap()
            .rules()
            .cloned()
            .collect()
    };
    let mut default: Vec<RuleSpec> = RuleSet::default_rules().rules().cloned().collect();
    default.extend(rules(PHRASE_AND_WORD).rules().cloned());
    let (old, gaps) = (file("f871df3.toml"), file("gap-rules.toml"));
    let all: Vec<RuleSpec> = [default.clone(), old.clone(), gaps.clone()]
        .concat()
        .into_iter()
        .enumerate()
        .map(|(i, mut s)| {
            s.name = format!("{i}-{}", s.name);
            s
        })
        .collect();
    let texts = split_test_texts();
    for (name, specs) in [
        ("default", default),
        ("f871df3", old),
        ("gaps", gaps),
        ("all", all),
    ] {
        let one = scorer::Scorer::compile_parts(specs.clone(), usize::MAX).unwrap();
        // One rule per part, the unanchored layout's other extreme (slow in debug builds: once).
        let each =
            (name == "default").then(|| scorer::Scorer::compile_parts(specs.clone(), 1).unwrap());
        let fast = scorer::Scorer::compile(specs.clone()).unwrap();
        assert_eq!(one.part_count(), 1);
        if let Some(each) = &each {
            // (`max_lines` rules are searched on their own, outside the parts.)
            let in_pass = specs.iter().filter(|s| s.max_lines.is_none()).count();
            assert_eq!(each.part_count(), in_pass);
        }
        let (anchored, units) = fast.anchored_units();
        assert!(
            anchored * 10 >= units * 8,
            "{name}: most units start with literals, {anchored} of {units}"
        );
        let mut spans = 0;
        for t in &texts {
            let want = one.spans(t);
            spans += want.len();
            assert_eq!(fast.spans(t), want, "{name}: prefiltered on {t:?}");
            assert_eq!(fast.score(t), one.score(t), "{name}: score on {t:?}");
            if let Some(each) = &each {
                assert_eq!(each.spans(t), want, "{name}: one rule per part on {t:?}");
                assert_eq!(each.score(t), one.score(t), "{name}: score on {t:?}");
            }
        }
        assert!(
            spans > 400,
            "{name}: the texts should match often, got {spans} spans"
        );
    }
}

/// A few made-up texts for the corners of the prefilter (word boundaries, case, text start,
/// payload quotes), then the raw files of sample_data in 4 KB pieces: JSON, XML and prose.
fn split_test_texts() -> Vec<String> {
    let mut texts: Vec<String> = vec![
        "privilege escalation, then escalation alone".into(),
        "A heap-based buffer overflow in CVE-2021-1234 lets remote attackers bypass the \
         authentication check; the flag{s0me_fl4g} was leaked. Privilege escalation."
            .into(),
        "<img src=x onerror=alert(1)> ' or 1=1 -- union select password from users".into(),
        "[security] fix: a remote unauthenticated attacker could execute code".into(),
        "  [PATCH v2] [net] bypass of the check; PoC exploit code and a poc exploit; \
         Proof of Concept, proof of concept"
            .into(),
        "xss_xss XSS-XSS xSS preXSS XSSpost _XSS_ IDS ids IdS ips IPS tips".into(),
        "CVE-2020-12345: fixed. cve-2020-12345 the vulnerability, CVE-2020-1 patched".into(),
        "An attacker can read out of bounds; reads data past the end; fails to sanitize input"
            .into(),
        "\u{e9}t\u{e9} cl\u{e9} s\u{e9}curit\u{e9} denial of service (CPU) via crafted packets"
            .into(),
        // Literals that need not start a word (found at word ends, inside words, or at a
        // byte other than a word byte), at the text's start and end, in either case.
        "' or 1=1 -- the filesystem (ext4) and subsystem(x); xunion select; SYSTEM(\"id\")".into(),
        "CVSS:3.1/AV:N/AC:L/PR:N and av:n/ac:l/ in picoCTF{s0me_flag} and Flag{abcd} .deb".into(),
        "\"or\"a\"=\"a <SCRIPT>alert(1)</script > ../../etc/passwd %2e%2e%2f ${jndi:ldap".into(),
        "Уязвимость: выполнение кода без авторизации, Обход защиты; buffer overfl".into(),
        "authentication-bypasses unauthenticated_attackers A-Remote-Attacker crash".into(),
    ];
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("sample_data");
    for feed in ["nvd", "attack", "cwe", "nonsecurity"] {
        let files = crate::ingest::discover(&[root.join(feed)]).unwrap();
        for file in files {
            let raw = std::fs::read_to_string(&file).unwrap_or_default();
            let mut rest = raw.as_str();
            while !rest.is_empty() && texts.len() < 600 {
                let mut cut = rest.len().min(4096);
                while !rest.is_char_boundary(cut) {
                    cut += 1;
                }
                texts.push(rest[..cut].to_string());
                rest = &rest[cut..];
            }
        }
    }
    texts
}

#[test]
fn scoring_is_safe_to_share_between_threads() {
    let r = std::sync::Arc::new(RuleSet::default_rules());
    let text = "CVE-2024-1 A use-after-free allows remote attackers to execute arbitrary code.";
    let want = r.score(text);
    let handles: Vec<_> = (0..4)
        .map(|_| {
            let r = r.clone();
            std::thread::spawn(move || r.score(text))
        })
        .collect();
    for h in handles {
        assert_eq!(h.join().unwrap(), want);
    }
}

const GENERIC_RULES: &str = r#"
[[rule]]
name = "overflow"
category = "vulnerability"
pattern = 'buffer overflow'
weight = 3.0

[[rule]]
name = "attack"
category = "generic"
pattern = 'attack(?:s|ed|ers?)?'
weight = 2.0
cap = 2
requires_other_evidence = true

[[rule]]
name = "security"
category = "generic"
pattern = 'security'
weight = 1.5
requires_other_evidence = true

[[rule]]
name = "packaging"
category = "negative"
pattern = 'debhelper'
weight = -1.0
"#;

#[test]
fn generic_rules_alone_add_nothing() {
    let r = rules(GENERIC_RULES);
    // War and politics prose: generic words only.
    let s = r.score("The attackers attacked at dawn; security was tight.");
    assert_eq!(s.score, 0.0);
    assert!(
        s.hits.is_empty(),
        "generic hits that count nothing are not listed"
    );
    // Negative evidence still counts without company.
    let s = r.score("security: bump debhelper");
    assert_eq!(s.score, -1.0);
    assert_eq!(s.rule_names(), vec!["packaging"]);
}

#[test]
fn generic_rules_add_at_most_the_other_evidence() {
    let r = rules(GENERIC_RULES);
    // Specific 3.0; generic 2×2 + 1.5 = 5.5, capped at 3.0 and shared in proportion.
    let s = r.score("attackers use a buffer overflow to attack the security of the host");
    assert!((s.score - 6.0).abs() < 1e-5, "{s:?}");
    assert_eq!(s.rule_names(), vec!["overflow", "attack", "security"]);
    let attack = &s.hits[1];
    assert_eq!(attack.count, 2);
    assert!((attack.contribution - 4.0 * 3.0 / 5.5).abs() < 1e-5);
    // Below the cap the generic rules count in full.
    let s = r.score("a buffer overflow, another buffer overflow, and one attack");
    assert!((s.score - 8.0).abs() < 1e-5, "{s:?}");
    // Negative evidence does not lower the room the generic rules get.
    let s = r.score("buffer overflow attack, debhelper");
    assert!((s.score - (3.0 + 2.0 - 1.0)).abs() < 1e-5, "{s:?}");
}

#[test]
fn requires_other_evidence_is_validated() {
    let errs = errors(
        r#"
[[rule]]
name = "neg"
category = "negative"
pattern = 'typo'
weight = -1
requires_other_evidence = true

[[rule]]
name = "bad-type"
category = "x"
pattern = 'y'
weight = 1
requires_other_evidence = "yes"
"#,
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    assert!(errs[0].contains("rule `neg`") && errs[0].contains("positive evidence"));
    assert!(errs[1].contains("rule `bad-type`") && errs[1].contains("true or false"));
}

#[test]
fn a_pasted_payload_does_not_dominate_the_score() {
    let r = RuleSet::default_rules();
    let one = r.score("<script>alert(1)</script>");
    let pasted = r.score(&"<script>alert(1)</script> ' OR 1=1 -- ../../etc/passwd ".repeat(200));
    // Every rule counts at most `cap` times: the paste scores like a few mentions, not 200.
    for h in &pasted.hits {
        let cap = r.rules().find(|s| s.name == h.rule).unwrap().cap;
        assert!(h.count <= cap, "{h:?}");
    }
    assert!(one.score > 0.0);
    assert!(pasted.score <= 20.0, "{pasted:?}");
}

#[test]
fn generic_words_alone_do_not_keep_ordinary_prose() {
    let r = RuleSet::default_rules();
    let t = r.thresholds();
    let tier = |text: &str| tier_for(r.score(text).score, text.len(), true, &t);
    // War, sport and politics: attack, security, defence, threat, compromise, exploit, virus.
    let prose = [
        "The attackers were repelled after a second attack on the city's defences, the army said.",
        "Their striker exploited a gap in the defence; the attacker scored twice as the threat grew.",
        "Ministers reached a compromise on national security and the breach of the agreement.",
        "Doctors said the virus had spread, a threat to vulnerable patients in the region.",
    ];
    for text in prose {
        assert_eq!(tier(text), Tier::Reject, "{text}: {:?}", r.score(text));
    }
    // The same words in their security senses still count.
    let security =
        "An attacker can exploit the heap overflow to compromise the server and install malware.";
    assert_eq!(tier(security), Tier::Keep, "{:?}", r.score(security));
}

/// Under the default rules, none of `records` is rejected and every one of `others` is.
fn assert_default_tiers(records: &[&str], others: &[&str]) {
    let r = RuleSet::default_rules();
    let t = r.thresholds();
    let tier = |text: &str| tier_for(r.score(text).score, text.chars().count(), true, &t);
    for text in records {
        assert_ne!(tier(text), Tier::Reject, "{text}: {:?}", r.score(text));
    }
    for text in others {
        assert_eq!(tier(text), Tier::Reject, "{text}: {:?}", r.score(text));
    }
}

#[test]
fn short_report_titles_naming_a_weakness_are_not_rejected() {
    // Bug-bounty titles are a few words: a weakness class on a component. Written here, not
    // taken from any report. Short ordinary sentences with the same everyday words stay out.
    assert_default_tiers(
        &[
            "CSRF on logout",
            "Bypassing the invite approval on team pages",
            "Private project names disclosed in the activity feed",
            "Removed collaborators can still read repository secrets",
            "Username enumeration through the password reset form",
            "Session tokens sent in plain text over HTTP",
            "Read-only members able to change permissions of the workspace",
            "Stored HTML in profile bio",
        ],
        &[
            "Members can vote on the new logo",
            "The team reached a compromise on access to the stadium",
        ],
    );
}

#[test]
fn access_control_and_business_logic_titles_are_not_rejected() {
    // Report titles that name no weakness class, only who can do what they should not, what
    // outlives a removal, what needs no login or what a coupon allows (written here, not taken
    // from any report), and a title in Russian ("vulnerability in the feedback form");
    // ordinary sentences with the same everyday words stay out.
    assert_default_tiers(
        &[
            "Deactivated users can still log in with an API token",
            "Session remains active after logout",
            "Kibana dashboard accessible without login",
            "Coupon code can be reused multiple times",
            "Slack token exposed in client-side JavaScript",
            "Email address enumeration on the signup page",
            "Guest can delete other members' comments",
            "Invoices of other users' accounts visible to anyone",
            "Уязвимость в форме обратной связи",
        ],
        &[
            "Fans can still buy tickets for the final",
            "The museum is open to the public on Sundays",
            "The report will be publicly available next week",
            "Shoppers paid more than the listed price at the till",
        ],
    );
}

#[test]
fn one_line_business_logic_titles_reach_verify_not_keep() {
    // Report titles that name only an object of the application (a role, a balance, a
    // subscription, an invoice) and what is wrong with it (written here, not taken from any
    // report): the verifier decides them, the rules alone never keep them. The same words in
    // a sentence that says nothing is wrong, or in a text with a line break (news, a commit
    // with a body), stay out.
    let titles = [
        "Moderator role still works after leaving the group",
        "Gift balance added twice when the payment is retried via the mobile app",
        "Subscription trial restarted without a new payment method",
        "Profile visibility setting not applied to the public API",
        "Invoice PDF of another customer downloadable by changing the number",
        "Team owners lose the billing page when an admin invites them again, leading to unlimited seats",
    ];
    let r = RuleSet::default_rules();
    let t = r.thresholds();
    for text in titles {
        let s = r.score(text);
        assert_eq!(
            tier_for(s.score, text.chars().count(), true, &t),
            Tier::Verify,
            "{text}: {s:?}"
        );
    }
    assert_default_tiers(
        &titles,
        &[
            "Customers collect their orders at the front desk",
            "Board members approve the annual report",
            "Shop prices rise again\n\nCustomers paid more for orders without any discount this month, the report said.",
        ],
    );
}

#[test]
fn fix_commits_in_fix_language_reach_verify() {
    // Commit subjects as kernels and codecs write them (made up for the test); ordinary
    // maintenance commits stay out.
    assert_default_tiers(
        &[
            "demux: fix read-after-free in seek after the track list is reallocated",
            "net: avoid NULL dereference when the probe fails",
            "codec: check the array bounds of the table index",
            "fs: fix possible buffer overflow in name lookup",
            "drv: don't crash on truncated descriptors",
            "parser: avoid division by zero with an empty header",
            "usb: fix double fetch of the request length",
            "net: reject oversized packets in the receive path",
            "lexer: limit the recursion depth of nested arrays",
            "hid: zero the padding before copying the report to user space",
            "auth: use a constant-time comparison for the MAC",
            "tls: check the certificate hostname against the peer name",
            "str: ensure the name is NUL-terminated",
            "img: fix signed/unsigned comparison of the row stride",
            "cgi: escape HTML in the error page",
        ],
        &[
            "docs: fix typos in the README",
            "build: bump the minimum meson version",
            "ui: add a bottom border to the panel",
        ],
    );
}

#[test]
fn hardening_fixes_reach_verify() {
    // How fix commits say that bad input or a bad state could hurt without naming a weakness
    // class (made up for the test); ordinary sentences with the same words stay out.
    assert_default_tiers(
        &[
            "font: protect against a malformed glyph table",
            "aio: lock the list so that the kick path never references a freed request",
            "rdma: fix accessing invalid private data when none was sent",
            "kvm: userspace can trigger a WARN_ON in the timer code",
            "sctp: the BUG_ON can be triggered from userspace with a full send buffer",
            "audio: fix div by zero in the resampler",
            "xml: disable loading of external entities",
            "tls: validate the server hostname",
            "loader: a long name can corrupt the stack",
        ],
        &[
            "Sunscreen helps protect against sunburn",
            "The guests can cause a stir at the wedding",
            "An external entity will audit the accounts",
        ],
    );
}

/// Plain string units (checked without a regex) follow the order a backtracking search tries
/// their strings: a shorter string first when it comes first and a boundary follows, optional
/// parts greedy or lazy, case-sensitive letters exact.
#[test]
fn plain_units_match_like_the_regex() {
    let body = r#"
[[rule]]
name = "first-short"
category = "c"
pattern = 'ab|abc|abcd'
weight = 1

[[rule]]
name = "greedy"
category = "c"
pattern = 'x(?:yz)?'
weight = 1
word_bounded = false

[[rule]]
name = "lazy"
category = "c"
pattern = 'q(?:rs)??'
weight = 1
word_bounded = false

[[rule]]
name = "cased"
category = "c"
pattern = 'PoC|[Kk]ey[- ]?ID'
weight = 1
case_sensitive = true

[[rule]]
name = "non-word-edges"
category = "c"
pattern = '\.po|--|c\+\+'
weight = 1
"#;
    let specs: Vec<RuleSpec> = rules(body).rules().cloned().collect();
    let one = scorer::Scorer::compile_parts(specs.clone(), usize::MAX).unwrap();
    let fast = scorer::Scorer::compile(specs).unwrap();
    for t in [
        "ab abc abcd abcde ab_ xab",
        "xyz xy x xyzyz qrs q qr",
        "PoC poc POC KeyID key-ID Key ID keyid",
        "a.po file.po .pox -- x--y c++ c++x",
    ] {
        let want = one.spans(t);
        assert!(!want.is_empty(), "{t:?}");
        assert_eq!(fast.spans(t), want, "{t:?}");
    }
}

const TITLE_RULE: &str = r#"
[[rule]]
name = "class"
category = "vulnerability"
pattern = 'xss'
weight = 3.0

[[rule]]
name = "title"
category = "vulnerability"
pattern = 'users?\b.*?\bwithout|without\b.*?\busers?'
weight = 2.0
cap = 1
max_lines = 1
"#;

#[test]
fn a_max_lines_rule_counts_only_in_short_texts_and_takes_no_words_from_the_others() {
    let r = rules(TITLE_RULE);
    // On one line both count: the title rule's match spans the word `xss` of the other rule.
    let s = r.score("Stored XSS lets users post without review");
    assert_eq!(s.rule_names(), vec!["class", "title"]);
    assert_eq!(s.score, 5.0);
    // A trailing line break does not make a second line; a line break inside does.
    assert_eq!(r.score("users without a login\n").score, 2.0);
    assert_eq!(r.score("users\nwithout a login").score, 0.0);
    assert_eq!(
        r.score("Stored XSS\n\nusers post without review")
            .rule_names(),
        vec!["class"]
    );
    // Counted up to its cap like any rule.
    assert_eq!(r.score("users without x, users without y").score, 2.0);
    // Highlighted where no other rule's match is.
    let spans: Vec<(std::ops::Range<usize>, &str)> = r
        .match_spans("users without a login")
        .into_iter()
        .map(|(s, rule)| (s, rule.name.as_str()))
        .collect();
    assert_eq!(spans, vec![(0..13, "title")]);
    let spans = r.match_spans("XSS: users without a login");
    assert_eq!(spans.len(), 2, "{spans:?}");
}

#[test]
fn max_lines_is_validated() {
    for bad in ["0", "-1", "'one'", "1001", "1.5"] {
        let body = TITLE_RULE.replace("max_lines = 1", &format!("max_lines = {bad}"));
        let e = errors(&body);
        assert!(
            e.iter()
                .any(|e| e.contains("title") && e.contains("`max_lines` must be an integer")),
            "{bad}: {e:?}"
        );
    }
}
