//! Helpers shared by the fuzz targets: base64url, JSON text, minting unsigned-but-realistic
//! JWTs, and an independent JSON oracle (`serde_json`) for what the crate accepts.
//!
//! Nothing here is part of `jwt-refresh`; the targets only use the crate's public API.

use std::fmt::Write as _;

/// The wall clock of the simulated servers at the session's monotonic zero (2023-11-14).
pub const EPOCH: u64 = 1_700_000_000;

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// base64url without padding (RFC 7515 section 2), as every JWS producer writes it.
pub fn b64url(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len().div_ceil(3) * 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            out.push(B64URL[((n >> (18 - 6 * i)) & 0x3F) as usize] as char);
        }
    }
    out
}

/// base64url decoding, lenient about padding and trailing bits; `None` on a bad character or
/// an impossible length. Only used by oracles on payloads the crate already accepted.
pub fn b64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    if text.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in text.bytes() {
        let v = B64URL.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// base64url decoding as RFC 4648 section 5 and RFC 7515 have it: the alphabet only, padding
/// optional but never more than the canonical amount, no leftover character (a length of 4n+1),
/// and the unused bits of the last character zero. `None` otherwise.
pub fn b64url_strict(text: &str) -> Option<Vec<u8>> {
    let data = text.trim_end_matches('=');
    let padding = text.len() - data.len();
    if data.len() % 4 == 1 || padding > (4 - data.len() % 4) % 4 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in data.bytes() {
        let v = B64URL.iter().position(|&x| x == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (acc == 0).then_some(out)
}

/// How a JSON string is escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Escape {
    /// Only what RFC 8259 requires (`"`, `\`, control characters).
    Minimal,
    /// Every non-ASCII and every non-alphanumeric character as `\uXXXX` (surrogate pairs
    /// beyond the BMP), as some producers do.
    Everything,
    /// `/` as `\/` and the short escapes where they exist, the rest minimal.
    Short,
}

/// `s` as a JSON string literal, quotes included.
pub fn json_str(s: &str, escape: Escape) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match (c, escape) {
            ('"', _) => out.push_str("\\\""),
            ('\\', _) => out.push_str("\\\\"),
            ('/', Escape::Short) => out.push_str("\\/"),
            ('\n', Escape::Short) => out.push_str("\\n"),
            ('\r', Escape::Short) => out.push_str("\\r"),
            ('\t', Escape::Short) => out.push_str("\\t"),
            ('\u{8}', Escape::Short) => out.push_str("\\b"),
            ('\u{c}', Escape::Short) => out.push_str("\\f"),
            (c, _) if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            (c, Escape::Everything) if !c.is_ascii_alphanumeric() => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    let _ = write!(out, "\\u{unit:04X}");
                }
            }
            (c, _) => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A compact JWS with these exact header and payload texts and a signature of the right shape
/// for HS256 (32 bytes). The crate never verifies signatures, so any bytes do.
pub fn jws(header: &str, payload: &str) -> String {
    let sig: Vec<u8> = payload
        .bytes()
        .chain(header.bytes())
        .enumerate()
        .fold([0u8; 32], |mut acc, (i, b)| {
            acc[i % 32] = acc[i % 32].wrapping_mul(31).wrapping_add(b);
            acc
        })
        .to_vec();
    format!(
        "{}.{}.{}",
        b64url(header.as_bytes()),
        b64url(payload.as_bytes()),
        b64url(&sig)
    )
}

/// PyJWT's header for HS256, as djangorestframework-simplejwt sends it.
pub const SIMPLEJWT_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A token shaped like djangorestframework-simplejwt's: `token_type`, `exp`, `iat`, `jti`,
/// `user_id`, compact separators, issued at `iat` (server seconds) for `lifetime` seconds, with
/// an optional `nbf` this many seconds after `iat`.
pub fn simplejwt_token(kind: &str, iat: u64, lifetime: u64, nbf: Option<u64>, jti: u64) -> String {
    let mut payload = format!(
        r#"{{"token_type":"{kind}","exp":{},"iat":{iat},"jti":"{jti:032x}","user_id":1"#,
        iat.saturating_add(lifetime)
    );
    if let Some(wait) = nbf {
        let _ = write!(payload, r#","nbf":{}"#, iat.saturating_add(wait));
    }
    payload.push('}');
    jws(SIMPLEJWT_HEADER, &payload)
}

/// One member of a JSON object as read by `serde_json`.
#[derive(Debug)]
pub struct Member {
    /// The key, unescaped.
    pub key: String,
    /// The key had escapes in the text (`"refr\u0065sh"`).
    pub escaped_key: bool,
    pub value: serde_json::Value,
}

/// What `serde_json` makes of a text.
#[derive(Debug)]
pub enum JsonVerdict {
    /// A JSON object: its top-level members in order, duplicates kept.
    Object(Vec<Member>),
    /// Valid JSON that is not an object.
    NotObject,
    /// `serde_json` stops at its own limits (128 levels of nesting, numbers beyond f64):
    /// no verdict on validity.
    Limit,
    /// Not JSON.
    Invalid(String),
}

/// A key, and whether it was written with escapes (serde_json borrows plain keys).
struct Key(String, bool);

impl<'de> serde::Deserialize<'de> for Key {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Key;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key, E> {
                Ok(Key(v.to_owned(), false))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key, E> {
                Ok(Key(v.to_owned(), true))
            }
        }
        d.deserialize_str(V)
    }
}

/// Reads `text` with `serde_json`, keeping duplicate top-level keys (a `Value` map would merge
/// them) and noting escaped keys.
pub fn json_members(text: &[u8]) -> JsonVerdict {
    use serde::de::{Deserializer as _, MapAccess, Visitor};
    struct Members;
    impl<'de> Visitor<'de> for Members {
        type Value = Option<Vec<Member>>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
            let mut out = Vec::new();
            while let Some((Key(key, escaped_key), value)) =
                map.next_entry::<Key, serde_json::Value>()?
            {
                out.push(Member {
                    key,
                    escaped_key,
                    value,
                });
            }
            Ok(Some(out))
        }
        fn visit_seq<S: serde::de::SeqAccess<'de>>(
            self,
            mut seq: S,
        ) -> Result<Self::Value, S::Error> {
            while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let result = de
        .deserialize_any(Members)
        .and_then(|v| de.end().map(|()| v));
    match result {
        Ok(Some(members)) => JsonVerdict::Object(members),
        Ok(None) => JsonVerdict::NotObject,
        Err(e) => {
            let msg = e.to_string();
            if msg.contains("recursion limit") || msg.contains("number out of range") {
                JsonVerdict::Limit
            } else {
                JsonVerdict::Invalid(msg)
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The crate's reading of a JSON object: serde_json where the crate reads, documented leniency
// where it skips
// ---------------------------------------------------------------------------------------------
//
// Since e593d62 the crate reads JSON with `serde-json-core`, which skips the values it is not
// asked for leniently: an unknown number or literal is read up to the next `,` `}` `]`
// unchecked, and strings it does not decode are delimited by their quotes only (escapes and raw
// control characters unchecked). So "the crate accepts iff serde_json does" no longer holds.
// What still must hold:
//
// - when serde_json reads the text and it is within the documented limits (nesting of at most
//   `MAX_NESTING` levels, the top-level object included; whole-second dates), the crate reads
//   exactly what serde_json reads (the targets model the exact result, errors included);
// - whenever the crate accepts a text, the members it reads are JSON that serde_json reads on
//   its own, with the values the crate took, and only the members it skips may be lenient.
//
// `read_object` is that second oracle: the top-level object as the library delimits it, the
// members the caller names read strictly by serde_json, every other value skipped the way the
// documentation says the library skips it.

/// How deeply the crate lets a document nest arrays and objects, the top-level object included
/// (`json::MAX_DEPTH`); deeper is refused before parsing (`TooDeep`, or `AnswerError::Json`).
pub const MAX_NESTING: usize = 16;

/// JSON white space (RFC 8259 section 2).
pub fn is_ws(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r')
}

/// The deepest nesting of arrays and objects in `text`, counting brackets outside strings (a
/// string runs from a quote to the next quote not escaped by a backslash). This is how the
/// documented limit is defined, so it applies to text that is not JSON as well.
pub fn nesting_depth(text: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0usize, false, false);
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
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// Behaviour of the crate that goes beyond the documented leniency, found by these targets:
/// tolerated unless `JWT_REFRESH_FUZZ_STRICT` names it (see `strict`), so that a run looks for
/// new bugs. Each is a text that is not JSON in a member the crate reads, accepted:
/// - `escape-plus`: `\u+XXX` is read as `\u0XXX` in every string the crate decodes or compares
///   (claims `iss` `sub` `jti` `aud`, claim and answer member names, tokens in answers):
///   `serde_json_core::str::EscapedStr` parses the four characters with `u32::from_str_radix`,
///   which takes a leading `+`. `{"e\u+078p":5}` has `exp` 5; `{"iss":"\u+041"}` has `iss` "A".
/// - `control-chars`: raw control characters (U+0000 to U+001F) inside `iss` `sub` `jti` `aud`
///   are accepted and kept (`{"iss":"a<LF>b"}`): the library never checks them and the crate
///   does not either when it decodes. Tokens in answers refuse them (`InvalidToken`).
/// - `leading-comma`: an `aud` array may start with a comma, after which one missing comma is
///   not noticed either (`{"aud":[,"a" "b"]}` is `["a", "b"]`): the library's `SeqAccess`
///   takes a `,` before the first element.
/// - `float-grammar` (only with the `float-dates` feature): NumericDates and `expires_in` are
///   read with Rust's `f64` grammar, not JSON's: `+1`, `.5`, `1.`, `01`, `1.e3` are accepted
///   (the library takes the longest run of `0-9 + - . e E` and calls `f64::from_str`).
pub const KNOWN_DEVIATIONS: [&str; 4] = [
    "escape-plus",
    "control-chars",
    "leading-comma",
    "float-grammar",
];

/// The entries of [`KNOWN_DEVIATIONS`] the crate has since fixed (`RawStr::is_strict_json`
/// refuses raw control characters and `\u` without four hex digits in every string it decodes
/// or compares): always checked, their regression inputs must now be refused.
pub const FIXED_DEVIATIONS: [&str; 2] = ["escape-plus", "control-chars"];

/// One member of the top-level object, as the crate delimits it.
#[derive(Debug)]
pub struct ReadMember<'a> {
    /// The name, decoded; `None` when it is not a valid JSON string (then it is no name the
    /// crate reads: names are only compared, never decoded into anything).
    pub key: Option<String>,
    /// The value's text, white space around it excluded.
    pub raw: &'a [u8],
    /// The value as serde_json reads it: always for the members read strictly, else when
    /// serde_json happens to read the skipped text.
    pub value: Option<serde_json::Value>,
}

/// A top-level object read by [`read_object`].
#[derive(Debug)]
pub struct Reading<'a> {
    pub members: Vec<ReadMember<'a>>,
    /// The entries of [`KNOWN_DEVIATIONS`] this reading needed (only with `tolerate`).
    pub deviations: Vec<&'static str>,
}

impl Reading<'_> {
    /// The members named `key`, in order.
    pub fn named<'s>(&'s self, key: &'s str) -> impl Iterator<Item = &'s ReadMember<'s>> + 's {
        self.members
            .iter()
            .filter(move |m| m.key.as_deref() == Some(key))
    }
}

/// Reads `text` as a JSON object the way the crate does: the top level strictly (members
/// separated by single commas, nothing but white space after it), the values of the members
/// for which `strict(name)` holds by serde_json, every other value skipped as documented:
/// strings to the next unescaped quote (UTF-8, escapes unchecked), arrays and objects with
/// their punctuation checked and their contents skipped the same way, anything else up to the
/// next `,` `}` `]`. With `tolerate`, a strict member that is not JSON may also be read as the
/// library reads it where a known deviation explains it (see [`KNOWN_DEVIATIONS`]); the
/// deviations used are listed. `Err` says why the text is no such object.
pub fn read_object<'a>(
    text: &'a [u8],
    strict: &dyn Fn(&str) -> bool,
    tolerate: bool,
) -> Result<Reading<'a>, String> {
    read_members(text, strict, strict, tolerate)
}

/// [`read_object`] with the names the crate looks for (`named`: a name that is no JSON string
/// but that the crate's comparison takes for one of them is an error, or with `tolerate` the
/// `escape-plus` deviation) apart from the members whose values are read strictly (`strict`,
/// a subset): the crate may look for a member and only delimit its value (an error answer's
/// code, see `string_member`).
pub fn read_members<'a>(
    text: &'a [u8],
    named: &dyn Fn(&str) -> bool,
    strict: &dyn Fn(&str) -> bool,
    tolerate: bool,
) -> Result<Reading<'a>, String> {
    let mut c = Cursor {
        text,
        pos: 0,
        deviations: Vec::new(),
    };
    let mut members = Vec::new();
    c.ws();
    c.expect(b'{')?;
    c.ws();
    if c.peek() == Some(b'}') {
        c.pos += 1;
    } else {
        loop {
            c.ws();
            let quoted_start = c.pos;
            let content = c.lenient_string()?;
            let quoted = &text[quoted_start..c.pos];
            let mut key = serde_json::from_slice::<String>(quoted).ok();
            if key.is_none() {
                // No JSON string, but the crate compares names as the library decodes them:
                // only a name it reads makes that matter.
                let mut flags = Flags::default();
                if let Ok(k) = decode_library(content, &mut flags) {
                    // The crate refuses a name with `\u+` or a raw control character
                    // (`FIXED_DEVIATIONS`): that is no name it reads.
                    if named(&k) && !flags.plus && !flags.control {
                        if !tolerate {
                            return Err(format!("member name {k:?} is not JSON"));
                        }
                        c.note(flags, false);
                        key = Some(k);
                    }
                }
            }
            c.ws();
            c.expect(b':')?;
            c.ws();
            let start = c.pos;
            let value = if key.as_deref().is_some_and(strict) {
                match strict_value(&text[start..]) {
                    Ok((value, len)) => {
                        c.pos += len;
                        Some(value)
                    }
                    Err(e) if !tolerate => return Err(format!("member {key:?}: {e}")),
                    Err(e) => {
                        let mut flags = Flags::default();
                        let value = c
                            .library_value(&mut flags, 0)
                            .map_err(|why| format!("member {key:?}: {e}; as the library: {why}"))?;
                        c.note(flags, true);
                        Some(value)
                    }
                }
            } else {
                c.skip(0)?;
                let skipped = trim_end(&text[start..c.pos]);
                strict_value(skipped)
                    .ok()
                    .filter(|&(_, len)| len == skipped.len())
                    .map(|(v, _)| v)
            };
            members.push(ReadMember {
                key,
                raw: trim_end(&text[start..c.pos]),
                value,
            });
            c.ws();
            match c.peek() {
                Some(b',') => c.pos += 1,
                Some(b'}') => {
                    c.pos += 1;
                    break;
                }
                other => {
                    return Err(format!(
                        "expected `,` or `}}` at {}, found {other:?}",
                        c.pos
                    ))
                }
            }
        }
    }
    c.ws();
    if c.pos != text.len() {
        return Err(format!("trailing characters at {}", c.pos));
    }
    Ok(Reading {
        members,
        deviations: c.deviations,
    })
}

fn trim_end(mut text: &[u8]) -> &[u8] {
    while let [rest @ .., last] = text {
        if !is_ws(*last) {
            break;
        }
        text = rest;
    }
    text
}

/// One JSON value at the start of `text` (white space before it allowed) by serde_json, and
/// the length of text it took.
fn strict_value(text: &[u8]) -> Result<(serde_json::Value, usize), String> {
    let mut stream = serde_json::Deserializer::from_slice(text).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(value)) => Ok((value, stream.byte_offset())),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("no value".into()),
    }
}

/// What a library-like reading needed beyond JSON.
#[derive(Default, Clone, Copy)]
struct Flags {
    plus: bool,
    control: bool,
    leading_comma: bool,
    float_grammar: bool,
}

struct Cursor<'a> {
    text: &'a [u8],
    pos: usize,
    deviations: Vec<&'static str>,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.get(self.pos).copied()
    }

    fn ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, b: u8) -> Result<(), String> {
        match self.peek() {
            Some(got) if got == b => {
                self.pos += 1;
                Ok(())
            }
            other => Err(format!(
                "expected `{}` at {}, found {other:?}",
                b as char, self.pos
            )),
        }
    }

    fn note(&mut self, flags: Flags, value: bool) {
        let mut add = |name: &'static str| {
            if !self.deviations.contains(&name) {
                self.deviations.push(name);
            }
        };
        if flags.plus {
            add("escape-plus");
        }
        if flags.control && value {
            add("control-chars");
        }
        if flags.leading_comma {
            add("leading-comma");
        }
        if flags.float_grammar {
            add("float-grammar");
        }
    }

    /// A string delimited as the library delimits it (to the next quote after an even number
    /// of backslashes), which must be UTF-8; its content.
    fn lenient_string(&mut self) -> Result<&'a [u8], String> {
        self.expect(b'"')?;
        let start = self.pos;
        let mut backslashes = 0usize;
        loop {
            match self.peek() {
                None => return Err("unterminated string".into()),
                Some(b'"') if backslashes % 2 == 0 => {
                    let content = &self.text[start..self.pos];
                    self.pos += 1;
                    std::str::from_utf8(content).map_err(|e| format!("string: {e}"))?;
                    return Ok(content);
                }
                Some(b'\\') => backslashes += 1,
                Some(_) => backslashes = 0,
            }
            self.pos += 1;
        }
    }

    /// Skips a value the crate does not read, as documented (see [`read_object`]).
    fn skip(&mut self, depth: usize) -> Result<(), String> {
        if depth > 64 {
            return Err("nested too deeply for this reader".into());
        }
        self.ws();
        match self.peek() {
            None => Err("end of text where a value was due".into()),
            Some(b'"') => self.lenient_string().map(drop),
            Some(b'[') => {
                self.pos += 1;
                self.elements(&mut Flags::default(), |c, _| c.skip(depth + 1))
            }
            Some(b'{') => {
                self.pos += 1;
                let mut first = true;
                loop {
                    self.ws();
                    match self.peek() {
                        Some(b'}') => {
                            self.pos += 1;
                            return Ok(());
                        }
                        Some(b',') if !first => {
                            self.pos += 1;
                            self.ws();
                        }
                        Some(_) if first => first = false,
                        other => return Err(format!("expected `,` or `}}`, found {other:?}")),
                    }
                    if self.peek() == Some(b'}') {
                        return Err("trailing comma".into());
                    }
                    self.lenient_string()?;
                    self.ws();
                    self.expect(b':')?;
                    self.skip(depth + 1)?;
                }
            }
            Some(b',' | b'}' | b']') => Err(format!("expected a value at {}", self.pos)),
            Some(_) => loop {
                match self.peek() {
                    Some(b',' | b'}' | b']') => return Ok(()),
                    Some(_) => self.pos += 1,
                    None => return Err("end of text in a skipped scalar".into()),
                }
            },
        }
    }

    /// The elements of an array whose `[` was read, as the library's `SeqAccess` reads them: a
    /// comma may come before the first element (and then the next separator is not checked).
    fn elements(
        &mut self,
        flags: &mut Flags,
        mut element: impl FnMut(&mut Self, &mut Flags) -> Result<(), String>,
    ) -> Result<(), String> {
        let mut first = true;
        loop {
            self.ws();
            match self.peek() {
                None => return Err("end of text in an array".into()),
                Some(b']') => {
                    self.pos += 1;
                    return Ok(());
                }
                Some(b',') => {
                    if first {
                        flags.leading_comma = true;
                    }
                    self.pos += 1;
                    self.ws();
                    match self.peek() {
                        None => return Err("end of text in an array".into()),
                        Some(b']') => return Err("trailing comma".into()),
                        Some(_) => {}
                    }
                }
                Some(_) if first => first = false,
                Some(other) => return Err(format!("expected `,` or `]`, found {other:?}")),
            }
            element(self, flags)?;
        }
    }

    /// A value of a member the crate reads, as the library reads it where a known deviation
    /// allows more than JSON: strings (escapes decoded by the library's rules, raw control
    /// characters kept), arrays (leading comma), and JSON scalars.
    fn library_value(
        &mut self,
        flags: &mut Flags,
        depth: usize,
    ) -> Result<serde_json::Value, String> {
        if depth > 4 {
            return Err("nested too deeply for this reader".into());
        }
        self.ws();
        match self.peek() {
            Some(b'"') => {
                let content = self.lenient_string()?;
                decode_library(content, flags).map(serde_json::Value::String)
            }
            Some(b'[') => {
                self.pos += 1;
                let mut items = Vec::new();
                self.elements(flags, |c, flags| {
                    items.push(c.library_value(flags, depth + 1)?);
                    Ok(())
                })?;
                Ok(serde_json::Value::Array(items))
            }
            Some(b'-' | b'0'..=b'9' | b't' | b'f' | b'n' | b'+' | b'.') => {
                match strict_value(&self.text[self.pos..]) {
                    Ok((value, len)) => {
                        self.pos += len;
                        Ok(value)
                    }
                    Err(e) if !cfg!(feature = "float-dates") => Err(e),
                    Err(e) => {
                        // With `float-dates`, a number is what `f64::from_str` reads of the
                        // longest run of these bytes.
                        let start = self.pos;
                        while self.peek().is_some_and(|b| b"0123456789+-.eE".contains(&b)) {
                            self.pos += 1;
                        }
                        let run = std::str::from_utf8(&self.text[start..self.pos]).unwrap_or("");
                        let f = run
                            .parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite())
                            .ok_or_else(|| format!("{e}; not an f64 either: {run:?}"))?;
                        flags.float_grammar = true;
                        Ok(serde_json::Value::from(f))
                    }
                }
            }
            other => Err(format!("no value the library would read: {other:?}")),
        }
    }
}

/// Decodes a string's content the way the crate does through `serde-json-core`'s `EscapedStr`
/// (raw control characters kept, `\u` followed by any four bytes `u32::from_str_radix` takes),
/// except that a UTF-16 surrogate pair is combined as JSON says (the crate's refusal of those is
/// documented and modelled by the targets from the raw text).
fn decode_library(content: &[u8], flags: &mut Flags) -> Result<String, String> {
    let text = std::str::from_utf8(content).map_err(|e| e.to_string())?;
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let unit = |rest: &mut &str, flags: &mut Flags| -> Result<u32, String> {
        let hex = rest.get(..4).ok_or("short \\u escape")?;
        if hex.starts_with('+') {
            flags.plus = true;
        }
        let code = u32::from_str_radix(hex, 16).map_err(|e| format!("\\u{hex}: {e}"))?;
        *rest = &rest[4..];
        Ok(code)
    };
    loop {
        let cut = rest.find('\\').unwrap_or(rest.len());
        let (plain, tail) = rest.split_at(cut);
        if plain.chars().any(|c| (c as u32) < 0x20) {
            flags.control = true;
        }
        out.push_str(plain);
        let Some(tail) = tail.strip_prefix('\\') else {
            return Ok(out);
        };
        let mut chars = tail.chars();
        let c = match chars.next().ok_or("lone backslash")? {
            '"' => '"',
            '\\' => '\\',
            '/' => '/',
            'b' => '\u{8}',
            'f' => '\u{c}',
            'n' => '\n',
            'r' => '\r',
            't' => '\t',
            'u' => {
                let mut after = chars.as_str();
                let high = unit(&mut after, flags)?;
                let c = if (0xD800..0xDC00).contains(&high) {
                    let mut low_text = after.strip_prefix("\\u").ok_or("lone high surrogate")?;
                    let low = unit(&mut low_text, flags)?;
                    if !(0xDC00..0xE000).contains(&low) {
                        return Err("high surrogate without a low one".into());
                    }
                    after = low_text;
                    char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
                } else {
                    char::from_u32(high)
                };
                chars = after.chars();
                c.ok_or("lone surrogate")?
            }
            other => return Err(format!("invalid escape \\{other}")),
        };
        out.push(c);
        rest = chars.as_str();
    }
}

/// The elements of the array `raw` (brackets included), each as its text, delimited as the
/// library delimits them (see [`read_object`]); `None` when `raw` is no such array.
pub fn array_items(raw: &[u8]) -> Option<Vec<&[u8]>> {
    let mut c = Cursor {
        text: raw,
        pos: 0,
        deviations: Vec::new(),
    };
    c.expect(b'[').ok()?;
    let mut items = Vec::new();
    c.elements(&mut Flags::default(), |c, _| {
        c.ws();
        let start = c.pos;
        c.skip(1)?;
        let text = c.text;
        items.push(trim_end(&text[start..c.pos]));
        Ok(())
    })
    .ok()?;
    (c.pos == raw.len()).then_some(items)
}

/// One decoded character of a JSON string and whether it was written as a UTF-16 surrogate
/// pair of `\u` escapes (which the crate refuses in the strings it decodes).
#[derive(Clone, Copy, Debug)]
pub struct Unit {
    pub c: char,
    pub surrogate_escape: bool,
}

/// The characters of a JSON string value `raw` (quotes included) that serde_json reads, or
/// that the library reads where a known deviation applies; `None` when `raw` is no string.
pub fn string_units(raw: &[u8]) -> Option<Vec<Unit>> {
    let content = raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    let text = std::str::from_utf8(content).ok()?;
    let mut units = Vec::new();
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if c != '\\' {
            units.push(Unit {
                c,
                surrogate_escape: false,
            });
            rest = &rest[c.len_utf8()..];
            continue;
        }
        // One escape: decode it alone (a surrogate pair is two).
        let len = match rest.as_bytes().get(1) {
            Some(b'u') => {
                let code = rest
                    .get(2..6)
                    .and_then(|h| u32::from_str_radix(h, 16).ok())?;
                if (0xD800..0xDC00).contains(&code) {
                    12
                } else {
                    6
                }
            }
            Some(_) => 2,
            None => return None,
        };
        let escape = rest.get(..len)?;
        let decoded = decode_library(escape.as_bytes(), &mut Flags::default()).ok()?;
        let mut chars = decoded.chars();
        let c = chars.next()?;
        units.push(Unit {
            c,
            surrogate_escape: len == 12,
        });
        rest = &rest[len..];
    }
    Some(units)
}

/// Whether the environment asks for the strict checks of behaviour the project already knows
/// to be wrong (see the targets' `KNOWN_BUGS`). Off by default, so that a run finds new bugs
/// instead of stopping at the known ones.
pub fn strict(name: &str) -> bool {
    FIXED_DEVIATIONS.contains(&name)
        || std::env::var("JWT_REFRESH_FUZZ_STRICT")
            .is_ok_and(|v| v == "all" || v.split(',').any(|part| part.trim() == name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trip() {
        for n in 0..40u8 {
            let data: Vec<u8> = (0..n).map(|i| i.wrapping_mul(37)).collect();
            assert_eq!(b64url_decode(&b64url(&data)).unwrap(), data);
        }
        assert_eq!(b64url(b"{}"), "e30");
    }
    #[test]
    fn strict_base64url() {
        assert_eq!(b64url_strict("e30").unwrap(), b"{}");
        assert_eq!(b64url_strict("e30=").unwrap(), b"{}");
        assert!(
            b64url_strict("e30==").is_none(),
            "more than the canonical padding"
        );
        assert!(b64url_strict("e31").is_none(), "non-zero trailing bits");
        assert!(b64url_strict("e3=0").is_none());
        assert!(b64url_strict("AAAAA").is_none(), "4n+1 characters");
        assert!(b64url_strict("AAAA=").is_none());
        assert!(b64url_strict("e30+").is_none(), "not the URL alphabet");
    }

    #[test]
    fn nesting_counts_brackets_outside_strings() {
        assert_eq!(nesting_depth(br#"{"a":[{"b":[]}]}"#), 4);
        assert_eq!(nesting_depth(br#"{"a":"[[[\"[[["}"#), 1);
        assert_eq!(nesting_depth(b"[[[ x"), 3);
    }

    fn all(_: &str) -> bool {
        true
    }

    #[test]
    fn reads_strict_members_and_skips_the_rest_as_documented() {
        let exp = |name: &str| name == "exp";
        let r = read_object(
            br#" {"a":tru, "b":[1 2], "c":{"d":x}, "exp" : 5 } "#,
            &exp,
            false,
        )
        .unwrap();
        assert_eq!(r.members.len(), 4);
        assert_eq!(r.members[3].key.as_deref(), Some("exp"));
        assert_eq!(r.members[3].value, Some(serde_json::json!(5)));
        assert_eq!(r.members[3].raw, b"5");
        assert_eq!(r.members[0].raw, b"tru");
        // The members read must be JSON, and the object's punctuation is always checked.
        assert!(read_object(br#"{"exp":tru}"#, &exp, false).is_err());
        for bad in [
            &br#"{"a":1,}"#[..],
            br#"{"a":[1,]}"#,
            br#"{"a":}"#,
            br#"{"a":1} x"#,
            b"{",
        ] {
            assert!(read_object(bad, &all, false).is_err());
            assert!(read_object(bad, &|_: &str| false, false).is_err());
        }
        // Known deviations, only with `tolerate`, and listed.
        for (text, deviation) in [
            (&br#"{"iss":"\u+041"}"#[..], "escape-plus"),
            (b"{\"iss\":\"a\x01\"}", "control-chars"),
            (br#"{"aud":[,"a" "b"]}"#, "leading-comma"),
        ] {
            assert!(read_object(text, &all, false).is_err());
            let r = read_object(text, &all, true).unwrap();
            assert_eq!(r.deviations, [deviation]);
        }
        // A name with `\u+` is no name the crate reads: a skipped member.
        let r = read_object(br#"{"i\u+073s":"a"}"#, &all, false).unwrap();
        assert_eq!(r.members[0].key, None);
        let r = read_object(br#"{"iss":"\u+041"}"#, &all, true).unwrap();
        assert_eq!(r.members[0].value, Some(serde_json::json!("A")));
    }

    #[test]
    fn string_units_mark_surrogate_escapes() {
        let units = string_units(br#""a\u00e9\ud83d\ude00\n""#).unwrap();
        let chars: String = units.iter().map(|u| u.c).collect();
        assert_eq!(chars, "a\u{e9}\u{1F600}\n");
        let marked: Vec<bool> = units.iter().map(|u| u.surrogate_escape).collect();
        assert_eq!(marked, [false, false, true, false]);
        assert_eq!(
            array_items(br#"[ "a" , 1,[2]]"#).unwrap(),
            [&b"\"a\""[..], b"1", b"[2]"]
        );
    }
}

/// The refresh token a refresh request's body carries, decoded independently of the crate:
/// `{"refresh":"..."}` (JSON) or `refresh_token=...` (form encoding).
pub fn sent_refresh_token(oauth: bool, body: &str) -> Option<String> {
    if !oauth {
        let value: serde_json::Value = serde_json::from_str(body).ok()?;
        return value.get("refresh")?.as_str().map(str::to_owned);
    }
    let field = body
        .split('&')
        .find_map(|pair| pair.strip_prefix("refresh_token="))?;
    let bytes = field.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}
