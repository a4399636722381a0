//! A conservative reader of `str.format` format strings: it finds every attribute
//! name a replacement field reaches (`"{0.__class__}"`, `"{.gi_frame}"`,
//! `"{x[0].f_globals}"`, nested fields in format specs) so the guard can apply its
//! attribute rules to them. Anything it does not understand is reported as
//! malformed, so a disagreement with CPython's reader can only cause a rejection.

/// Why a format string could not be read.
pub(crate) type Malformed = &'static str;

/// Python allows one level of nested fields in a format spec (`"{:{width}}"`).
const MAX_SPEC_NESTING: usize = 2;

/// Returns the attribute names reached by the replacement fields of `fmt`.
pub(crate) fn attribute_names(fmt: &str) -> Result<Vec<String>, Malformed> {
    let mut out = Vec::new();
    scan(fmt, 0, &mut out)?;
    Ok(out)
}

fn scan(fmt: &str, nesting: usize, out: &mut Vec<String>) -> Result<(), Malformed> {
    if nesting > MAX_SPEC_NESTING {
        return Err("format specs are nested too deeply");
    }
    let chars: Vec<char> = fmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            '{' => {
                if chars.get(i + 1) == Some(&'{') {
                    i += 2;
                    continue;
                }
                i = field(&chars, i + 1, nesting, out)?;
            }
            '}' => {
                if chars.get(i + 1) == Some(&'}') {
                    i += 2;
                    continue;
                }
                return Err("single '}' in format string");
            }
            _ => i += 1,
        }
    }
    Ok(())
}

/// Reads one replacement field starting after its `{`; returns the index after
/// its closing `}`.
fn field(
    chars: &[char],
    start: usize,
    nesting: usize,
    out: &mut Vec<String>,
) -> Result<usize, Malformed> {
    // Field name: up to '!', ':' or '}', skipping over `[...]` keys.
    let mut i = start;
    let mut name = String::new();
    loop {
        match chars.get(i) {
            None => return Err("unclosed '{' in format string"),
            Some('[') => {
                name.push('[');
                i += 1;
                loop {
                    match chars.get(i) {
                        None => return Err("unclosed '[' in format field"),
                        Some(']') => break,
                        Some(c) => {
                            name.push(*c);
                            i += 1;
                        }
                    }
                }
                name.push(']');
                i += 1;
            }
            Some('{') => return Err("unexpected '{' in format field name"),
            Some('!') | Some(':') | Some('}') => break,
            Some(c) => {
                name.push(*c);
                i += 1;
            }
        }
    }
    attributes_of(&name, out)?;
    if chars.get(i) == Some(&'!') {
        // Conversion: one character, then ':' or '}'.
        if chars.get(i + 1).is_none() {
            return Err("unclosed '{' in format string");
        }
        i += 2;
        match chars.get(i) {
            Some(':') | Some('}') => {}
            _ => return Err("expected ':' or '}' after a conversion"),
        }
    }
    if chars.get(i) == Some(&':') {
        // Format spec: up to the matching '}', counting nested braces.
        i += 1;
        let spec_start = i;
        let mut depth = 0usize;
        loop {
            match chars.get(i) {
                None => return Err("unclosed '{' in format string"),
                Some('{') => depth += 1,
                Some('}') if depth == 0 => break,
                Some('}') => depth -= 1,
                Some(_) => {}
            }
            i += 1;
        }
        let spec: String = chars[spec_start..i].iter().collect();
        scan(&spec, nesting + 1, out)?;
    }
    match chars.get(i) {
        Some('}') => Ok(i + 1),
        _ => Err("unclosed '{' in format string"),
    }
}

/// `arg_name ("." attribute | "[" key "]")*`: collects the attribute names.
fn attributes_of(name: &str, out: &mut Vec<String>) -> Result<(), Malformed> {
    let chars: Vec<char> = name.chars().collect();
    let mut i = 0;
    // The argument name (or index) itself.
    while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
        i += 1;
    }
    while i < chars.len() {
        match chars[i] {
            '.' => {
                i += 1;
                let mut attr = String::new();
                while i < chars.len() && chars[i] != '.' && chars[i] != '[' {
                    attr.push(chars[i]);
                    i += 1;
                }
                if attr.is_empty() {
                    return Err("empty attribute in format field");
                }
                out.push(attr);
            }
            '[' => {
                while i < chars.len() && chars[i] != ']' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err("unclosed '[' in format field");
                }
                i += 1;
            }
            _ => return Err("only '.' or '[' may follow a format field's key"),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::attribute_names;

    #[test]
    fn finds_attributes() {
        assert_eq!(attribute_names("{0.__class__}").unwrap(), ["__class__"]);
        assert_eq!(attribute_names("{.gi_frame}").unwrap(), ["gi_frame"]);
        assert_eq!(
            attribute_names("{x[a.b].f_back.f_globals}").unwrap(),
            ["f_back", "f_globals"]
        );
        assert_eq!(attribute_names("{:{0.__doc__}}").unwrap(), ["__doc__"]);
        assert_eq!(attribute_names("{!r:>{w.real}}").unwrap(), ["real"]);
        assert!(attribute_names("{{0.__class__}}").unwrap().is_empty());
        assert!(attribute_names("{} {name} {0:>10}").unwrap().is_empty());
    }

    #[test]
    fn malformed_is_an_error() {
        for s in ["{", "}", "{0.}", "{0[}", "{0!r", "{0!rx}", "{0:{", "{a{b}"] {
            assert!(attribute_names(s).is_err(), "{s}");
        }
    }
}
