//! Writing form-encoded request bodies and HTTP Basic credentials into a caller's buffer,
//! streamed without temporary buffers (base64 by the `base64` crate, three bytes at a time).
//! JSON bodies are written by `serde_json_core::to_slice`.
//!
//! A [`Writer`] keeps counting past the end of its buffer, so an overflow reports exactly how
//! many bytes the request needs.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

#[cfg(test)]
use super::BufferTooSmall;

pub(crate) struct Writer<'a> {
    buf: &'a mut [u8],
    len: usize,
}

impl<'a> Writer<'a> {
    pub(crate) fn new(buf: &'a mut [u8]) -> Self {
        Writer { buf, len: 0 }
    }

    // One copy for every encoder that calls it: smaller code on microcontrollers.
    #[inline(never)]
    pub(crate) fn byte(&mut self, b: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = b;
        }
        self.len = self.len.saturating_add(1);
    }

    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.len.saturating_add(bytes.len());
        if let Some(dst) = self.buf.get_mut(self.len..end) {
            dst.copy_from_slice(bytes);
        }
        self.len = end;
    }

    pub(crate) fn str(&mut self, s: &str) {
        self.bytes(s.as_bytes());
    }

    /// `s` form-encoded (`application/x-www-form-urlencoded`, as RFC 6749 appendix B asks).
    pub(crate) fn form(&mut self, s: &str) {
        form_encode(s, &mut |b| self.byte(b));
    }

    /// The bytes written, or how many were needed.
    #[cfg(test)]
    pub(crate) fn finish(self) -> Result<&'a mut [u8], BufferTooSmall> {
        let needed = self.len;
        self.buf.get_mut(..needed).ok_or(BufferTooSmall { needed })
    }

    /// Bytes written so far (or needed).
    pub(crate) fn len(&self) -> usize {
        self.len
    }
}

/// The upper-case hex digit of the low four bits of `n`.
fn hex(n: u8) -> u8 {
    b"0123456789ABCDEF"
        .get(usize::from(n & 0xF))
        .copied()
        .unwrap_or(b'0')
}

/// Form-encodes `s`, one output byte at a time.
pub(crate) fn form_encode(s: &str, out: &mut dyn FnMut(u8)) {
    for &b in s.as_bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'*' | b'-' | b'.' | b'_' => out(b),
            b' ' => out(b'+'),
            _ => {
                out(b'%');
                out(hex(b >> 4));
                out(hex(b));
            }
        }
    }
}

/// Standard base64 with padding (RFC 4648 section 4), fed one byte at a time: each group of
/// three bytes is encoded by the `base64` crate as soon as it is complete.
pub(crate) struct Base64<'w, 'a> {
    out: &'w mut Writer<'a>,
    group: [u8; 3],
    n: usize,
}

impl<'w, 'a> Base64<'w, 'a> {
    pub(crate) fn new(out: &'w mut Writer<'a>) -> Self {
        Base64 {
            out,
            group: [0; 3],
            n: 0,
        }
    }

    pub(crate) fn push(&mut self, b: u8) {
        if let Some(slot) = self.group.get_mut(self.n) {
            *slot = b;
        }
        self.n = self.n.saturating_add(1);
        if self.n == 3 {
            self.emit();
        }
    }

    /// Encodes the bytes collected so far (with padding when fewer than three) and wipes
    /// them: they are credentials.
    #[inline(never)]
    fn emit(&mut self) {
        let mut chars = [0u8; 4];
        let group = self.group.get(..self.n).unwrap_or_default();
        let len = STANDARD.encode_slice(group, &mut chars).unwrap_or(0);
        self.out.bytes(chars.get(..len).unwrap_or_default());
        self.group = [0; 3];
        self.n = 0;
    }

    pub(crate) fn finish(mut self) {
        if self.n > 0 {
            self.emit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(f: impl FnOnce(&mut Writer<'_>)) -> heapless::String<128> {
        let mut buf = [0u8; 128];
        let mut w = Writer::new(&mut buf);
        f(&mut w);
        let out = w.finish().unwrap();
        let mut s = heapless::String::new();
        s.push_str(core::str::from_utf8(out).unwrap()).unwrap();
        s
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            written(|w| w.form("a b+c/d=e&f~é*-._")),
            "a+b%2Bc%2Fd%3De%26f%7E%C3%A9*-._"
        );
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let got = written(|w| {
                let mut b = Base64::new(w);
                input.bytes().for_each(|x| b.push(x));
                b.finish();
            });
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn overflow_counts_what_is_needed() {
        let mut buf = [0u8; 4];
        let mut w = Writer::new(&mut buf);
        w.str("hello world");
        assert_eq!(w.len(), 11);
        assert_eq!(w.finish().unwrap_err(), BufferTooSmall { needed: 11 });
    }
}
