//! Property and exhaustive robustness tests for the claims decoder.
//!
//! The decoder is checked against independent references: tokens minted by `jsonwebtoken` and
//! read back with base64 0.22 and `serde_json`; NumericDates whose floor is known because the
//! test builds the number text from it; and `serde_json`'s verdict on JSON syntax. Every other
//! test feeds damaged or random input and requires an `Err` or a consistent `Ok`, never a panic.
//!
//! Failure persistence is off so that a failing run writes no `proptest-regressions/` file into
//! the tree; proptest prints the minimal failing input instead.

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use jwt_refresh::claims::{DEFAULT_AUD_CAPACITY, DEFAULT_PAYLOAD_CAPACITY, DEFAULT_STR_CAPACITY};
use jwt_refresh::{ClaimName, Claims, DecodeError, TimeClaims, UnixTime};
use proptest::prelude::*;
use proptest::test_runner::Config as ProptestConfig;
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

    /// What a std reader finds in a JSON payload: `None` when it is not an object or when a
    /// registered claim is anything but what the default-capacity decoder accepts (an integer
    /// NumericDate up to `MAX_SECS`, a string of at most 96 bytes, at most 4 audiences).
    fn from_json(value: &Value) -> Option<Plain> {
        let object = value.as_object()?;
        let time = |name: &str| match object.get(name) {
            None => Some(None),
            Some(v) => v.as_u64().filter(|&s| s <= MAX_SECS).map(Some),
        };
        let text = |v: &Value| {
            v.as_str()
                .filter(|s| s.len() <= DEFAULT_STR_CAPACITY)
                .map(str::to_owned)
        };
        let string = |name: &str| match object.get(name) {
            None => Some(None),
            Some(v) => text(v).map(Some),
        };
        let aud = match object.get("aud") {
            None => Vec::new(),
            Some(Value::Array(items)) if items.len() <= DEFAULT_AUD_CAPACITY => {
                items.iter().map(text).collect::<Option<Vec<_>>>()?
            }
            Some(one) => vec![text(one)?],
        };
        Some(Plain {
            exp: time("exp")?,
            nbf: time("nbf")?,
            iat: time("iat")?,
            iss: string("iss")?,
            sub: string("sub")?,
            jti: string("jti")?,
            aud,
        })
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

/// Checks a successful decode against the std reference, for inputs that may be anything.
///
/// The decoder is stricter than the reference (it rejects duplicate claims, which `serde_json`
/// resolves last-wins, and padding the reference strips), so this only checks the direction
/// "the decoder accepted it, therefore the reference agrees": the payload is base64url, it is a
/// JSON object, and when the reference can read every registered claim, the values match.
fn check_ok_against_reference(token: &str, claims: &Claims) -> Result<(), TestCaseError> {
    let payload = reference_payload(token);
    prop_assert!(
        payload.is_some(),
        "decoder accepted a payload base64 0.22 rejects"
    );
    let value = serde_json::from_slice::<Value>(&payload.unwrap_or_default());
    if matches!(&value, Err(e) if serde_number_overflow(e)) {
        return Ok(()); // the reference cannot read numbers past f64::MAX, so cannot judge
    }
    prop_assert!(
        value.is_ok(),
        "decoder accepted a payload serde_json rejects: {value:?}"
    );
    let value = value.unwrap_or_default();
    prop_assert!(value.is_object(), "decoder accepted a non-object: {value}");
    if let Some(want) = Plain::from_json(&value) {
        prop_assert_eq!(Plain::of(claims), want, "payload {}", value);
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
        let value: Value = serde_json::from_slice(&payload).unwrap();
        let want = Plain::from_json(&value).unwrap();
        prop_assert_eq!(&want, &minted.plain(), "the reference misread the minted claims");

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
/// `\uXXXX` escape (a surrogate pair above U+FFFF, hex digits in random case).
fn escape_randomly(text: &str, choices: &[u8]) -> String {
    let mut out = String::from("\"");
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
        match (choice % 3, short) {
            (0, _) if !must_escape => out.push(ch),
            (1, Some(short)) => out.push_str(short),
            _ => {
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
    out
}

proptest! {
    #![proptest_config(config(512))]

    /// Strings written with every JSON escape form (`\/`, `\uXXXX` in both cases, surrogate
    /// pairs, short escapes, raw UTF-8), which `serde_json` never emits, decode to the original
    /// text in `iss`, `sub`, `jti`, `aud` and in an escaped key naming a registered claim.
    #[test]
    fn every_escape_form_decodes(
        texts in prop::collection::vec(claim_string(DEFAULT_STR_CAPACITY), 4),
        choices in prop::collection::vec(any::<u8>(), 1..32),
        exp in numeric_date(),
        escape_key in any::<bool>(),
    ) {
        let escaped: Vec<String> = texts.iter().map(|t| escape_randomly(t, &choices)).collect();
        let exp_key = if escape_key { escape_randomly("exp", &choices) } else { "\"exp\"".into() };
        let payload = format!(
            r#"{{"iss":{},"sub":{},"jti":{},"aud":[{}],{exp_key}:{exp}}}"#,
            escaped[0], escaped[1], escaped[2], escaped[3]
        );
        let token = token_for(payload.as_bytes());
        let mut scratch = vec![0u8; payload.len()];
        let got = Claims::<DEFAULT_STR_CAPACITY, 1>::decode_in(&token, &mut scratch);
        let want = Plain {
            exp: Some(exp),
            iss: Some(texts[0].clone()),
            sub: Some(texts[1].clone()),
            jti: Some(texts[2].clone()),
            aud: vec![texts[3].clone()],
            ..Plain::default()
        };
        prop_assert_eq!(got.as_ref().map(Plain::of), Ok(want), "payload {}", payload);
        // The reference agrees on the text (serde_json reads every escape form too).
        let value: Value = serde_json::from_str(&payload).unwrap();
        prop_assert_eq!(value["sub"].as_str(), Some(texts[1].as_str()));
    }
}

// ---------------------------------------------------------------------------------------------
// (b) Non-integer NumericDates
// ---------------------------------------------------------------------------------------------

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
                (true, _, _) => Some(0),
                (false, true, _) => None,
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

proptest! {
    #![proptest_config(config(4096))]

    /// A NumericDate written with a fraction, an exponent, padding zeros, a sign, in any
    /// spelling, decodes to its exact floor (computed by construction, see [`Spelling`]);
    /// negative non-zero values and values past 9999-12-31T23:59:59Z are `InvalidNumericDate`,
    /// in `exp`, `nbf` and `iat` alike, and `TimeClaims` agrees.
    #[test]
    fn numeric_dates_floor_exactly(
        spelling in spelling(),
        claim in time_claim(),
        before in ws(),
        after in ws(),
    ) {
        let (text, expected) = spelling.render();
        check_numeric_date(&text, expected, claim, &before, &after)?;
    }

    /// Exponents of 7 to 41 digits are answered (floor 0, zero, or `InvalidNumericDate`) like
    /// any other value, without iterating over the exponent.
    #[test]
    fn huge_exponents_are_bounded((text, expected) in huge_exponent(), claim in time_claim()) {
        check_numeric_date(&text, expected, claim, "", "")?;
    }
}

/// Hand-checked spellings, independent of the generator above (a bug in `Spelling::render`
/// could otherwise hide one in the decoder).
#[test]
fn numeric_date_spellings_by_hand() {
    for (text, want) in [
        ("1700000000.9999999999999999999", Some(1_700_000_000)),
        ("17000000009999999999999999999e-19", Some(1_700_000_000)),
        ("0.17000000009999e10", Some(1_700_000_000)),
        ("0.00000000000000000000000000000017e40", Some(1_700_000_000)),
        ("1.7000000000000000000000000000e+009", Some(1_700_000_000)),
        ("253402300799.99999", Some(MAX_SECS)),
        ("2534023007999e-1", Some(MAX_SECS)),
        ("253402300800e-0", None),
        ("2.534023008E11", None),
        ("-0.0000001", None),
        ("-1e-999999999999999999999", None),
        ("1e-999999999999999999999", Some(0)),
        ("0e999999999999999999999", Some(0)),
        ("-0e999999999999999999999", Some(0)),
        ("0.0000000000000000000001e999999999999", None),
        ("18446744073709551615", None),
        ("18446744073709551616e-10", Some(1_844_674_407)),
    ] {
        for claim in [ClaimName::Exp, ClaimName::Nbf, ClaimName::Iat] {
            check_numeric_date(text, want, claim, " ", "\n")
                .unwrap_or_else(|e| panic!("{text}: {e}"));
        }
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
    let escaped = token_for(
        br#"{"iss":"https:\/\/auth.example.com\/","sub":"caf\u00E9 \"q\" \\ \ud83d\ude00 Zo\u00eb","aud":["api","\u0061pp"],"exp":1700000300,"nbf":1699999999,"iat":1700000000,"jti":"t\tn\n","ctx":{"roles":["a",{"exp":"nested","aud":[1,{"x":null}]}],"n":-1.5e-7,"ok":true,"no":false,"z":null,"deep":[[[[{}]]]]},"e\u0078tra":"\u00e9"}"#,
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

/// Checks a damaged token: no panic (the call returns), both decoders agree when the full
/// one succeeds, and a success agrees with the std reference.
fn check_damaged(token: &str) -> Result<Result<Claims, DecodeError>, TestCaseError> {
    let claims = Claims::decode(token);
    let times = TimeClaims::decode(token);
    let mut scratch = [0u8; 40];
    let small = Claims::<4, 1>::decode_in(token, &mut scratch);
    if let Ok(claims) = &claims {
        prop_assert_eq!(times, Ok(claims.times()));
        check_ok_against_reference(token, claims)?;
    }
    if let Ok(small) = &small {
        prop_assert_eq!(TimeClaims::decode(token), Ok(small.times()));
    }
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

/// A JSON text for the value of an unknown claim: a quarter are random runs of
/// [`JSON_FRAGMENTS`] (almost always invalid), the rest valid values (compact or pretty)
/// with up to three edits, each inserting a fragment, deleting a character or replacing one
/// with a fragment, so that valid and invalid texts both occur often.
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
        });
    prop_oneof![1 => fragments, 3 => edited]
}

/// `serde_json` fails on numbers past `f64::MAX`, which the decoder skips like any number.
fn serde_number_overflow(error: &serde_json::Error) -> bool {
    error.to_string().contains("number out of range")
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

    /// JSON texts, valid and not, as the value of an unknown claim: the decoder never accepts
    /// what `serde_json` rejects, and accepts what it accepts (when `x` is the only top-level
    /// member; an edit that exposes a nested registered name may fail on claim rules instead).
    #[test]
    fn json_syntax_matches_serde_json(value in json_text()) {
        let payload = format!("{{\"x\":{value}}}");
        let token = token_for(payload.as_bytes());
        let mut scratch = [0u8; 4096];
        let ours = Claims::<8, 1>::decode_in(&token, &mut scratch);
        let times = TimeClaims::decode_in(&token, &mut scratch);
        match &serde_json::from_str::<Value>(&payload) {
            Err(e) if serde_number_overflow(e) => {}
            Ok(theirs) if theirs.as_object().is_some_and(|o| o.keys().all(|k| k == "x")) => {
                prop_assert_eq!(&ours, &Ok(Claims::default()), "payload {:?}", payload);
            }
            Ok(_) => prop_assert!(
                !matches!(ours, Err(DecodeError::Json | DecodeError::TooDeep)),
                "payload {:?}: serde_json accepts it, decoder says {:?}", payload, ours
            ),
            Err(e) => {
                prop_assert!(
                    ours.is_err(),
                    "payload {:?}: serde_json says {}, decoder accepts it", payload, e
                );
                prop_assert!(times.is_err(), "payload {:?}: serde_json says {}", payload, e);
            }
        }
        if let Ok(ours) = &ours {
            prop_assert_eq!(times, Ok(ours.times()));
        }
    }
}

/// A JSON string made of `\uXXXX` escapes (code units near the surrogate and control
/// boundaries, or any), in random hex case, with plain characters between some of them.
fn unicode_escapes() -> impl Strategy<Value = String> {
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
            for (unit, upper, plain) in parts {
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
            text
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

    /// `\uXXXX` escapes, surrogate pairs valid and not, in `sub` and in a skipped claim:
    /// the decoder accepts exactly what `serde_json` accepts, and decodes it to the same text.
    #[test]
    fn unicode_escapes_match_serde_json(text in unicode_escapes()) {
        for payload in [format!(r#"{{"sub":{text}}}"#), format!(r#"{{"x":[{text}],"sub":"s"}}"#)] {
            let token = token_for(payload.as_bytes());
            let ours = Claims::decode(&token);
            match serde_json::from_str::<Value>(&payload) {
                Ok(theirs) => prop_assert_eq!(
                    ours.map(|c| Plain::of(&c).sub),
                    Ok(theirs["sub"].as_str().map(str::to_owned)),
                    "payload {}", payload
                ),
                Err(e) => prop_assert!(
                    matches!(ours, Err(DecodeError::Json)),
                    "payload {}: serde_json says {}, decoder says {:?}", payload, e, ours
                ),
            }
        }
    }

    /// Number-like texts as a skipped value (alone and in an array) and as `exp`: the decoder
    /// accepts exactly the numbers `serde_json` accepts; a valid `exp` decodes or is
    /// `InvalidNumericDate`, an invalid one is an error (JSON, or the date when its valid
    /// prefix already is an invalid date).
    #[test]
    fn number_grammar_matches_serde_json(text in number_like()) {
        for (payload, is_exp) in [
            (format!(r#"{{"x":{text}}}"#), false),
            (format!(r#"{{"x":[{text},0]}}"#), false),
            (format!(r#"{{"exp":{text} }}"#), true),
        ] {
            let token = token_for(payload.as_bytes());
            let ours = Claims::decode(&token);
            match serde_json::from_str::<Value>(&payload) {
                Err(e) if serde_number_overflow(&e) => {}
                Ok(_) if is_exp => prop_assert!(
                    matches!(ours, Ok(_) | Err(DecodeError::InvalidNumericDate { .. })),
                    "payload {}: decoder says {:?}", payload, ours
                ),
                Ok(_) => prop_assert_eq!(ours, Ok(Claims::default()), "payload {}", payload),
                // The decoder stops at the first error: a number that is a valid but negative
                // NumericDate followed by junk (`-1+`) is reported as the date, not the junk.
                Err(e) => prop_assert!(
                    matches!(ours, Err(DecodeError::Json))
                        || (is_exp && ours == Err(DecodeError::InvalidNumericDate { claim: ClaimName::Exp })),
                    "payload {}: serde_json says {}, decoder says {:?}", payload, e, ours
                ),
            }
        }
    }
}
