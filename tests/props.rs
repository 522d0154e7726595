//! Property and exhaustive robustness tests for the claims decoder.
//!
//! The decoder reads payloads with `serde-json-core` 0.7 and base64url with `base64` 0.22. It is
//! checked against independent references: tokens minted by `jsonwebtoken` and read back with
//! base64 0.22 and `serde_json`; NumericDates whose floor is known because the test builds the
//! number text from it; and `serde_json`'s reading of the payload. Every other test feeds
//! damaged or random input.
//!
//! serde-json-core is not a validating parser: it skips unknown numbers and literals up to the
//! next `,` `}` `]` unchecked (bytes that are not UTF-8 included: it checks UTF-8 in strings
//! only), does not check the escapes or raw control characters of strings it does not unescape,
//! and accepts a leading comma in a skipped array (`[,1]`). So the decoder is not held to
//! "accepts exactly what `serde_json` accepts" but to three rules, checked on every payload the
//! decoder base64url-decodes ([`check_payload`]):
//!
//! - (a) whenever `serde_json` reads the payload, the decoder reads the same registered claims,
//!   or refuses them with the error the crate's rules name for the first claim that breaks one,
//!   within the documented limits: nesting deeper than 16 levels, the top-level object
//!   included, is `TooDeep`; a `\uXXXX\uXXXX` surrogate pair in a claim the crate reads (`iss`,
//!   `sub`, `jti`, `aud`) is `Json`; a NumericDate that is not an integer is
//!   `InvalidNumericDate` unless the `float-dates` feature reads it through `f64`;
//! - (b) whenever the decoder accepts the payload, those claims are what `serde_json` reads,
//!   whenever `serde_json` can parse the payload at all;
//! - (c) no input panics, and every refusal is the typed error its cause calls for.
//!
//! Failure persistence is off so that a failing run writes no `proptest-regressions/` file into
//! the tree; proptest prints the minimal failing input instead.

use std::fmt;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use jwt_refresh::claims::{DEFAULT_AUD_CAPACITY, DEFAULT_PAYLOAD_CAPACITY, DEFAULT_STR_CAPACITY};
use jwt_refresh::{ClaimName, Claims, DecodeError, TimeClaims, UnixTime};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde::Serialize;
use serde_json::{Map, Number, Value};

/// [`UnixTime::MAX`] in seconds: 9999-12-31T23:59:59Z.
const MAX_SECS: u64 = 253_402_300_799;

/// `{"alg":"HS256","typ":"JWT"}`, for hand-built tokens.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// The registered claim names, which random unknown claims must not reuse at the top level.
const REGISTERED: [&str; 7] = ["exp", "nbf", "iat", "iss", "sub", "jti", "aud"];

/// A proptest configuration with `cases` cases and no regression files.
fn config(cases: u32) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

/// A compact JWS with exactly these payload bytes and a dummy signature.
fn token_for(payload: &[u8]) -> String {
    format!("{HEADER}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

// ---------------------------------------------------------------------------------------------
// The std reference decoder
// ---------------------------------------------------------------------------------------------

/// How deeply arrays and objects may nest in a payload, the top-level object included.
const MAX_DEPTH: usize = 16;

/// Registered claims as plain std values, the common ground of the decoder and the reference.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Plain {
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    aud: Vec<String>,
}

impl Plain {
    /// What the decoder read.
    fn of<const S: usize, const A: usize>(claims: &Claims<S, A>) -> Plain {
        Plain {
            exp: claims.exp.map(UnixTime::as_secs),
            nbf: claims.nbf.map(UnixTime::as_secs),
            iat: claims.iat.map(UnixTime::as_secs),
            iss: claims.iss.as_deref().map(str::to_owned),
            sub: claims.sub.as_deref().map(str::to_owned),
            jti: claims.jti.as_deref().map(str::to_owned),
            aud: claims.audiences().map(str::to_owned).collect(),
        }
    }

    /// What the scheduling-only decoder read.
    fn of_times(times: &TimeClaims) -> Plain {
        Plain {
            exp: times.exp.map(UnixTime::as_secs),
            nbf: times.nbf.map(UnixTime::as_secs),
            iat: times.iat.map(UnixTime::as_secs),
            ..Plain::default()
        }
    }
}

/// The reference's payload bytes: split on '.', base64url-decode the middle part with base64
/// 0.22 (trailing '=' removed, as the decoder tolerates padding). `None` unless three parts.
fn reference_payload(token: &str) -> Option<Vec<u8>> {
    let parts: Vec<&str> = token.split('.').collect();
    let [_, payload, _] = parts.as_slice() else {
        return None;
    };
    URL_SAFE_NO_PAD.decode(payload.trim_end_matches('=')).ok()
}

/// A payload as `serde_json` reads it.
#[derive(Debug)]
enum Reading {
    /// Not JSON to `serde_json` (its message), or JSON with a number past `f64::MAX`, which it
    /// cannot read and the decoder skips like any other number.
    Unparsable(String),
    /// A JSON value other than an object.
    NotAnObject,
    /// An object: its members in document order, duplicates kept, names unescaped.
    Object(Vec<(String, Value)>),
}

fn read_with_serde_json(payload: &[u8]) -> Reading {
    match serde_json::from_slice::<Value>(payload) {
        Err(e) => Reading::Unparsable(e.to_string()),
        Ok(Value::Object(_)) => {
            let Members(members) = serde_json::from_slice(payload).expect("an object");
            Reading::Object(members)
        }
        Ok(_) => Reading::NotAnObject,
    }
}

/// An object's members in document order, duplicates kept (a `Value::Object` keeps the last).
struct Members(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Members {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor;

        impl<'de> Visitor<'de> for MembersVisitor {
            type Value = Members;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Members, M::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry()? {
                    members.push(member);
                }
                Ok(Members(members))
            }
        }

        deserializer.deserialize_map(MembersVisitor)
    }
}

/// The registered claim a member name (unescaped) names, if any.
fn registered(name: &str) -> Option<ClaimName> {
    [
        ClaimName::Exp,
        ClaimName::Nbf,
        ClaimName::Iat,
        ClaimName::Iss,
        ClaimName::Sub,
        ClaimName::Jti,
        ClaimName::Aud,
    ]
    .into_iter()
    .find(|claim| claim.as_str() == name)
}

/// 2^64: a date read through `f64` must be below it.
#[cfg(feature = "float-dates")]
const TWO_POW_64: f64 = 18_446_744_073_709_551_616.0;

/// An `f64` floored to whole seconds, as `float-dates` reads a date: `None` when negative, not
/// finite or not below 2^64. `-0.0` is zero, not negative.
#[cfg(feature = "float-dates")]
fn f64_floor(v: f64) -> Option<u64> {
    (0.0..TWO_POW_64).contains(&v).then(|| v.floor() as u64)
}

/// Whether `text` is a JSON integer without sign: `0`, or digits without a leading zero.
#[cfg(not(feature = "float-dates"))]
fn is_integer(text: &str) -> bool {
    text == "0"
        || (text.starts_with(|c: char| c.is_ascii_digit() && c != '0')
            && text.bytes().all(|b| b.is_ascii_digit()))
}

/// A NumericDate as the decoder reads the number `serde_json` parsed: without `float-dates`
/// only an integer (`serde_json` has `as_u64` only for digits without sign, fraction or
/// exponent); with it any number, through `f64`, floored. Either way at most [`MAX_SECS`].
fn date_of(value: &Value) -> Option<u64> {
    #[cfg(not(feature = "float-dates"))]
    let secs = value.as_u64();
    #[cfg(feature = "float-dates")]
    let secs = value.as_f64().and_then(f64_floor);
    secs.filter(|&secs| secs <= MAX_SECS)
}

/// A NumericDate text as the decoder reads it: without `float-dates` only a JSON integer
/// without sign; with it whatever Rust's `f64` parser reads (JSON numbers and more: `+1`, `01`,
/// `.5`), floored. Either way at most [`MAX_SECS`].
fn date_of_text(text: &str) -> Option<u64> {
    #[cfg(not(feature = "float-dates"))]
    let secs = if is_integer(text) {
        text.parse().ok()
    } else {
        None
    };
    #[cfg(feature = "float-dates")]
    let secs = text.parse().ok().and_then(f64_floor);
    secs.filter(|&secs| secs <= MAX_SECS)
}

/// Whether `text` (as `serde_json` decoded it) holds a character beyond U+FFFF that `payload`
/// also writes as a `\uXXXX\uXXXX` surrogate pair (hex digits in any case), which
/// serde-json-core's unescaper refuses.
fn written_as_surrogate_pair(text: &str, payload: &str) -> bool {
    let payload = payload.to_ascii_lowercase();
    text.chars().filter(|&c| c > '\u{ffff}').any(|c| {
        let mut units = [0u16; 2];
        c.encode_utf16(&mut units);
        let [high, low] = units;
        payload.contains(&format!("\\u{high:04x}\\u{low:04x}"))
    })
}

/// What the crate's rules make of an object `serde_json` read.
#[derive(Debug)]
struct Expected {
    /// The registered claims, or the error of the first member, in document order, that
    /// breaks a rule.
    answer: Result<Plain, DecodeError>,
    /// A string claim read on the way holds a character beyond U+FFFF that the payload also
    /// writes as a surrogate pair somewhere: if that claim is where, the answer is `Json`.
    or_json: bool,
}

/// Applies the crate's rules to the members `serde_json` read, in order, for a decoder with
/// `S`-byte strings and `A` audiences that reads the string claims (`strings`, as `Claims`
/// does) or skips them (as `TimeClaims` does). Unknown members are skipped; a registered claim
/// seen twice is `DuplicateClaim`; a date [`date_of`] cannot read is `InvalidNumericDate`;
/// `iss`, `sub` and `jti` must be strings of at most `S` bytes, and `aud` one such string or
/// an array of at most `A` of them (an element's type is checked before the count).
fn by_the_rules<const S: usize, const A: usize>(
    members: &[(String, Value)],
    payload: &str,
    strings: bool,
) -> Expected {
    let mut or_json = false;
    let answer = apply_rules::<S, A>(members, payload, strings, &mut or_json);
    Expected { answer, or_json }
}

fn apply_rules<const S: usize, const A: usize>(
    members: &[(String, Value)],
    payload: &str,
    strings: bool,
    or_json: &mut bool,
) -> Result<Plain, DecodeError> {
    let mut plain = Plain::default();
    let mut seen = Vec::new();
    for (name, value) in members {
        let Some(claim) = registered(name) else {
            continue;
        };
        if seen.contains(&claim) {
            return Err(DecodeError::DuplicateClaim { claim });
        }
        seen.push(claim);
        let wrong_type = DecodeError::InvalidClaimType { claim };
        let mut text = |text: &str| {
            *or_json |= written_as_surrogate_pair(text, payload);
            if text.len() > S {
                Err(DecodeError::ClaimTooLong { claim, capacity: S })
            } else {
                Ok(text.to_owned())
            }
        };
        let date = || date_of(value).ok_or(DecodeError::InvalidNumericDate { claim });
        match claim {
            ClaimName::Exp => plain.exp = Some(date()?),
            ClaimName::Nbf => plain.nbf = Some(date()?),
            ClaimName::Iat => plain.iat = Some(date()?),
            _ if !strings => {}
            ClaimName::Iss => plain.iss = Some(text(value.as_str().ok_or(wrong_type)?)?),
            ClaimName::Sub => plain.sub = Some(text(value.as_str().ok_or(wrong_type)?)?),
            ClaimName::Jti => plain.jti = Some(text(value.as_str().ok_or(wrong_type)?)?),
            _ => match value {
                Value::String(one) => plain.aud.push(text(one)?),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let item = item.as_str().ok_or(wrong_type)?;
                        if i >= A {
                            return Err(DecodeError::TooManyAudiences { capacity: A });
                        }
                        plain.aud.push(text(item)?);
                    }
                }
                _ => return Err(wrong_type),
            },
        }
    }
    Ok(plain)
}

/// Bracket nesting as the decoder's guard counts it before parsing: `[` and `{` outside
/// strings, a string ending at its first unescaped `"`, no other syntax checked.
fn bracket_depth(payload: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for &b in payload {
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

/// Whether `error` is one a registered claim's rules give.
fn claim_error(error: &DecodeError) -> bool {
    matches!(
        error,
        DecodeError::DuplicateClaim { .. }
            | DecodeError::InvalidClaimType { .. }
            | DecodeError::ClaimTooLong { .. }
            | DecodeError::TooManyAudiences { .. }
            | DecodeError::InvalidNumericDate { .. }
    )
}

/// `payload` without the JSON white space at its start and its end.
fn trim_json_ws(payload: &[u8]) -> &[u8] {
    let is_ws = |b: &u8| b" \t\n\r".contains(b);
    let start = payload
        .iter()
        .position(|b| !is_ws(b))
        .unwrap_or(payload.len());
    let end = payload
        .iter()
        .rposition(|b| !is_ws(b))
        .map_or(start, |last| last + 1);
    &payload[start..end]
}

/// Checks the answers of `Claims` (with `S`-byte strings and `A` audiences) and of
/// `TimeClaims` for a payload both base64url-decoded, by the three rules of this file's
/// introduction:
///
/// - (c) before parsing, in this order: a payload nesting deeper than 16 levels is `TooDeep`;
///   one of nothing but white space is `Json`; one whose first byte after white space is not
///   `{` is `NotAnObject`;
/// - (a, b) when `serde_json` reads the object, both answers are what [`by_the_rules`] makes
///   of its members, except that `Json` may stand for a claim written with a surrogate pair;
/// - (b, c) when it cannot, the decoder may still accept an object from `{` to `}`, since
///   serde-json-core skips unknown values leniently (bytes that are not UTF-8 included: it
///   checks UTF-8 only in the strings it reads); otherwise the refusal is `Json`, a claim's
///   error, or, for a payload that is not UTF-8, `Utf8`.
///
/// Whenever `Claims` accepts, `TimeClaims` reads the same dates (it skips string claims, so it
/// may accept more).
fn check_payload<const S: usize, const A: usize>(
    payload: &[u8],
    claims: &Result<Claims<S, A>, DecodeError>,
    times: &Result<TimeClaims, DecodeError>,
) -> Result<(), TestCaseError> {
    if let Ok(claims) = claims {
        prop_assert_eq!(times, &Ok(claims.times()));
    }
    let got = claims.as_ref().map(Plain::of).map_err(|e| *e);
    let got_times = times.as_ref().map(Plain::of_times).map_err(|e| *e);
    let shown = String::from_utf8_lossy(payload);
    let object = trim_json_ws(payload);
    let before_parsing = if bracket_depth(payload) > MAX_DEPTH {
        Some(DecodeError::TooDeep)
    } else {
        match object.first() {
            None => Some(DecodeError::Json),
            Some(b'{') => None,
            Some(_) => Some(DecodeError::NotAnObject),
        }
    };
    if let Some(error) = before_parsing {
        prop_assert_eq!(got, Err(error), "payload {:?}", shown);
        prop_assert_eq!(got_times, Err(error), "payload {:?}", shown);
        return Ok(());
    }
    let utf8 = std::str::from_utf8(payload);
    match read_with_serde_json(payload) {
        Reading::Object(members) => {
            let text = utf8.expect("serde_json reads only UTF-8");
            let want = by_the_rules::<S, A>(&members, text, true);
            prop_assert!(
                got == want.answer || (want.or_json && got == Err(DecodeError::Json)),
                "payload {:?}: serde_json reads {:?}, so the decoder must answer {:?}, not {:?}",
                text,
                members,
                want,
                got
            );
            let want_times = by_the_rules::<S, A>(&members, text, false).answer;
            prop_assert_eq!(got_times, want_times, "payload {:?}", text);
        }
        Reading::NotAnObject => {
            return Err(TestCaseError::fail(format!(
                "serde_json reads {shown:?} as a value other than an object"
            )));
        }
        Reading::Unparsable(why) => {
            if got.is_ok() {
                prop_assert!(
                    object.ends_with(b"}"),
                    "payload {:?} ({}): the decoder accepts text after the object",
                    shown,
                    why
                );
            }
            for error in [got.err(), got_times.err()].into_iter().flatten() {
                prop_assert!(
                    error == DecodeError::Json
                        || claim_error(&error)
                        || (error == DecodeError::Utf8 && utf8.is_err()),
                    "payload {:?} ({}): {:?}",
                    shown,
                    why,
                    error
                );
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// (a) Tokens minted by jsonwebtoken
// ---------------------------------------------------------------------------------------------

/// `aud` as one string or an array, serialised the way RFC 7519 allows both.
#[derive(Clone, Debug, Serialize)]
#[serde(untagged)]
enum Aud {
    One(String),
    Many(Vec<String>),
}

/// The claims handed to `jsonwebtoken::encode`. Unknown claims come before and after the
/// registered ones, so the decoder must skip them in both places.
#[derive(Clone, Debug, Serialize)]
struct Minted {
    #[serde(flatten)]
    extra_first: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    exp: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<Aud>,
    #[serde(skip_serializing_if = "Option::is_none")]
    nbf: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    iat: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jti: Option<String>,
    #[serde(flatten)]
    extra_last: Map<String, Value>,
}

impl Minted {
    /// The claims the minted token carries, straight from the struct.
    fn plain(&self) -> Plain {
        Plain {
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
            iss: self.iss.clone(),
            sub: self.sub.clone(),
            jti: self.jti.clone(),
            aud: match &self.aud {
                None => Vec::new(),
                Some(Aud::One(one)) => vec![one.clone()],
                Some(Aud::Many(many)) => many.clone(),
            },
        }
    }
}

/// Characters that stress JSON escaping and UTF-8: anything, control characters (escaped by
/// `serde_json`), quotes, backslashes, slashes, line separators, BOM, multi-byte characters.
fn tricky_char() -> impl Strategy<Value = char> {
    prop_oneof![
        4 => any::<char>(),
        2 => prop::char::range('\u{0}', '\u{1f}'),
        3 => prop::sample::select(vec![
            '"', '\\', '/', '\u{7f}', '\u{2028}', '\u{2029}', '\u{feff}', 'é', '東', '😀',
            '\u{10ffff}', 'u', 'e', 'x', 'p', ' ',
        ]),
        3 => prop::char::range('a', 'z'),
    ]
}

/// Cuts `text` to at most `max` bytes, on a character boundary.
fn fit(mut text: String, max: usize) -> String {
    while text.len() > max {
        text.pop();
    }
    text
}

/// A string claim of 0..=`max` bytes; 30% of them are then filled up to exactly `max` bytes,
/// so the capacity boundary is hit often.
fn claim_string(max: usize) -> impl Strategy<Value = String> {
    (
        prop::collection::vec(tricky_char(), 0..=max),
        prop::bool::weighted(0.3),
    )
        .prop_map(move |(chars, fill)| {
            let mut text = fit(chars.into_iter().collect(), max);
            if fill {
                text.extend(std::iter::repeat_n('f', max - text.len()));
            }
            text
        })
}

/// A NumericDate in range, with the bounds and present-day values weighted up.
fn numeric_date() -> impl Strategy<Value = u64> {
    prop_oneof![
        3 => 0..=MAX_SECS,
        3 => 1_600_000_000u64..1_900_000_000,
        1 => Just(0),
        1 => Just(MAX_SECS),
        1 => (MAX_SECS - 1000)..=MAX_SECS,
    ]
}

/// An object key: arbitrary short text, or a near miss of a registered name.
fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => claim_string(12),
        1 => prop::sample::select(vec![
            "exp", "nbf", "iat", "iss", "sub", "jti", "aud", "ex", "expp", "EXP", "exp ", "e",
            "aud\u{0}", "token_type", "user_id", "",
        ])
        .prop_map(str::to_owned),
    ]
}

/// Any JSON value, nested at most 4 levels: numbers of every kind (negative, huge, floats in
/// exponent form), strings with escapes, literals, arrays and objects.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_filter_map("not finite", |f| Number::from_f64(f).map(Value::Number)),
        claim_string(24).prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..4)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// Random claims: each registered claim maybe absent, plus 0..6 unknown claims split between
/// the start and the end of the object.
fn minted() -> impl Strategy<Value = Minted> {
    let string = || prop::option::of(claim_string(DEFAULT_STR_CAPACITY));
    let date = || prop::option::of(numeric_date());
    let aud = prop::option::of(prop_oneof![
        claim_string(DEFAULT_STR_CAPACITY).prop_map(Aud::One),
        prop::collection::vec(claim_string(32), 0..=DEFAULT_AUD_CAPACITY).prop_map(Aud::Many),
    ]);
    let extra = prop::collection::vec((key(), json_value()), 0..6);
    (
        string(),
        string(),
        string(),
        date(),
        date(),
        date(),
        aud,
        extra,
    )
        .prop_map(|(iss, sub, jti, exp, nbf, iat, aud, extra)| {
            let mut extra_first = Map::new();
            let mut extra_last = Map::new();
            let unknown = extra
                .into_iter()
                .filter(|(k, _)| !REGISTERED.contains(&k.as_str()));
            for (i, (k, v)) in unknown.enumerate() {
                if extra_first.contains_key(&k) || extra_last.contains_key(&k) {
                    continue;
                }
                if i % 2 == 0 {
                    extra_first.insert(k, v);
                } else {
                    extra_last.insert(k, v);
                }
            }
            Minted {
                extra_first,
                iss,
                exp,
                sub,
                aud,
                nbf,
                iat,
                jti,
                extra_last,
            }
        })
}

proptest! {
    #![proptest_config(config(2048))]

    /// Tokens minted by `jsonwebtoken` (HS256, random secret and `kid`) decode to exactly the
    /// claims a std reference reads (split, base64 0.22, `serde_json`), which are also the
    /// claims that were minted. Checked with the default buffer (or `TooLarge` past 1024
    /// bytes), with a scratch buffer of exactly the payload's size and one byte short, and
    /// against `TimeClaims`.
    #[test]
    fn minted_tokens_match_reference(
        minted in minted(),
        secret in prop::collection::vec(any::<u8>(), 1..=64),
        kid in prop::option::of("[ -~]{0,16}"),
    ) {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = kid;
        let token = encode(&header, &minted, &EncodingKey::from_secret(&secret)).unwrap();

        let payload = reference_payload(&token).unwrap();
        let Reading::Object(members) = read_with_serde_json(&payload) else {
            panic!("serde_json cannot read the minted payload");
        };
        let text = std::str::from_utf8(&payload).unwrap();
        let want = by_the_rules::<DEFAULT_STR_CAPACITY, DEFAULT_AUD_CAPACITY>(&members, text, true);
        prop_assert!(!want.or_json, "serde_json writes no surrogate pair");
        prop_assert_eq!(&want.answer, &Ok(minted.plain()), "the reference misread the minted claims");
        let want = minted.plain();

        let mut scratch = vec![0u8; payload.len()];
        let exact = Claims::<DEFAULT_STR_CAPACITY, DEFAULT_AUD_CAPACITY>::decode_in(
            &token,
            &mut scratch,
        );
        prop_assert_eq!(exact.as_ref().map(Plain::of), Ok(want));
        let exact = exact.unwrap();
        prop_assert_eq!(TimeClaims::decode_in(&token, &mut scratch), Ok(exact.times()));

        let short = payload.len() - 1;
        let too_small = DecodeError::TooLarge { needed: payload.len(), capacity: short };
        prop_assert_eq!(Claims::<8, 1>::decode_in(&token, &mut scratch[..short]), Err(too_small));
        prop_assert_eq!(TimeClaims::decode_in(&token, &mut scratch[..short]), Err(too_small));

        if payload.len() <= DEFAULT_PAYLOAD_CAPACITY {
            prop_assert_eq!(Claims::decode(&token), Ok(exact.clone()));
            prop_assert_eq!(TimeClaims::decode(&token), Ok(exact.times()));
        } else {
            let too_large = DecodeError::TooLarge {
                needed: payload.len(),
                capacity: DEFAULT_PAYLOAD_CAPACITY,
            };
            prop_assert_eq!(Claims::decode(&token), Err(too_large));
            prop_assert_eq!(TimeClaims::decode(&token), Err(too_large));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Escapes the minting library never writes
// ---------------------------------------------------------------------------------------------

/// Writes `text` as a JSON string, escaping each character in a randomly chosen legal way
/// (`choices` supplies one selector per character): raw when allowed, a short escape, or a
/// `\uXXXX` escape (hex digits in random case). A character beyond U+FFFF is written raw or, only
/// when `pairs`, as a `\uXXXX\uXXXX` surrogate pair. Also answers whether it wrote a pair.
fn escape_randomly(text: &str, choices: &[u8], pairs: bool) -> (String, bool) {
    let mut out = String::from("\"");
    let mut wrote_pair = false;
    for (ch, &choice) in text.chars().zip(choices.iter().cycle()) {
        let short = match ch {
            '"' => Some("\\\""),
            '\\' => Some("\\\\"),
            '/' => Some("\\/"),
            '\u{8}' => Some("\\b"),
            '\u{c}' => Some("\\f"),
            '\n' => Some("\\n"),
            '\r' => Some("\\r"),
            '\t' => Some("\\t"),
            _ => None,
        };
        let must_escape = matches!(ch, '"' | '\\' | '\u{0}'..='\u{1f}');
        let beyond_bmp = ch > '\u{ffff}';
        match (choice % 3, short) {
            (0, _) if !must_escape => out.push(ch),
            _ if beyond_bmp && !pairs => out.push(ch),
            (1, Some(short)) => out.push_str(short),
            _ => {
                wrote_pair |= beyond_bmp;
                let mut units = [0u16; 2];
                for unit in ch.encode_utf16(&mut units) {
                    if choice & 0x80 == 0 {
                        out.push_str(&format!("\\u{unit:04x}"));
                    } else {
                        out.push_str(&format!("\\u{unit:04X}"));
                    }
                }
            }
        }
    }
    out.push('"');
    (out, wrote_pair)
}

proptest! {
    #![proptest_config(config(512))]

    /// Strings written with every JSON escape form (`\/`, `\uXXXX` in both cases, short escapes,
    /// raw UTF-8), which `serde_json` never emits, decode to the original text in `iss`, `sub`,
    /// `jti`, `aud` and in an escaped key naming a registered claim.
    ///
    /// The one form serde-json-core refuses is a character beyond U+FFFF written as a surrogate
    /// pair (`\ud83d\ude00`; in a quarter of the cases some are): in a claim the crate reads it
    /// makes the payload `Json`. `TimeClaims`, which reads no string claim, still reads `exp`,
    /// and an unknown claim holding the same strings is skipped without being unescaped. A
    /// second `exp` at the end, however written, is `DuplicateClaim` for both decoders.
    #[test]
    fn every_escape_form_decodes(
        texts in prop::collection::vec(claim_string(DEFAULT_STR_CAPACITY), 4),
        choices in prop::collection::vec(any::<u8>(), 1..32),
        pairs in prop::bool::weighted(0.25),
        exp in numeric_date(),
        escape_key in any::<bool>(),
        duplicate in prop::bool::weighted(0.1),
    ) {
        let escaped: Vec<(String, bool)> =
            texts.iter().map(|t| escape_randomly(t, &choices, pairs)).collect();
        let (exp_key, _) = if escape_key {
            escape_randomly("exp", &choices, pairs)
        } else {
            ("\"exp\"".into(), false)
        };
        let [iss, sub, jti, aud] = [0, 1, 2, 3].map(|i| &escaped[i].0);
        let again = if duplicate {
            let reversed: Vec<u8> = choices.iter().rev().copied().collect();
            format!(",{}:0", escape_randomly("exp", &reversed, pairs).0)
        } else {
            String::new()
        };
        let payload = format!(
            r#"{{"note":[{iss},{sub},{jti},{aud}],"iss":{iss},"sub":{sub},"jti":{jti},"aud":[{aud}],{exp_key}:{exp}{again}}}"#
        );
        let token = token_for(payload.as_bytes());
        let mut scratch = vec![0u8; payload.len()];
        let got = Claims::<DEFAULT_STR_CAPACITY, 1>::decode_in(&token, &mut scratch);
        let twice = DecodeError::DuplicateClaim { claim: ClaimName::Exp };
        let want = if escaped.iter().any(|(_, wrote_pair)| *wrote_pair) {
            Err(DecodeError::Json)
        } else if duplicate {
            Err(twice)
        } else {
            Ok(Plain {
                exp: Some(exp),
                iss: Some(texts[0].clone()),
                sub: Some(texts[1].clone()),
                jti: Some(texts[2].clone()),
                aud: vec![texts[3].clone()],
                ..Plain::default()
            })
        };
        prop_assert_eq!(got.map(|c| Plain::of(&c)), want, "payload {}", payload);
        let times = TimeClaims::decode_in(&token, &mut scratch);
        let want_exp = if duplicate { Err(twice) } else { Ok(UnixTime::from_secs(exp)) };
        prop_assert_eq!(times.map(|t| t.exp), want_exp, "payload {}", payload);
        // The reference agrees on the text (serde_json reads every escape form, pairs included).
        let value: Value = serde_json::from_str(&payload).unwrap();
        prop_assert_eq!(value["sub"].as_str(), Some(texts[1].as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Non-integer NumericDates
// ---------------------------------------------------------------------------------------------
//
// Without the `float-dates` feature only a plain integer is a NumericDate; every other
// spelling is `InvalidNumericDate`. With it the decoder reads the number through `f64` and
// floors it, so the exact floor built below is what it returns except where `f64` rounding
// moves it (`f64_rounding_explains`).

/// One way to write a number whose floor is known by construction.
///
/// The reference does not parse the text (so it cannot share a parsing bug with the decoder),
/// and does not use `f64` (inexact: `1700000000.9999999` rounds up to `1700000001.0`). Instead
/// the test picks the value first, as an integer part `int` (decimal digits) plus a fraction
/// `0.frac` (which is in [0, 1)), so the floor is `int` itself. It then *writes* that value:
/// the digit string `int ++ frac` with the decimal point put after `point` digits (not its
/// true place, in general) and a compensating exponent, trailing zeros appended when the
/// point lands past the last digit, and leading zeros of the integer part dropped (JSON
/// forbids them). Moving the point while adjusting the exponent, appending zeros after the
/// last digit and dropping leading zeros all leave the value unchanged, so `int` stays the
/// exact floor.
#[derive(Clone, Debug)]
struct Spelling {
    /// The integer part, without leading zeros ("0" for zero); may exceed `u64`.
    int: String,
    /// The fraction digits (possibly empty, possibly all zeros).
    frac: String,
    /// Where the point goes in the written mantissa, taken modulo the digit count plus 25.
    point: usize,
    negative: bool,
    upper_e: bool,
    plus_sign: bool,
    exponent_zeros: usize,
    omit_zero_exponent: bool,
    extra_frac_zeros: usize,
}

impl Spelling {
    /// The number text, and the expected decode: `Some(floor)` or `None` (invalid).
    fn render(&self) -> (String, Option<u64>) {
        let digits = format!("{}{}", self.int, self.frac);
        let k = self.point % (digits.len() + 25);
        let mut padded = digits.clone();
        while padded.len() < k {
            padded.push('0');
        }
        let (int_raw, frac_raw) = padded.split_at(k);
        let int_part = match int_raw.trim_start_matches('0') {
            "" => "0",
            nonzero => nonzero,
        };
        let mut text = String::new();
        if self.negative {
            text.push('-');
        }
        text.push_str(int_part);
        if !frac_raw.is_empty() || self.extra_frac_zeros > 0 {
            text.push('.');
            text.push_str(frac_raw);
            let zeros = if frac_raw.is_empty() {
                self.extra_frac_zeros.max(1)
            } else {
                self.extra_frac_zeros
            };
            text.extend(std::iter::repeat_n('0', zeros));
        }
        // value = 0.digits * 10^len(int) = int_part.frac_raw * 10^(len(int) - k)
        let exponent = self.int.len() as i64 - k as i64;
        if exponent != 0 || !self.omit_zero_exponent {
            text.push(if self.upper_e { 'E' } else { 'e' });
            if exponent < 0 {
                text.push('-');
            } else if self.plus_sign {
                text.push('+');
            }
            text.extend(std::iter::repeat_n('0', self.exponent_zeros));
            text.push_str(&exponent.unsigned_abs().to_string());
        }
        let zero = digits.bytes().all(|d| d == b'0');
        let expected = if zero {
            Some(0) // -0, 0.000, 0e7 and -0.0E-3 are all zero, which is a valid NumericDate
        } else if self.negative {
            None
        } else {
            // Past u64 the parse fails, and past MAX_SECS the decoder must refuse.
            self.int.parse::<u64>().ok().filter(|&n| n <= MAX_SECS)
        };
        (text, expected)
    }
}

/// Integer parts around the interesting magnitudes: zero, small, today, the upper bound, just
/// past it, past `u64::MAX` (20 digits), and long digit strings.
fn integer_part() -> impl Strategy<Value = String> {
    prop_oneof![
        1 => Just("0".to_owned()),
        2 => (1u64..1000).prop_map(|n| n.to_string()),
        3 => (1_600_000_000u64..1_900_000_000).prop_map(|n| n.to_string()),
        2 => (1..=MAX_SECS).prop_map(|n| n.to_string()),
        2 => (MAX_SECS - 3..=MAX_SECS + 3).prop_map(|n| n.to_string()),
        1 => (u64::MAX - 3..=u64::MAX).prop_map(|n| (u128::from(n) + 2).to_string()),
        1 => "[1-9][0-9]{0,40}",
    ]
}

fn spelling() -> impl Strategy<Value = Spelling> {
    (
        integer_part(),
        prop_oneof!["", "0{1,5}", "[0-9]{1,30}", "9{1,30}"],
        any::<usize>(),
        prop::bool::weighted(0.2),
        any::<bool>(),
        any::<bool>(),
        0usize..3,
        any::<bool>(),
        0usize..3,
    )
        .prop_map(
            |(int, frac, point, negative, upper_e, plus_sign, exponent_zeros, omit, extra)| {
                Spelling {
                    int,
                    frac,
                    point,
                    negative,
                    upper_e,
                    plus_sign,
                    exponent_zeros,
                    omit_zero_exponent: omit,
                    extra_frac_zeros: extra,
                }
            },
        )
}

/// A number with an enormous exponent (at least 10^7): the decoder must answer without
/// looping over it. The mantissa is below 10^41, so with a negative exponent the value is
/// below 1 (floor 0), and with a positive one it is either zero or far past `MAX_SECS`.
///
/// Without `float-dates` no such text is a NumericDate. With it the text goes through `f64`,
/// where a negative value this small underflows to `-0.0`, which is zero, so it reads as 0
/// rather than being refused as negative.
fn huge_exponent() -> impl Strategy<Value = (String, Option<u64>)> {
    (
        prop_oneof!["0", "[1-9][0-9]{0,20}"],
        prop_oneof!["", "\\.[0-9]{1,20}", "\\.0{1,20}"],
        any::<bool>(),
        any::<bool>(),
        "[1-9][0-9]{6,40}",
    )
        .prop_map(|(int, frac, negative, negative_exponent, exponent)| {
            let zero = int
                .bytes()
                .chain(frac.bytes())
                .all(|d| matches!(d, b'0' | b'.'));
            let sign = if negative { "-" } else { "" };
            let exponent_sign = if negative_exponent { "-" } else { "+" };
            let text = format!("{sign}{int}{frac}e{exponent_sign}{exponent}");
            let expected = match (zero, negative, negative_exponent) {
                _ if !cfg!(feature = "float-dates") => None,
                (true, _, _) => Some(0),
                (false, true, true) => Some(0), // exactly: negative; through f64: -0.0
                (false, true, false) => None,
                (false, false, true) => Some(0),
                (false, false, false) => None,
            };
            (text, expected)
        })
}

/// JSON white space, to surround numbers with.
fn ws() -> impl Strategy<Value = String> {
    "[ \t\n\r]{0,2}"
}

/// Checks one NumericDate text in one claim with both decoders.
fn check_numeric_date(
    text: &str,
    expected: Option<u64>,
    claim: ClaimName,
    before: &str,
    after: &str,
) -> Result<(), TestCaseError> {
    let payload = format!(
        r#"{{"sub":"s","{}":{before}{text}{after},"x":[1.5e3,-0.0]}}"#,
        claim.as_str()
    );
    let token = token_for(payload.as_bytes());
    let want = match expected {
        Some(secs) => Ok(UnixTime::from_secs(secs)),
        None => Err(DecodeError::InvalidNumericDate { claim }),
    };
    let claims = Claims::decode(&token);
    let got = claims.clone().map(|c| match claim {
        ClaimName::Exp => c.exp,
        ClaimName::Nbf => c.nbf,
        _ => c.iat,
    });
    prop_assert_eq!(got, want, "payload {}", payload);
    prop_assert_eq!(TimeClaims::decode(&token), claims.map(|c| c.times()));
    Ok(())
}

fn time_claim() -> impl Strategy<Value = ClaimName> {
    prop::sample::select(vec![ClaimName::Exp, ClaimName::Nbf, ClaimName::Iat])
}

/// How the `f64` floor of `spelling`'s value may differ from its exact floor: not at all, or by
/// rounding up to the next second (past `MAX_SECS`, invalid), only when the fraction lies
/// within the `f64` spacing there, (n + 1)·ε, of it: about 2.4e-7 for present-day dates.
#[cfg(feature = "float-dates")]
fn f64_rounding_explains(
    spelling: &Spelling,
    exact: Option<u64>,
    through_f64: Option<u64>,
) -> bool {
    if through_f64 == exact {
        return true;
    }
    let Some(floor) = exact else {
        return false;
    };
    let next = floor + 1;
    let rounded_up = through_f64 == Some(next) || (through_f64.is_none() && next > MAX_SECS);
    let fraction: f64 = format!("0.{}", spelling.frac).parse().unwrap();
    rounded_up && !spelling.negative && 1.0 - fraction <= next as f64 * f64::EPSILON
}

proptest! {
    #![proptest_config(config(4096))]

    /// With `float-dates`, a NumericDate written with a fraction, an exponent, padding zeros, a
    /// sign, in any spelling, decodes to its floor in `exp`, `nbf` and `iat` alike, and
    /// `TimeClaims` agrees: the exact floor computed by construction (see [`Spelling`]), or,
    /// where `f64` cannot hold the value, the floor of the nearest `f64`, which differs only
    /// as [`f64_rounding_explains`]. Negative non-zero values and values past
    /// 9999-12-31T23:59:59Z are `InvalidNumericDate`.
    #[cfg(feature = "float-dates")]
    #[test]
    fn numeric_dates_floor_exactly(
        spelling in spelling(),
        claim in time_claim(),
        before in ws(),
        after in ws(),
    ) {
        let (text, exact) = spelling.render();
        let through_f64 = date_of_text(&text);
        prop_assert!(
            f64_rounding_explains(&spelling, exact, through_f64),
            "{}: exact floor {:?}, through f64 {:?}", text, exact, through_f64
        );
        check_numeric_date(&text, through_f64, claim, &before, &after)?;
    }

    /// Without `float-dates` no float parsing is linked: of the same spellings only a plain
    /// integer (digits, no sign, fraction or exponent) is a NumericDate, decoded exactly; every
    /// other one, `-0` and `1.0` included, is `InvalidNumericDate`, in `exp`, `nbf` and `iat`
    /// alike, and `TimeClaims` agrees.
    #[cfg(not(feature = "float-dates"))]
    #[test]
    fn non_integer_numeric_dates_need_the_feature(
        spelling in spelling(),
        claim in time_claim(),
        before in ws(),
        after in ws(),
    ) {
        let (text, exact) = spelling.render();
        let want = if is_integer(&text) { exact } else { None };
        check_numeric_date(&text, want, claim, &before, &after)?;
    }

    /// Exponents of 7 to 41 digits are answered (floor 0, zero, or `InvalidNumericDate`) like
    /// any other value, without iterating over the exponent.
    #[test]
    fn huge_exponents_are_bounded((text, expected) in huge_exponent(), claim in time_claim()) {
        check_numeric_date(&text, expected, claim, "", "")?;
    }
}

/// Hand-checked spellings, independent of the generator above (a bug in `Spelling::render`
/// could otherwise hide one in the decoder): what each decodes to without `float-dates` (only
/// plain integers are NumericDates) and with it (through `f64`, floored; the comments mark
/// where that is not the exact floor).
#[test]
fn numeric_date_spellings_by_hand() {
    const NONE: Option<u64> = None;
    for (text, without_feature, with_feature) in [
        ("0", Some(0), Some(0)),
        ("1700000000", Some(1_700_000_000), Some(1_700_000_000)),
        ("253402300799", Some(MAX_SECS), Some(MAX_SECS)),
        ("253402300800", NONE, NONE),
        ("18446744073709551615", NONE, NONE),
        ("-0", NONE, Some(0)),
        ("1700000000.5", NONE, Some(1_700_000_000)),
        // Exact floor 1_700_000_000, but the fraction lies within the f64 spacing (2.4e-7) of
        // the next second, so the nearest f64 is 1700000001.0.
        ("1700000000.9999999999999999999", NONE, Some(1_700_000_001)),
        (
            "17000000009999999999999999999e-19",
            NONE,
            Some(1_700_000_001),
        ),
        ("0.17000000009999e10", NONE, Some(1_700_000_000)),
        (
            "0.00000000000000000000000000000017e40",
            NONE,
            Some(1_700_000_000),
        ),
        (
            "1.7000000000000000000000000000e+009",
            NONE,
            Some(1_700_000_000),
        ),
        // Exact floor MAX_SECS, but the f64 spacing near 2.5e11 is 3.1e-5: the nearest f64 is
        // 253402300800.0, past the bound.
        ("253402300799.99999", NONE, NONE),
        ("2534023007999e-1", NONE, Some(MAX_SECS)),
        ("253402300800e-0", NONE, NONE),
        ("2.534023008E11", NONE, NONE),
        ("-0.0000001", NONE, NONE),
        // Exactly negative, but f64 underflows it to -0.0, which is zero.
        ("-1e-999999999999999999999", NONE, Some(0)),
        ("1e-999999999999999999999", NONE, Some(0)),
        ("0e999999999999999999999", NONE, Some(0)),
        ("-0e999999999999999999999", NONE, Some(0)),
        ("0.0000000000000000000001e999999999999", NONE, NONE),
        ("18446744073709551616e-10", NONE, Some(1_844_674_407)),
    ] {
        let want = if cfg!(feature = "float-dates") {
            with_feature
        } else {
            without_feature
        };
        for claim in [ClaimName::Exp, ClaimName::Nbf, ClaimName::Iat] {
            check_numeric_date(text, want, claim, " ", "\n")
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The crate's rules on JSON serde_json reads
// ---------------------------------------------------------------------------------------------

/// Members for an object: mostly registered names, which may repeat, with values of every
/// type, dates in range and strings and audience lists on both sides of the capacities.
fn members() -> impl Strategy<Value = Vec<(String, Value)>> {
    let name = prop_oneof![
        3 => prop::sample::select(REGISTERED.to_vec()).prop_map(str::to_owned),
        1 => key(),
    ];
    let value = prop_oneof![
        2 => json_value(),
        2 => numeric_date().prop_map(Value::from),
        2 => claim_string(DEFAULT_STR_CAPACITY + 4).prop_map(Value::String),
        1 => prop::collection::vec(claim_string(12).prop_map(Value::String), 0..=6)
            .prop_map(Value::Array),
    ];
    prop::collection::vec((name, value), 0..6)
}

proptest! {
    #![proptest_config(config(1024))]

    /// Objects whose registered claims have values of every type, repeat, or do not fit, as
    /// `serde_json` writes them (each name written plainly or with random escapes): `Claims`,
    /// with default and with small capacities, and `TimeClaims` answer exactly what the
    /// crate's rules make of `serde_json`'s reading (rule (a), [`check_payload`]).
    #[test]
    fn registered_claims_follow_the_rules(
        members in members(),
        choices in prop::collection::vec(any::<u8>(), 1..8),
    ) {
        let written: Vec<String> = members
            .iter()
            .map(|(name, value)| {
                let (name, _) = escape_randomly(name, &choices, false);
                format!("{name}:{}", serde_json::to_string(value).unwrap())
            })
            .collect();
        let payload = format!("{{{}}}", written.join(","));
        let token = token_for(payload.as_bytes());
        let mut scratch = vec![0u8; payload.len()];
        let times = TimeClaims::decode_in(&token, &mut scratch);
        let default = Claims::<DEFAULT_STR_CAPACITY, DEFAULT_AUD_CAPACITY>::decode_in(
            &token,
            &mut scratch,
        );
        check_payload(payload.as_bytes(), &default, &times)?;
        let small = Claims::<8, 1>::decode_in(&token, &mut scratch);
        check_payload(payload.as_bytes(), &small, &times)?;
    }
}

// ---------------------------------------------------------------------------------------------
// (c) Every truncation and single-byte corruption of valid tokens
// ---------------------------------------------------------------------------------------------

/// The valid tokens the exhaustive tests damage.
fn sample_tokens() -> Vec<(&'static str, String)> {
    let simplejwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjBiNjZjYzQyZjk2YjRmNzM5ZWQ3MDY2ZDY0ZjY1ZjU1IiwidXNlcl9pZCI6IjEifQ.\
        c2lnbmF0dXJl";
    let rfc7519 = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
        eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
        dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    // Every escape form in the claims the crate reads except a surrogate pair, which
    // serde-json-core refuses there: the emoji is raw in `sub`, escaped in the unknown `extra`.
    let escaped = token_for(
        r#"{"iss":"https:\/\/auth.example.com\/","sub":"caf\u00E9 \"q\" \\ 😀 Zo\u00eb","aud":["api","\u0061pp"],"exp":1700000300,"nbf":1699999999,"iat":1700000000,"jti":"t\tn\n","ctx":{"roles":["a",{"exp":"nested","aud":[1,{"x":null}]}],"n":-1.5e-7,"ok":true,"no":false,"z":null,"deep":[[[[{}]]]]},"e\u0078tra":"\u00e9 \ud83d\ude00"}"#
            .as_bytes(),
    );
    let minted = encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({
            "iss": "issuer \"q\" \\ \u{1}", "sub": "東京", "aud": "solo", "exp": 253_402_300_799u64,
            "iat": 0, "jti": "/", "scope": ["read", "write"], "meta": {"k": [1.0e300, -0, {}]},
        }),
        &EncodingKey::from_secret(b"secret"),
    )
    .unwrap();
    vec![
        ("simplejwt", simplejwt.to_owned()),
        ("rfc7519", rfc7519.to_owned()),
        ("escaped", escaped),
        ("minted", minted),
    ]
}

/// Bytes written over each position: the JWS delimiters and alphabets, padding, and bytes
/// that are never base64url. The API takes `&str`, so all are ASCII.
const CORRUPTIONS: &[u8] = b".=-_A/+\0 *~\"\\\x7f0z";

/// Where a byte position lies in a token with exactly two dots.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Segment {
    Header,
    Dot,
    Payload,
    Signature,
}

fn segment_of(token: &str, at: usize) -> Segment {
    let first = token.find('.').unwrap();
    let second = token.rfind('.').unwrap();
    match at {
        _ if at == first || at == second => Segment::Dot,
        _ if at < first => Segment::Header,
        _ if at < second => Segment::Payload,
        _ => Segment::Signature,
    }
}

/// Whether the decoders stopped before reading the payload: the token's shape, its base64url,
/// or a payload larger than the scratch buffer.
fn before_the_payload(error: &DecodeError) -> bool {
    matches!(
        error,
        DecodeError::Malformed { .. }
            | DecodeError::Encrypted
            | DecodeError::EmptyPayload
            | DecodeError::Base64
            | DecodeError::TooLarge { .. }
    )
}

/// Checks `Claims` and `TimeClaims` on one token with the same scratch size: stopped before
/// the payload, both give the same error; past it, base64 0.22 decodes the payload too (it is
/// the more lenient about padding) and [`check_payload`] judges both answers.
fn check_token<const S: usize, const A: usize>(
    token: &str,
    claims: &Result<Claims<S, A>, DecodeError>,
    times: &Result<TimeClaims, DecodeError>,
) -> Result<(), TestCaseError> {
    if let Err(error) = claims {
        if before_the_payload(error) {
            prop_assert_eq!(times, &Err(*error));
            return Ok(());
        }
    }
    let payload = reference_payload(token);
    prop_assert!(
        payload.is_some(),
        "the decoder decoded a payload base64 0.22 rejects: {:?}",
        token
    );
    check_payload(&payload.unwrap_or_default(), claims, times)
}

/// Checks a damaged token: no panic (the calls return), and [`check_token`] for the default
/// buffers and for a 40-byte scratch with 4-byte strings and one audience.
fn check_damaged(token: &str) -> Result<Result<Claims, DecodeError>, TestCaseError> {
    let claims = Claims::decode(token);
    check_token(token, &claims, &TimeClaims::decode(token))?;
    let mut scratch = [0u8; 40];
    let small = Claims::<4, 1>::decode_in(token, &mut scratch);
    check_token(token, &small, &TimeClaims::decode_in(token, &mut scratch))?;
    Ok(claims)
}

/// Every prefix of each sample token is an error naming its segment count or, once the cut
/// falls inside the signature (never read), decodes to the original claims. Never panics.
#[test]
fn every_truncation() {
    for (name, token) in sample_tokens() {
        let original = Claims::decode(&token);
        assert!(original.is_ok(), "{name}: {original:?}");
        let first = token.find('.').unwrap();
        let second = token.rfind('.').unwrap();
        for cut in 0..=token.len() {
            let prefix = &token[..cut];
            let got = check_damaged(prefix).unwrap_or_else(|e| panic!("{name} cut {cut}: {e}"));
            let want = if cut <= first {
                Err(DecodeError::Malformed { segments: 1 })
            } else if cut <= second {
                Err(DecodeError::Malformed { segments: 2 })
            } else {
                original.clone()
            };
            assert_eq!(got, want, "{name} cut at {cut}: {prefix}");
        }
    }
}

/// Every single-byte replacement (by each of [`CORRUPTIONS`]) and every single-byte deletion
/// in each sample token: never a panic; an extra dot or a lost one is `Malformed`; damage to
/// the header or signature (neither is read) leaves the claims unchanged; damage to the
/// payload gives an error or claims the std reference agrees with.
#[test]
fn every_single_byte_corruption_and_deletion() {
    for (name, token) in sample_tokens() {
        let original = Claims::decode(&token);
        assert!(original.is_ok(), "{name}: {original:?}");
        for at in 0..token.len() {
            let segment = segment_of(&token, at);
            let mut variants: Vec<(String, String)> = CORRUPTIONS
                .iter()
                .filter(|&&b| b != token.as_bytes()[at])
                .map(|&b| {
                    let mut bytes = token.clone().into_bytes();
                    bytes[at] = b;
                    (
                        format!("byte {at} := {b:#04x}"),
                        String::from_utf8(bytes).unwrap(),
                    )
                })
                .collect();
            let mut deleted = token.clone();
            deleted.remove(at);
            variants.push((format!("byte {at} deleted"), deleted));
            for (what, damaged) in variants {
                let got = check_damaged(&damaged)
                    .unwrap_or_else(|e| panic!("{name} {what} ({segment:?}): {e}"));
                let dots = damaged.matches('.').count();
                if dots != 2 {
                    assert_eq!(
                        got,
                        Err(DecodeError::Malformed { segments: dots + 1 }),
                        "{name} {what}"
                    );
                } else if matches!(segment, Segment::Header | Segment::Signature) {
                    assert_eq!(got, original, "{name} {what} ({segment:?})");
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// (d) Random input
// ---------------------------------------------------------------------------------------------

/// Runs every decoder on `token` and checks the successes, as for damaged tokens.
fn check_random(token: &str) -> Result<(), TestCaseError> {
    let _decoded = check_damaged(token)?;
    let mut tiny = [0u8; 0];
    let empty_scratch = TimeClaims::decode_in(token, &mut tiny);
    prop_assert!(
        empty_scratch.is_err(),
        "a zero-byte scratch cannot hold any payload"
    );
    Ok(())
}

/// Fragments of JSON, valid and not, to assemble into or splice into unknown-claim values.
/// None of them is, or can combine into, a registered claim name.
const JSON_FRAGMENTS: &[&str] = &[
    "{",
    "}",
    "[",
    "]",
    ",",
    ":",
    " ",
    "\n",
    "\t",
    "\r",
    "\u{c}",
    "\u{b}",
    "\u{a0}",
    "\"k\"",
    "\"\"",
    "\"a\\\"b\"",
    "\"\\\\\"",
    "\"\\/\"",
    "\"\\u00e9\"",
    "\"\\ud83d\\ude00\"",
    "\"é\"",
    "\"\\b\\f\\n\\r\\t\"",
    "\"\\x\"",
    "\"\\u12\"",
    "\"\\ud800\"",
    "\"\\udc00\"",
    "\"\\ud800\\u0041\"",
    "\"\\ud800\\ue000\"",
    "\"\\udbff\\udfff\"",
    "\"\\udfff\"",
    "\"\\ud800\\udbff\"",
    "\"a",
    "\"\u{1}\"",
    "\"\u{7f}\"",
    "\"\\u0000\"",
    "\"\\U00e9\"",
    "\"\\u00G0\"",
    "'k'",
    "0",
    "-0",
    "1",
    "-1.5e-3",
    "1E+2",
    "2.5E-0",
    "01",
    "1.",
    ".5",
    "-",
    "1e",
    "1e+",
    "+1",
    "1e400",
    "123456789012345678901234567890",
    "0x1",
    "NaN",
    "Infinity",
    "1_0",
    "true",
    "false",
    "null",
    "tru",
    "nul",
    "fals",
    "True",
    "é",
    "\\",
    "/",
    "/*c*/",
];

/// A JSON text for the value of an unknown claim: a fifth are random runs of
/// [`JSON_FRAGMENTS`] (almost always invalid), three fifths valid values (compact or pretty)
/// with up to three edits, each inserting a fragment, deleting a character or replacing one
/// with a fragment, so that valid and invalid texts both occur often, and a fifth such values
/// nested 10 to 16 levels deeper, on both sides of the decoder's limit of 16 levels.
fn json_text() -> impl Strategy<Value = String> {
    let fragments =
        prop::collection::vec(prop::sample::select(JSON_FRAGMENTS), 0..40).prop_map(|f| f.concat());
    let edit = (
        any::<prop::sample::Index>(),
        prop::sample::select(JSON_FRAGMENTS),
        0u8..3,
    );
    let edited = (
        json_value(),
        any::<bool>(),
        prop::collection::vec(edit, 0..=3),
    )
        .prop_map(|(value, pretty, edits)| {
            let mut text = if pretty {
                serde_json::to_string_pretty(&value)
            } else {
                serde_json::to_string(&value)
            }
            .unwrap();
            for (at, fragment, kind) in edits {
                let mut at = at.index(text.len() + 1);
                while !text.is_char_boundary(at) {
                    at -= 1;
                }
                if kind != 0 && at < text.len() {
                    text.remove(at);
                }
                if kind != 1 {
                    text.insert_str(at, fragment);
                }
            }
            text
        })
        .boxed();
    let nested = (edited.clone(), 10u32..=16, any::<u16>()).prop_map(|(inner, levels, kinds)| {
        (0..levels).fold(inner, |text, level| {
            if kinds >> level & 1 == 0 {
                format!("[{text}]")
            } else {
                format!("{{\"k\":{text}}}")
            }
        })
    });
    prop_oneof![1 => fragments, 3 => edited, 1 => nested]
}

proptest! {
    #![proptest_config(config(2048))]

    /// Any string at all as a token: an error or a reference-consistent success, no panic.
    #[test]
    fn arbitrary_strings_never_panic(token in ".*") {
        check_random(&token)?;
    }

    /// Strings over the JWS alphabet and its delimiters, so segment counting, padding and
    /// base64url decoding see plausible input.
    #[test]
    fn jws_alphabet_strings_never_panic(token in "[A-Za-z0-9_.=-]{0,400}") {
        check_random(&token)?;
    }

    /// Three segments over the base64url alphabet (padding included), so most payloads
    /// decode and reach the UTF-8 and JSON checks.
    #[test]
    fn three_random_segments_never_panic(
        header in "[A-Za-z0-9_-]{0,20}",
        payload in "[A-Za-z0-9_-]{0,300}={0,3}",
        signature in "[A-Za-z0-9_=-]{0,20}",
    ) {
        check_random(&format!("{header}.{payload}.{signature}"))?;
    }

    /// Random bytes, base64url-encoded with and without padding, as the payload.
    #[test]
    fn random_payload_bytes_never_panic(
        bytes in prop::collection::vec(any::<u8>(), 0..700),
        padded in any::<bool>(),
    ) {
        let encoded = if padded { URL_SAFE.encode(&bytes) } else { URL_SAFE_NO_PAD.encode(&bytes) };
        check_random(&format!("{HEADER}.{encoded}.c2ln"))?;
    }

    /// JSON texts, valid and not, as the value of an unknown claim `x`, by the three rules
    /// ([`check_payload`]), with small and default capacities. What `serde_json` reads is
    /// skipped: the claims are empty (or what the crate's rules make of a registered name an
    /// edit brought to the top level), unless it nests deeper than 16 levels (`TooDeep`). What
    /// `serde_json` rejects is refused as `Json` (or a claim's error), or, since serde-json-core
    /// skips unknown values leniently, accepted.
    #[test]
    fn json_syntax_against_serde_json(value in json_text()) {
        let payload = format!("{{\"x\":{value}}}");
        let token = token_for(payload.as_bytes());
        let mut scratch = [0u8; 4096];
        let small = Claims::<8, 1>::decode_in(&token, &mut scratch);
        let default = Claims::<DEFAULT_STR_CAPACITY, DEFAULT_AUD_CAPACITY>::decode_in(
            &token,
            &mut scratch,
        );
        let times = TimeClaims::decode_in(&token, &mut scratch);
        check_payload(payload.as_bytes(), &small, &times)?;
        check_payload(payload.as_bytes(), &default, &times)?;
    }
}

/// A JSON string made of `\uXXXX` escapes (code units near the surrogate and control
/// boundaries, or any), in random hex case, with plain characters between some of them; and
/// whether one of the escapes names a UTF-16 surrogate (D800 to DFFF), paired or not.
fn unicode_escapes() -> impl Strategy<Value = (String, bool)> {
    let unit = prop_oneof![
        2 => prop::sample::select(vec![
            0x0000u16, 0x001f, 0x0020, 0x0022, 0x005c, 0x007f, 0x00e9, 0xd7ff, 0xd800, 0xd801,
            0xdbff, 0xdc00, 0xdc01, 0xdfff, 0xe000, 0xfffd, 0xfeff, 0xffff,
        ]),
        1 => 0xd800u16..0xe000,
        1 => any::<u16>(),
    ];
    prop::collection::vec((unit, any::<bool>(), prop::option::of("[a-z\\\\]")), 1..4).prop_map(
        |parts| {
            let mut text = String::from("\"");
            let mut surrogate = false;
            for (unit, upper, plain) in parts {
                surrogate |= (0xd800..0xe000).contains(&unit);
                if upper {
                    text.push_str(&format!("\\u{unit:04X}"));
                } else {
                    text.push_str(&format!("\\u{unit:04x}"));
                }
                match plain.as_deref() {
                    Some("\\") => text.push_str("\\\\"),
                    Some(plain) => text.push_str(plain),
                    None => {}
                }
            }
            text.push('"');
            (text, surrogate)
        },
    )
}

/// Number-like texts: near the JSON number grammar (optional sign, digits, fraction,
/// exponent, each possibly empty or malformed), valid numbers with one character inserted,
/// and any run of number characters.
fn number_like() -> impl Strategy<Value = String> {
    let valid = "-?(0|[1-9][0-9]{0,2})(\\.[0-9]{1,2})?([eE][-+]?[0-9]{1,2})?";
    let one_insertion =
        (valid, any::<prop::sample::Index>(), "[-+.eE0-9]").prop_map(|(mut number, at, extra)| {
            number.insert_str(at.index(number.len() + 1), &extra);
            number
        });
    prop_oneof![
        2 => "[-+]?[0-9]{0,3}(\\.[0-9]{0,3})?([eE][-+]?[0-9]{0,3})?",
        2 => one_insertion,
        1 => "[-+.eE0-9]{1,8}",
    ]
}

proptest! {
    #![proptest_config(config(4096))]

    /// `\uXXXX` escapes, surrogates paired or not, in `sub` and in a skipped claim.
    /// serde-json-core unescapes one UTF-16 code unit at a time, so in `sub` an escaped
    /// surrogate, even one of a pair `serde_json` reads, is `Json`; every other escape decodes
    /// to the text `serde_json` reads. A skipped claim is never unescaped: whatever its
    /// escapes, the payload is read. `TimeClaims`, which skips `sub` too, reads both.
    #[test]
    fn unicode_escapes_match_serde_json_except_surrogates((text, surrogate) in unicode_escapes()) {
        let in_sub = format!(r#"{{"sub":{text}}}"#);
        let want = if surrogate {
            Err(DecodeError::Json)
        } else {
            let theirs: Value = serde_json::from_str(&in_sub)
                .map_err(|e| TestCaseError::fail(format!("{in_sub}: serde_json says {e}")))?;
            Ok(Plain { sub: theirs["sub"].as_str().map(str::to_owned), ..Plain::default() })
        };
        let in_skipped = format!(r#"{{"x":[{text}],"sub":"s"}}"#);
        let read = Ok(Plain { sub: Some("s".to_owned()), ..Plain::default() });
        for (payload, want) in [(in_sub, want), (in_skipped, read)] {
            let token = token_for(payload.as_bytes());
            let ours = Claims::decode(&token);
            let times = TimeClaims::decode(&token);
            prop_assert_eq!(ours.as_ref().map(Plain::of).map_err(|e| *e), want, "payload {}", payload);
            prop_assert_eq!(&times, &Ok(TimeClaims::default()), "payload {}", payload);
            check_payload(payload.as_bytes(), &ours, &times)?;
        }
    }

    /// Number-like texts as a skipped value (alone and in an array) and as `exp`.
    /// serde-json-core does not check a skipped number: any non-empty text up to the next `,`
    /// `}` `]` is skipped, an empty one is `Json` (`[,0]`, a leading comma, it accepts). As
    /// `exp` the text is read by [`date_of_text`]: without `float-dates` only digits, anything
    /// else is `InvalidNumericDate`; with it Rust's `f64` grammar, wider than JSON's. Wherever
    /// `serde_json` reads the payload, the three rules hold ([`check_payload`]).
    #[test]
    fn number_grammar_against_serde_json(text in number_like()) {
        let skipped = if text.is_empty() { Err(DecodeError::Json) } else { Ok(Plain::default()) };
        let exp = date_of_text(&text)
            .map(|secs| Plain { exp: Some(secs), ..Plain::default() })
            .ok_or(DecodeError::InvalidNumericDate { claim: ClaimName::Exp });
        for (payload, want) in [
            (format!(r#"{{"x":{text}}}"#), skipped),
            (format!(r#"{{"x":[{text},0]}}"#), Ok(Plain::default())),
            (format!(r#"{{"exp":{text} }}"#), exp),
        ] {
            let token = token_for(payload.as_bytes());
            let ours = Claims::decode(&token);
            prop_assert_eq!(ours.as_ref().map(Plain::of).map_err(|e| *e), want, "payload {}", payload);
            check_payload(payload.as_bytes(), &ours, &TimeClaims::decode(&token))?;
        }
    }
}
