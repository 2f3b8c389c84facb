//! The `cannectors` command-line program.
fn main() {}
