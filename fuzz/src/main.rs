//! One libFuzzer binary for every target of `cyberfilter::fuzzing`; `CF_FUZZ_TARGET` picks it
//! (scripts/fuzz.sh sets it).
#![no_main]

use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn target() -> fn(&[u8]) {
    static T: OnceLock<fn(&[u8])> = OnceLock::new();
    *T.get_or_init(|| {
        let name = std::env::var("CF_FUZZ_TARGET").unwrap_or_default();
        cyberfilter::fuzzing::target(&name).unwrap_or_else(|| {
            let names: Vec<&str> = cyberfilter::fuzzing::TARGETS.iter().map(|t| t.0).collect();
            eprintln!(
                "CF_FUZZ_TARGET={name:?}: expected one of {}",
                names.join(", ")
            );
            std::process::exit(2)
        })
    })
}

fuzz_target!(|data: &[u8]| target()(data));
