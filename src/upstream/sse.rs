//! Splits an upstream byte stream into SSE lines without ever buffering more than one line.

use bytes::{Buf, BytesMut};

#[derive(Debug, PartialEq, Eq)]
pub struct LineTooLong;

pub struct LineSplitter {
    buf: BytesMut,
    /// Bytes of `buf` already searched for a newline (keeps huge lines linear).
    scanned: usize,
    max_line: usize,
}

impl LineSplitter {
    pub fn new(max_line: usize) -> Self {
        LineSplitter {
            buf: BytesMut::new(),
            scanned: 0,
            max_line,
        }
    }

    /// Feeds bytes; calls `on_line` with each complete line (without its `\n` or `\r\n`).
    pub fn push(&mut self, data: &[u8], mut on_line: impl FnMut(&[u8])) -> Result<(), LineTooLong> {
        self.buf.extend_from_slice(data);
        loop {
            match memchr(&self.buf[self.scanned..]) {
                Some(pos) => {
                    let end = self.scanned + pos;
                    let line = &self.buf[..end];
                    let line = line.strip_suffix(b"\r").unwrap_or(line);
                    on_line(line);
                    self.buf.advance(end + 1);
                    self.scanned = 0;
                }
                None => {
                    self.scanned = self.buf.len();
                    if self.buf.len() > self.max_line {
                        return Err(LineTooLong);
                    }
                    return Ok(());
                }
            }
        }
    }

    /// Bytes of an unfinished line (upstream ended without a final newline).
    pub fn rest(&self) -> &[u8] {
        &self.buf
    }
}

fn memchr(hay: &[u8]) -> Option<usize> {
    hay.iter().position(|b| *b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_chunks() {
        let mut s = LineSplitter::new(1024);
        let mut lines = Vec::new();
        s.push(b"data: a\n\ndata: b", |l| lines.push(l.to_vec()))
            .ok();
        s.push(b"c\r\n\n", |l| lines.push(l.to_vec())).ok();
        assert_eq!(
            lines,
            vec![b"data: a".to_vec(), vec![], b"data: bc".to_vec(), vec![]]
        );
    }

    #[test]
    fn an_over_long_line_is_refused() {
        let mut s = LineSplitter::new(10);
        assert_eq!(s.push(&[b'x'; 11], |_| {}), Err(LineTooLong));
    }

    #[test]
    fn a_long_line_within_the_limit_passes_whole() {
        let mut s = LineSplitter::new(9 * 1024 * 1024);
        let big = vec![b'a'; 8 * 1024 * 1024];
        let mut got = 0;
        for chunk in big.chunks(16 * 1024) {
            s.push(chunk, |l| got = l.len()).ok();
        }
        s.push(b"\n", |l| got = l.len()).ok();
        assert_eq!(got, 8 * 1024 * 1024);
    }
}
