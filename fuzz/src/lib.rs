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

/// Whether the environment asks for the strict checks of behaviour the project already knows
/// to be wrong (see the targets' `KNOWN_BUGS`). Off by default, so that a run finds new bugs
/// instead of stopping at the known ones.
pub fn strict(name: &str) -> bool {
    std::env::var("JWT_REFRESH_FUZZ_STRICT")
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
}
