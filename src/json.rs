//! The crate's glue around `serde-json-core`: the nesting guard the library lacks, strings
//! borrowed still escaped and unescaped through the library's `EscapedStr`, member names
//! compared escapes included, and the serde types every reader in the crate shares.
//!
//! Every document is read with `serde_json_core`'s deserializer and no unescape buffer, so no
//! string, known or unknown, needs room anywhere; the strings the crate keeps are unescaped
//! into their own fixed buffers.

use core::fmt;

use heapless::String;
use serde::de::{self, Deserialize, DeserializeSeed, Visitor};
use serde_json_core::de::{Deserializer, Error as LibError};
use serde_json_core::str::{EscapedStr, EscapedStringFragment};

/// How deeply arrays and objects may nest in any document the crate reads, the top-level
/// object included. `serde-json-core` skips unknown values by recursion, about 100 bytes of
/// stack a level on Cortex-M, so deeper documents are refused before they are parsed.
pub(crate) const MAX_DEPTH: usize = 16;

/// The document nests deeper than [`MAX_DEPTH`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct TooDeep;

/// Refuses a document that nests arrays and objects deeper than [`MAX_DEPTH`]: a bracket
/// counter that skips strings, run before the recursive parser. It checks no other syntax.
pub(crate) fn check_depth(text: &[u8]) -> Result<(), TooDeep> {
    // Fast path: no more opening brackets in the whole text (strings included) than the limit
    // allows cannot nest deeper than it. A JWT payload has one or a few.
    // `[` and `{` differ only in bit 0x20, and no other byte maps onto `{` with it set.
    let opening = text.iter().filter(|&&b| b | 0x20 == b'{').count();
    if opening <= MAX_DEPTH {
        return Ok(());
    }
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in text {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth = depth.saturating_add(1);
                if depth > MAX_DEPTH {
                    return Err(TooDeep);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses one whole document with `seed`: only white space may follow the value.
pub(crate) fn parse<'de, S: DeserializeSeed<'de>>(
    text: &'de [u8],
    seed: S,
) -> Result<S::Value, LibError> {
    let mut de = Deserializer::new(text, None);
    let value = seed.deserialize(&mut de)?;
    de.end()?;
    Ok(value)
}

/// A JSON string as it stands in the input, between its quotes, escapes not yet decoded; or a
/// plain text handed over by the application. No `Debug`: it may hold a token.
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

    /// A string read from JSON, still escaped.
    pub(crate) fn json(raw: &'a str) -> Self {
        RawStr {
            raw,
            escaped: raw.contains('\\'),
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

    /// Whether a string read from JSON is strict JSON where `serde-json-core` is lenient: no
    /// raw control characters (RFC 8259 wants them escaped) and four hex digits after every
    /// `\u` (the library's unescaper also takes `\u+041`). Text from the application is held
    /// to the same rule: no token or claim contains a control character.
    pub(crate) fn is_strict_json(self) -> bool {
        let bytes = self.raw.as_bytes();
        if !self.escaped {
            // One pass the compiler vectorises: the common case, a token or a plain claim.
            return !bytes.iter().any(|&b| b < 0x20);
        }
        let mut at = 0;
        while let Some(&b) = bytes.get(at) {
            match b {
                0x00..=0x1F => return false,
                b'\\' if self.escaped => {
                    if bytes.get(at.saturating_add(1)) == Some(&b'u') {
                        let hex = bytes.get(at.saturating_add(2)..at.saturating_add(6));
                        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
                            return false;
                        }
                    }
                    at = at.saturating_add(2);
                    continue;
                }
                _ => {}
            }
            at = at.saturating_add(1);
        }
        true
    }

    /// Calls `f` with every decoded character, stopping at its first error; `invalid` when the
    /// string is not strict JSON ([`RawStr::is_strict_json`]) or an escape is not valid
    /// (`serde-json-core` also refuses UTF-16 surrogate pairs).
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
        if !self.is_strict_json() {
            return false;
        }
        if !self.escaped {
            return self.raw.chars().all(f);
        }
        EscapedStr(self.raw)
            .fragments()
            .all(|fragment| match fragment {
                Ok(EscapedStringFragment::NotEscaped(text)) => text.chars().all(&mut *f),
                Ok(EscapedStringFragment::Escaped(c)) => f(c),
                Err(_) => false,
            })
    }
}

/// A string value, borrowed from the input still escaped. A value of another type is the
/// library's `InvalidType` error.
#[derive(Clone, Copy)]
pub(crate) struct Str<'a>(pub(crate) RawStr<'a>);

impl<'de> Deserialize<'de> for Str<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        EscapedStr::deserialize(deserializer).map(|s| Str(RawStr::json(s.0)))
    }
}

/// A member name, borrowed from the input still escaped.
pub(crate) struct Key<'a>(pub(crate) RawStr<'a>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_identifier(StrVisitor).map(Key)
    }
}

/// Takes a string borrowed from the input (without an unescape buffer, `serde-json-core`
/// always lends them).
pub(crate) struct StrVisitor;

impl<'de> Visitor<'de> for StrVisitor {
    type Value = RawStr<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(RawStr::json(v))
    }
}

/// A non-negative whole number of seconds: a JSON integer, or with the `float-dates` feature
/// any JSON number, floored. `None` for a negative or non-finite number.
#[derive(Clone, Copy)]
pub(crate) struct Seconds(pub(crate) Option<u64>);

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[cfg(feature = "float-dates")]
        return deserializer.deserialize_f64(SecondsVisitor);
        #[cfg(not(feature = "float-dates"))]
        return deserializer.deserialize_u64(SecondsVisitor);
    }
}

struct SecondsVisitor;

impl Visitor<'_> for SecondsVisitor {
    type Value = Seconds;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number of seconds")
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Seconds, E> {
        Ok(Seconds(Some(v)))
    }

    #[cfg(feature = "float-dates")]
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Seconds, E> {
        // NaN (the library reads `null` as NaN here), negative numbers, infinity and numbers
        // past u64 are refused; `as` floors the rest.
        #[allow(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            reason = "the range is checked first, so the conversion only floors"
        )]
        let secs = (0.0..18_446_744_073_709_551_616.0)
            .contains(&v)
            .then_some(v as u64);
        Ok(Seconds(secs))
    }
}
