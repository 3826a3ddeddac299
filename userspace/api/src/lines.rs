//! Splitting a byte stream into JSON lines, whatever the chunking.

use bytes::BytesMut;

/// A line longer than this is refused rather than buffered without bound.
pub const MAX_LINE: usize = 4 << 20;

/// The stream sent a line longer than [`MAX_LINE`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a line longer than {MAX_LINE} bytes")]
pub struct TooLong;

/// Buffers chunks and hands out complete, non-empty lines (without the newline).
#[derive(Debug, Default)]
pub struct Lines {
    buf: BytesMut,
    /// Bytes of `buf` already known to hold no newline, so each byte is scanned once.
    scanned: usize,
}

impl Lines {
    pub fn push(&mut self, chunk: &[u8]) {
        self.buf.extend_from_slice(chunk);
    }

    /// The next complete line, `None` when more bytes are needed.
    pub fn next_line(&mut self) -> Option<Result<BytesMut, TooLong>> {
        loop {
            match self.buf[self.scanned..].iter().position(|&b| b == b'\n') {
                Some(i) => {
                    let mut line = self.buf.split_to(self.scanned + i + 1);
                    self.scanned = 0;
                    line.truncate(line.len() - 1);
                    if line.last() == Some(&b'\r') {
                        line.truncate(line.len() - 1);
                    }
                    if !line.is_empty() {
                        return Some(Ok(line));
                    }
                }
                None => {
                    self.scanned = self.buf.len();
                    return (self.buf.len() > MAX_LINE).then_some(Err(TooLong));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// However the bytes are cut into chunks, the same lines come out, in order.
        #[test]
        fn chunking_does_not_change_lines(
            lines in prop::collection::vec("[a-z{}\":,0-9 ]{1,40}", 0..20),
            cuts in prop::collection::vec(0usize..1000, 0..30),
        ) {
            let text: String = lines.iter().map(|l| format!("{l}\n")).collect();
            let bytes = text.as_bytes();
            let mut cuts: Vec<usize> = cuts.into_iter().map(|c| c % (bytes.len() + 1)).collect();
            cuts.push(0);
            cuts.push(bytes.len());
            cuts.sort_unstable();
            let mut l = Lines::default();
            let mut out = Vec::new();
            for w in cuts.windows(2) {
                l.push(&bytes[w[0]..w[1]]);
                while let Some(line) = l.next_line() {
                    out.push(String::from_utf8(line.unwrap().to_vec()).unwrap());
                }
            }
            let expected: Vec<String> = lines.into_iter().filter(|s| !s.is_empty()).collect();
            prop_assert_eq!(out, expected);
        }
    }

    #[test]
    fn blank_lines_and_crlf_are_skipped_and_long_lines_refused() {
        let mut l = Lines::default();
        l.push(b"\n\r\n{\"a\":1}\r\n\n");
        assert_eq!(&l.next_line().unwrap().unwrap()[..], b"{\"a\":1}");
        assert!(l.next_line().is_none());
        l.push(&vec![b'x'; MAX_LINE + 1]);
        assert_eq!(l.next_line(), Some(Err(TooLong)));
    }
}
