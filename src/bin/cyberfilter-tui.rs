//! `cyberfilter-tui`: the curation workbench.
fn main() {
    eprintln!("cyberfilter-tui: not yet implemented");
    std::process::exit(1);
}
