//! `cyberfilter`: the engine without a screen, for scripts and CI.
fn main() {
    eprintln!("cyberfilter: not yet implemented");
    std::process::exit(1);
}
