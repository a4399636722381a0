//! Byte offsets to 1-based line and column (columns counted in characters).
//! Line breaks are `\n`, `\r\n` and a lone `\r`, as in Python.

/// Returns the 1-based (line, column) of byte `offset` in `src`. An offset past the
/// end or inside a character is clamped to the nearest character boundary below.
pub(crate) fn line_col(src: &str, offset: usize) -> (u32, u32) {
    let mut end = offset.min(src.len());
    while end > 0 && !src.is_char_boundary(end) {
        end -= 1;
    }
    let prefix = src.get(..end).unwrap_or("");
    let bytes = prefix.as_bytes();
    let mut line: u32 = 1;
    let mut line_start = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        match bytes[i] {
            b'\n' => {
                line = line.saturating_add(1);
                line_start = i + 1;
            }
            b'\r' if bytes.get(i + 1) != Some(&b'\n') => {
                line = line.saturating_add(1);
                line_start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    let col = prefix
        .get(line_start..)
        .map_or(0, |rest| rest.chars().count());
    let col = u32::try_from(col).unwrap_or(u32::MAX).saturating_add(1);
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::line_col;

    #[test]
    fn lines_and_char_columns() {
        let s = "ab\ncdé f\r\ng\rh";
        assert_eq!(line_col(s, 0), (1, 1));
        assert_eq!(line_col(s, 3), (2, 1));
        assert_eq!(line_col(s, 8), (2, 5)); // 'f' after the two-byte 'é'
        assert_eq!(line_col(s, 11), (3, 1));
        assert_eq!(line_col(s, 13), (4, 1));
        assert_eq!(line_col(s, 6), (2, 3)); // inside 'é': clamped to its start
        assert_eq!(line_col(s, 999), (4, 2));
    }
}
