//! How an `audit` fuzz input becomes an audit: the first byte picks the shape, the
//! rest is the source. Shared by the fuzz target and, through `#[path]`, by the corpus
//! replay in aura-benches' tests, so both run exactly the same thing.

use aura_guard::Shape;

/// The source and shape an input stands for; `None` when the source is not UTF-8.
pub fn shaped(data: &[u8]) -> Option<(&str, Shape)> {
    let (&pick, rest) = data.split_first()?;
    let source = std::str::from_utf8(rest).ok()?;
    let shape = match pick % 4 {
        0 => Shape::Module,
        1 => Shape::AnyMethod,
        2 => Shape::Tests,
        _ => Shape::Method {
            selector: "m".to_owned(),
        },
    };
    Some((source, shape))
}
