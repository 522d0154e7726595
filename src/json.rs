//! A small, strict, zero-copy JSON reader for the few shapes this crate reads.
//!
//! It walks one object's members, hands back string values still escaped (borrowed from the
//! input) with a decoder that writes them into bounded `heapless` strings, reads numbers as raw
//! text, and skips any other value without recursion. Nothing allocates; nothing indexes
//! without a check.

use heapless::String;

/// Why a JSON text could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum JsonError {
    /// The text is not valid JSON; `offset` is the byte where reading stopped.
    Syntax { offset: usize },
    /// The top-level value is valid so far but is not an object.
    NotAnObject,
    /// Arrays and objects nest deeper than [`MAX_DEPTH`] inside a skipped value.
    TooDeep,
}

/// How deep a skipped value may nest (arrays and objects). Skipping keeps one bit per level.
pub(crate) const MAX_DEPTH: u32 = 128;

/// A JSON string as it stands in the input, between its quotes, escapes not yet decoded.
///
/// Only [`Reader::string`] makes one, after checking every escape, so decoding cannot fail on
/// syntax; it can only run out of room. No `Debug`: it may hold a token.
#[derive(Clone, Copy)]
pub(crate) struct RawStr<'a> {
    raw: &'a str,
    escaped: bool,
}

/// The decoded text did not fit the destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Overflow;

impl<'a> RawStr<'a> {
    /// Text taken as it is (a token handed over by the application, not read from JSON).
    pub(crate) fn plain(text: &'a str) -> Self {
        RawStr {
            raw: text,
            escaped: false,
        }
    }

    /// The string, when it has no escapes (then it is the decoded text as is).
    pub(crate) fn unescaped(self) -> Option<&'a str> {
        if self.escaped {
            None
        } else {
            Some(self.raw)
        }
    }

    /// Whether the decoded string is `name`: member names may be escaped (`"refr\u0065sh"` is
    /// `"refresh"`). Compares as it decodes, without a buffer.
    pub(crate) fn is(self, name: &str) -> bool {
        if let Some(plain) = self.unescaped() {
            return plain == name;
        }
        let mut rest = name;
        self.try_for_each_char(
            |c| match rest.strip_prefix(c) {
                Some(tail) => {
                    rest = tail;
                    Ok(())
                }
                None => Err(()),
            },
            (),
        )
        .is_ok()
            && rest.is_empty()
    }

    /// Decodes the string (escapes included) into `out`, which is cleared first.
    pub(crate) fn decode_into<const N: usize>(self, out: &mut String<N>) -> Result<(), Overflow> {
        out.clear();
        match self.unescaped() {
            Some(plain) => out.push_str(plain).map_err(|_| Overflow),
            None => self.try_for_each_char(|c| out.push(c).map_err(|_| Overflow), Overflow),
        }
    }

    /// Calls `f` with every decoded character, stopping at its first error.
    pub(crate) fn try_for_each_char<E: Copy>(
        self,
        mut f: impl FnMut(char) -> Result<(), E>,
        invalid: E,
    ) -> Result<(), E> {
        // One copy of the unescaping loop for every caller: `f` goes through a `dyn`.
        let mut error = None;
        let complete = self.each_char(&mut |c| match f(c) {
            Ok(()) => true,
            Err(e) => {
                error = Some(e);
                false
            }
        });
        match (complete, error) {
            (true, _) => Ok(()),
            (false, Some(e)) => Err(e),
            (false, None) => Err(invalid),
        }
    }

    /// Feeds every decoded character to `f` until it returns false; false when stopped or on
    /// an invalid escape.
    #[inline(never)]
    fn each_char(self, f: &mut dyn FnMut(char) -> bool) -> bool {
        let mut rest = self.raw;
        loop {
            let (plain, escape) = match rest.find('\\') {
                Some(at) if self.escaped => match rest.split_at_checked(at) {
                    Some(parts) => parts,
                    None => return false,
                },
                _ => (rest, ""),
            };
            if !plain.chars().all(&mut *f) {
                return false;
            }
            if escape.is_empty() {
                return true;
            }
            match decode_escape(escape.as_bytes()) {
                Some((ch, used)) if f(ch) => rest = escape.get(used..).unwrap_or_default(),
                _ => return false,
            }
        }
    }
}

/// Walks the members of the object that `text` holds: `member` gets each key with the reader
/// positioned at its value, which it must consume (or skip). Only white space may follow the
/// object.
pub(crate) fn members<'a, E: From<JsonError>>(
    text: &'a str,
    mut member: impl FnMut(RawStr<'a>, &mut Reader<'a>) -> Result<(), E>,
) -> Result<(), E> {
    // One copy of the object reader for every caller: `member` goes through a `dyn`.
    let mut error = None;
    let read = members_dyn(text, &mut |key, reader| match member(key, reader) {
        Ok(()) => true,
        Err(e) => {
            error = Some(e);
            false
        }
    });
    match (read, error) {
        (_, Some(e)) => Err(e),
        (Err(e), None) => Err(e.into()),
        (Ok(()), None) => Ok(()),
    }
}

#[inline(never)]
fn members_dyn<'a>(
    text: &'a str,
    member: &mut dyn FnMut(RawStr<'a>, &mut Reader<'a>) -> bool,
) -> Result<(), JsonError> {
    let mut reader = Reader::new(text);
    reader.begin_object()?;
    let mut first = true;
    while let Some(key) = reader.next_key(&mut first)? {
        if !member(key, &mut reader) {
            return Ok(());
        }
    }
    reader.end()
}

/// Decodes one escape sequence at the start of `bytes` (which begins with a backslash).
/// Returns the character and how many bytes it used, or `None` when it is not valid JSON.
fn decode_escape(bytes: &[u8]) -> Option<(char, usize)> {
    let simple = match bytes.get(1)? {
        b'"' => '"',
        b'\\' => '\\',
        b'/' => '/',
        b'b' => '\u{8}',
        b'f' => '\u{c}',
        b'n' => '\n',
        b'r' => '\r',
        b't' => '\t',
        b'u' => {
            let high = hex4(bytes.get(2..6)?)?;
            if (0xD800..0xDC00).contains(&high) {
                // A high surrogate must be followed by an escaped low surrogate.
                if bytes.get(6..8)? != b"\\u" {
                    return None;
                }
                let low = hex4(bytes.get(8..12)?)?;
                if !(0xDC00..0xE000).contains(&low) {
                    return None;
                }
                let code = 0x1_0000 + ((high - 0xD800) << 10) + (low - 0xDC00);
                return Some((char::from_u32(code)?, 12));
            }
            return Some((char::from_u32(high)?, 6));
        }
        _ => return None,
    };
    Some((simple, 2))
}

fn hex4(digits: &[u8]) -> Option<u32> {
    digits.iter().try_fold(0u32, |acc, &d| {
        let v = (d as char).to_digit(16)?;
        Some(acc * 16 + v)
    })
}

/// A cursor over JSON text. The text must be valid UTF-8 (the caller checked it), so every
/// slice it cuts at an ASCII delimiter is valid UTF-8 as well.
pub(crate) struct Reader<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Reader { text, pos: 0 }
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn bump(&mut self) {
        self.pos = self.pos.saturating_add(1);
    }

    fn error(&self) -> JsonError {
        JsonError::Syntax { offset: self.pos }
    }

    fn skip_ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.peek() {
            self.bump();
        }
    }

    /// Skips white space, then consumes `byte` or fails.
    fn consume(&mut self, byte: u8) -> Result<(), JsonError> {
        self.skip_ws();
        if self.peek() == Some(byte) {
            self.bump();
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// The next non-white-space byte, not consumed.
    pub(crate) fn peek_value(&mut self) -> Option<u8> {
        self.skip_ws();
        self.peek()
    }

    /// Consumes the `{` that opens the top-level object. A document that is valid JSON but
    /// not an object is [`JsonError::NotAnObject`]; anything else is a syntax error.
    pub(crate) fn begin_object(&mut self) -> Result<(), JsonError> {
        if self.peek_value() == Some(b'{') {
            self.bump();
            return Ok(());
        }
        self.skip_value()?;
        self.end()?;
        Err(JsonError::NotAnObject)
    }

    /// Reads the next member's key and its colon, or `None` at the closing `}`.
    /// `first` tracks whether a comma is expected; start it at `true`.
    pub(crate) fn next_key(&mut self, first: &mut bool) -> Result<Option<RawStr<'a>>, JsonError> {
        match self.peek_value() {
            Some(b'}') => {
                self.bump();
                return Ok(None);
            }
            Some(b',') if !*first => {
                self.bump();
            }
            _ if *first => {}
            _ => return Err(self.error()),
        }
        *first = false;
        let key = self.string()?;
        self.consume(b':')?;
        Ok(Some(key))
    }

    /// After the top-level object: only white space may follow.
    pub(crate) fn end(&mut self) -> Result<(), JsonError> {
        self.skip_ws();
        if self.pos == self.text.len() {
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Reads a string value, checking every escape, and returns it still escaped.
    pub(crate) fn string(&mut self) -> Result<RawStr<'a>, JsonError> {
        self.consume(b'"')?;
        let start = self.pos;
        let mut escaped = false;
        let bytes = self.text.as_bytes();
        loop {
            // Jump over plain characters in one tight loop (no per-byte bounds checks).
            let rest = bytes.get(self.pos..).unwrap_or_default();
            let plain = rest
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
                .unwrap_or(rest.len());
            self.pos = self.pos.saturating_add(plain);
            match bytes.get(self.pos) {
                Some(b'"') => break,
                Some(b'\\') => {
                    let rest = bytes.get(self.pos..).unwrap_or_default();
                    let (_, used) = decode_escape(rest).ok_or_else(|| self.error())?;
                    escaped = true;
                    self.pos = self.pos.saturating_add(used);
                }
                // The end of the text, or a control character: RFC 8259 wants those escaped.
                _ => return Err(self.error()),
            }
        }
        let raw = self.text.get(start..self.pos).ok_or_else(|| self.error())?;
        self.bump(); // the closing quote
        Ok(RawStr { raw, escaped })
    }

    /// Reads a number and returns its text, checked against the JSON number grammar.
    pub(crate) fn number(&mut self) -> Result<&'a str, JsonError> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.bump();
        }
        match self.peek() {
            Some(b'0') => self.bump(),
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error()),
        }
        if self.peek() == Some(b'.') {
            self.bump();
            self.digits1()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.bump();
            if let Some(b'+' | b'-') = self.peek() {
                self.bump();
            }
            self.digits1()?;
        }
        self.text.get(start..self.pos).ok_or_else(|| self.error())
    }

    fn digits(&mut self) {
        while let Some(b'0'..=b'9') = self.peek() {
            self.bump();
        }
    }

    fn digits1(&mut self) -> Result<(), JsonError> {
        match self.peek() {
            Some(b'0'..=b'9') => {
                self.digits();
                Ok(())
            }
            _ => Err(self.error()),
        }
    }

    fn literal(&mut self, word: &str) -> Result<(), JsonError> {
        let end = self.pos.saturating_add(word.len());
        if self.text.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.error())
        }
    }

    /// Reads `[`, for an array the caller reads element by element with [`Reader::next_element`].
    pub(crate) fn begin_array(&mut self) -> Result<(), JsonError> {
        self.consume(b'[')
    }

    /// Before each array element: `true` when one follows, `false` at the closing `]`.
    pub(crate) fn next_element(&mut self, first: &mut bool) -> Result<bool, JsonError> {
        match self.peek_value() {
            Some(b']') => {
                self.bump();
                return Ok(false);
            }
            Some(b',') if !*first => self.bump(),
            _ if *first => {}
            _ => return Err(self.error()),
        }
        *first = false;
        Ok(true)
    }

    /// Skips one value of any type, nested ones included, checking its syntax.
    ///
    /// Iterative: the open arrays and objects are kept as bits of one integer (1 = object), so
    /// hostile nesting costs no stack; deeper than [`MAX_DEPTH`] is [`JsonError::TooDeep`].
    pub(crate) fn skip_value(&mut self) -> Result<(), JsonError> {
        // Bit `d` of `kinds` says whether the container at depth `d` is an object: a bit array
        // rather than a u128 shift register, which costs many instructions on 32-bit targets.
        let mut kinds = [0u8; (MAX_DEPTH as usize).div_ceil(8)];
        let mut depth: u32 = 0;
        loop {
            // Read one value; containers open a level and may close at once when empty.
            match self.peek_value() {
                Some(open @ (b'{' | b'[')) => {
                    if depth >= MAX_DEPTH {
                        return Err(JsonError::TooDeep);
                    }
                    self.bump();
                    let is_object = open == b'{';
                    let (byte, bit) = ((depth / 8) as usize, depth % 8);
                    if let Some(b) = kinds.get_mut(byte) {
                        *b = (*b & !(1 << bit)) | (u8::from(is_object) << bit);
                    }
                    depth = depth.saturating_add(1);
                    let close = if is_object { b'}' } else { b']' };
                    if self.peek_value() == Some(close) {
                        self.bump();
                        depth = depth.saturating_sub(1);
                    } else if is_object {
                        self.string()?;
                        self.consume(b':')?;
                        continue;
                    } else {
                        continue;
                    }
                }
                Some(b'"') => {
                    self.string()?;
                }
                Some(b'-' | b'0'..=b'9') => {
                    self.number()?;
                }
                Some(b't') => self.literal("true")?,
                Some(b'f') => self.literal("false")?,
                Some(b'n') => self.literal("null")?,
                _ => return Err(self.error()),
            }
            // After a value: close finished containers, or move to the next element.
            loop {
                if depth == 0 {
                    return Ok(());
                }
                let top = depth - 1;
                let in_object = kinds
                    .get((top / 8) as usize)
                    .is_some_and(|b| (b >> (top % 8)) & 1 == 1);
                match self.peek_value() {
                    Some(b',') => {
                        self.bump();
                        if in_object {
                            self.string()?;
                            self.consume(b':')?;
                        }
                        break;
                    }
                    Some(b'}') if in_object => {}
                    Some(b']') if !in_object => {}
                    _ => return Err(self.error()),
                }
                self.bump();
                depth = depth.saturating_sub(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn skip_all(text: &str) -> Result<(), JsonError> {
        let mut r = Reader::new(text);
        r.skip_value()?;
        r.end()
    }

    #[test]
    fn skips_valid_values() {
        for ok in [
            "0",
            "-0.5e+10",
            "1E3",
            "\"a\\u00e9\\\"\"",
            "true",
            "false",
            "null",
            "[]",
            "{}",
            "[1,[2,[3,{}]],{\"a\":{\"b\":[null]}}]",
            " { \"k\" : [ 1 , 2 ] } ",
            "\"\\ud83d\\ude00\"",
        ] {
            assert_eq!(skip_all(ok), Ok(()), "{ok}");
        }
    }

    #[test]
    fn rejects_invalid_values() {
        for bad in [
            "",
            "01",
            "-",
            "1.",
            "1e",
            ".5",
            "+1",
            "tru",
            "nul",
            "[1,]",
            "[1 2]",
            "{\"a\"}",
            "{\"a\":1,}",
            "{1:2}",
            "[}",
            "{]",
            "\"abc",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\ud800\"",
            "\"\\ud800\\u0041\"",
            "\"\\udc00\"",
            "\"a\nb\"",
            "[1]]",
            "{\"a\":1}}",
        ] {
            assert!(skip_all(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn nesting_is_bounded_without_recursion() {
        let ok = "[".repeat(128) + &"]".repeat(128);
        assert_eq!(skip_all(&ok), Ok(()));
        let deep = "[".repeat(129) + &"]".repeat(129);
        assert_eq!(skip_all(&deep), Err(JsonError::TooDeep));
        // A very deep hostile input fails fast and uses no stack per level.
        let hostile = "[".repeat(100_000);
        assert_eq!(skip_all(&hostile), Err(JsonError::TooDeep));
        // Objects and arrays interleave; the bit stack tracks which closer is due.
        let mixed = "{\"a\":".repeat(70) + &"[".repeat(50) + &"]".repeat(50) + &"}".repeat(70);
        assert_eq!(skip_all(&mixed), Ok(()));
    }

    #[test]
    fn decodes_escapes() {
        let text = r#""a\/b\"c\\d\u00e9\ud83d\ude00\n\t\b\f\r""#;
        let mut r = Reader::new(text);
        let s = r.string().unwrap();
        let mut out: String<32> = String::new();
        s.decode_into(&mut out).unwrap();
        assert_eq!(out.as_str(), "a/b\"c\\d\u{e9}\u{1F600}\n\t\u{8}\u{c}\r");
        let mut small: String<3> = String::new();
        assert_eq!(s.decode_into(&mut small), Err(Overflow));
    }

    #[test]
    fn not_an_object_is_told_apart_from_garbage() {
        assert_eq!(
            Reader::new("[1]").begin_object(),
            Err(JsonError::NotAnObject)
        );
        assert_eq!(
            Reader::new("42").begin_object(),
            Err(JsonError::NotAnObject)
        );
        assert_eq!(
            Reader::new("[1] 2").begin_object(),
            Err(JsonError::Syntax { offset: 4 })
        );
        assert_eq!(
            Reader::new("nul").begin_object(),
            Err(JsonError::Syntax { offset: 0 })
        );
        assert_eq!(
            Reader::new("  x").begin_object(),
            Err(JsonError::Syntax { offset: 2 })
        );
    }
}
