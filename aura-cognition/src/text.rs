//! Streaming text helpers shared by the backends: UTF-8 reassembly of token bytes and
//! stop-sequence detection that never emits text a stop sequence later swallows.

/// Turns a stream of byte pieces (tokens) into complete UTF-8 text (the servers send
/// text, so only the in-process model needs it).
#[cfg(feature = "local")]
#[derive(Debug, Default)]
pub(crate) struct Utf8Assembler {
    pending: Vec<u8>,
}

#[cfg(feature = "local")]
impl Utf8Assembler {
    /// Adds bytes; returns the text that is now complete.
    pub(crate) fn push(&mut self, bytes: &[u8]) -> String {
        self.pending.extend_from_slice(bytes);
        match std::str::from_utf8(&self.pending) {
            Ok(s) => {
                let out = s.to_string();
                self.pending.clear();
                out
            }
            Err(e) => {
                let valid = e.valid_up_to();
                if e.error_len().is_some() {
                    // Truly invalid bytes: replace them rather than wait forever.
                    let out = String::from_utf8_lossy(&self.pending).into_owned();
                    self.pending.clear();
                    return out;
                }
                let out = String::from_utf8_lossy(&self.pending[..valid]).into_owned();
                self.pending.drain(..valid);
                out
            }
        }
    }

    /// Whatever is left (an incomplete sequence becomes U+FFFD).
    pub(crate) fn finish(&mut self) -> String {
        let out = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        out
    }
}

/// Holds back text that could be the start of a stop sequence.
#[derive(Debug)]
pub(crate) struct StopFilter {
    stops: Vec<String>,
    held: String,
}

impl StopFilter {
    pub(crate) fn new(stops: &[String]) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            held: String::new(),
        }
    }

    /// Adds text; returns the text safe to emit, and whether a stop sequence was hit
    /// (in which case the stop and everything after it are dropped).
    pub(crate) fn push(&mut self, text: &str) -> (String, bool) {
        self.held.push_str(text);
        if let Some(cut) = self
            .stops
            .iter()
            .filter_map(|s| self.held.find(s.as_str()))
            .min()
        {
            let out = self.held[..cut].to_string();
            self.held.clear();
            return (out, true);
        }
        // Keep the longest suffix that is a proper prefix of some stop sequence.
        let mut keep = 0;
        for s in &self.stops {
            for (i, _) in s.char_indices().skip(1) {
                if self.held.ends_with(&s[..i]) {
                    keep = keep.max(i);
                }
            }
        }
        let split = self.held.len() - keep;
        let out = self.held[..split].to_string();
        self.held.drain(..split);
        (out, false)
    }

    /// The held-back text, once generation ended without a stop.
    pub(crate) fn finish(&mut self) -> String {
        std::mem::take(&mut self.held)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "local")]
    #[test]
    fn reassembles_split_characters() {
        let mut a = Utf8Assembler::default();
        let bytes = "héllo".as_bytes();
        assert_eq!(a.push(&bytes[..2]), "h");
        assert_eq!(a.push(&bytes[2..]), "éllo");
        assert_eq!(a.push(&[0xE2, 0x82]), "");
        assert_eq!(a.finish(), "\u{FFFD}");
    }

    #[test]
    fn stops_across_pieces() {
        let mut f = StopFilter::new(&["END".into(), "\n\n".into()]);
        assert_eq!(f.push("hello E"), ("hello ".into(), false));
        assert_eq!(f.push("N"), (String::new(), false));
        assert_eq!(f.push("Dx"), (String::new(), true));
        let mut f = StopFilter::new(&["END".into()]);
        assert_eq!(f.push("a E"), ("a ".into(), false));
        assert_eq!(f.push("x"), ("Ex".into(), false));
        assert_eq!(f.push("E"), (String::new(), false));
        assert_eq!(f.finish(), "E");
    }
}
