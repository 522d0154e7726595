//! `decode`: the claims decoder on arbitrary bytes, and on structured tokens built from
//! arbitrary claims.
//!
//! Every input is used three times:
//! 1. **Raw**: the bytes (when UTF-8) are a token.
//! 2. **Payload**: the bytes are the payload itself, base64url-encoded into a token, so that the
//!    fuzzer writes the JSON `serde-json-core` reads without having to get through base64.
//!
//!    For both, `Claims::decode` and `TimeClaims::decode` must not panic and must agree with
//!    each other, with smaller capacities and scratch buffers, and with an independent model:
//!    the token's shape, size and base64url give exactly the documented error; a payload
//!    nested deeper than 16 levels (the top-level object included) is `TooDeep`, one not
//!    starting with `{` is `NotAnObject`; a payload `serde_json` reads gives exactly the claims
//!    (or the exact error) that the model computes from `serde_json`'s reading (whole-second
//!    dates only without the `float-dates` feature, surrogate-pair escapes refused in the
//!    strings the crate decodes); and whatever the crate accepts beyond that is explained by the
//!    documented leniency: the claims it reads are JSON to `serde_json` with the values the
//!    crate took, and only the members it skips may be lenient (`jwt_refresh_fuzz::read_object`).
//! 3. **Structured**: the same bytes drive `arbitrary` to build a payload from claims (numbers
//!    in every JSON form, escaped keys and strings, audiences, unknown members of any shape,
//!    duplicates, wrong types), encoded as a JWS. The expected result, success or the exact
//!    error, is computed independently and must be what both decoders return.
//!
//! Behaviour beyond the documented leniency that this target found is listed in
//! `jwt_refresh_fuzz::KNOWN_DEVIATIONS`: tolerated unless `JWT_REFRESH_FUZZ_STRICT` names it.
//!
//! Seeds (`fuzz/seeds/decode/`) are real token shapes: SimpleJWT access and refresh tokens,
//! OAuth 2.0 providers' access tokens, the RFC 7519 example, JWE, `alg: none`.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jwt_refresh::claims::{DEFAULT_AUD_CAPACITY, DEFAULT_PAYLOAD_CAPACITY, DEFAULT_STR_CAPACITY};
use jwt_refresh::{ClaimName, Claims, DecodeError, TimeClaims, UnixTime};
use jwt_refresh_fuzz::{
    array_items, b64url, b64url_strict, is_ws, json_members, json_str, jws, nesting_depth,
    read_object, strict, string_units, Escape, JsonVerdict, Reading, MAX_NESTING,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        raw(token);
    }
    payload(data);
    if let Ok(spec) = Unstructured::new(data).arbitrary::<Spec>() {
        structured(&spec);
    }
});

/// The bytes as the payload of an HS256-shaped token.
fn payload(data: &[u8]) {
    let token = format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2lnbmF0dXJl",
        b64url(data)
    );
    raw(&token);
}

// ---------------------------------------------------------------------------------------------
// Raw tokens
// ---------------------------------------------------------------------------------------------

fn raw(token: &str) {
    let full = Claims::decode(token);
    let times = TimeClaims::decode(token);
    if let Err(e) = &full {
        // Display and kind never panic (they run in log lines).
        let _ = (e.to_string(), e.kind());
    }
    if let Err(e) = &times {
        let _ = (e.to_string(), e.kind());
    }

    // The times-only decoder checks less, never more.
    match (&full, &times) {
        (Ok(c), Ok(t)) => assert_eq!(c.times(), *t, "the two decoders disagree on the times"),
        (Ok(_), Err(e)) => panic!("Claims::decode succeeded, TimeClaims::decode failed: {e:?}"),
        (Err(_), _) => {}
    }

    // Smaller capacities: the same claims when they fit, else one of the capacity errors.
    let small: Result<Claims<8, 1>, DecodeError> =
        Claims::decode_in(token, &mut [0u8; DEFAULT_PAYLOAD_CAPACITY]);
    match (&full, &small) {
        (Ok(c), Ok(s)) => {
            assert_eq!((c.exp, c.nbf, c.iat), (s.exp, s.nbf, s.iat));
            assert_eq!(c.iss.as_deref(), s.iss.as_deref());
            assert_eq!(c.sub.as_deref(), s.sub.as_deref());
            assert_eq!(c.jti.as_deref(), s.jti.as_deref());
            assert!(c.audiences().eq(s.audiences()));
        }
        (Ok(c), Err(e)) => {
            let fits = |s: Option<&str>| s.is_none_or(|s| s.len() <= 8);
            let all_fit = fits(c.iss.as_deref())
                && fits(c.sub.as_deref())
                && fits(c.jti.as_deref())
                && c.aud.len() <= 1
                && c.aud.iter().all(|a| a.len() <= 8);
            assert!(
                !all_fit,
                "every claim fits Claims<8, 1>, yet it failed with {e:?}"
            );
            assert!(
                matches!(
                    e,
                    DecodeError::ClaimTooLong { capacity: 8, .. }
                        | DecodeError::TooManyAudiences { capacity: 1 }
                ),
                "Claims<8, 1> failed with {e:?} where the default capacities succeed"
            );
        }
        (Err(_), Ok(_)) => panic!("Claims<8, 1> succeeded where the default capacities fail"),
        (Err(_), Err(_)) => {}
    }

    // A smaller scratch buffer: the same result when the payload fits, else `TooLarge`.
    let scratch_len = token.len() % 160;
    let mut scratch = [0u8; 160];
    let cut = Claims::<DEFAULT_STR_CAPACITY, DEFAULT_AUD_CAPACITY>::decode_in(
        token,
        &mut scratch[..scratch_len],
    );
    if cut != full {
        match cut {
            Err(DecodeError::TooLarge { needed, capacity }) => {
                assert_eq!(capacity, scratch_len);
                assert!(needed > capacity, "TooLarge with {needed} <= {capacity}");
                assert!(
                    !matches!(
                        full,
                        Err(DecodeError::Malformed { .. }
                            | DecodeError::Encrypted
                            | DecodeError::EmptyPayload)
                    ),
                    "the size was checked before the shape: {full:?}"
                );
            }
            other => panic!("a {scratch_len}-byte scratch gives {other:?}, 1024 bytes {full:?}"),
        }
    }

    model(token, &full, &times);
}

/// What `Claims` (or `TimeClaims`) read, owned, for comparisons.
fn expected_of(c: &Claims) -> Expected {
    Expected {
        exp: c.exp.map(UnixTime::as_secs),
        nbf: c.nbf.map(UnixTime::as_secs),
        iat: c.iat.map(UnixTime::as_secs),
        iss: c.iss.as_deref().map(str::to_owned),
        sub: c.sub.as_deref().map(str::to_owned),
        jti: c.jti.as_deref().map(str::to_owned),
        aud: c.audiences().map(str::to_owned).collect(),
    }
}

fn expected_times(t: &TimeClaims) -> Expected {
    Expected {
        exp: t.exp.map(UnixTime::as_secs),
        nbf: t.nbf.map(UnixTime::as_secs),
        iat: t.iat.map(UnixTime::as_secs),
        ..Expected::default()
    }
}

/// The token's shape, size and base64url, by RFC 7515 and RFC 4648: the payload's bytes or
/// the exact error (these steps come before any JSON is read).
fn before_json(token: &str) -> Result<Vec<u8>, DecodeError> {
    let dots: Vec<usize> = token.match_indices('.').map(|(at, _)| at).collect();
    let payload = match dots[..] {
        [first, second] => &token[first + 1..second],
        [_, _, _, _] => return Err(DecodeError::Encrypted),
        _ => {
            return Err(DecodeError::Malformed {
                segments: dots.len() + 1,
            })
        }
    };
    let unpadded = payload.trim_end_matches('=').len();
    if unpadded == 0 {
        return Err(DecodeError::EmptyPayload);
    }
    // What the characters before the padding decode to, also when they are not base64url.
    let needed = unpadded / 4 * 3 + (unpadded % 4).saturating_sub(1);
    if needed > DEFAULT_PAYLOAD_CAPACITY {
        return Err(DecodeError::TooLarge {
            needed,
            capacity: DEFAULT_PAYLOAD_CAPACITY,
        });
    }
    b64url_strict(payload).ok_or(DecodeError::Base64)
}

/// The registered claim a decoded member name is.
fn claim_named(name: &str) -> Option<ClaimName> {
    REGISTERED_CLAIMS.into_iter().find(|c| c.as_str() == name)
}

const REGISTERED_CLAIMS: [ClaimName; 7] = [
    ClaimName::Exp,
    ClaimName::Nbf,
    ClaimName::Iat,
    ClaimName::Iss,
    ClaimName::Sub,
    ClaimName::Jti,
    ClaimName::Aud,
];

fn is_time(claim: ClaimName) -> bool {
    matches!(claim, ClaimName::Exp | ClaimName::Nbf | ClaimName::Iat)
}

/// A NumericDate as the crate reads it from serde_json's value: a JSON integer (written
/// without fraction or exponent, not `-0`) up to `UnixTime::MAX`. With `float-dates`, any JSON
/// number read as `f64` and floored (so a fraction within one `f64` step of the next integer
/// rounds up to it), refused when negative, 2^64 or more.
fn numeric_date(v: &serde_json::Value) -> Option<u64> {
    #[cfg(not(feature = "float-dates"))]
    let secs = v.as_u64();
    #[cfg(feature = "float-dates")]
    let secs = v
        .as_f64()
        .filter(|f| (0.0..18_446_744_073_709_551_616.0).contains(f))
        .map(|f| f as u64);
    secs.and_then(UnixTime::from_secs).map(UnixTime::as_secs)
}

/// A string claim decoded into a buffer of `capacity` bytes: a UTF-16 surrogate pair escape is
/// refused (`Json`) when it is reached, a character that does not fit is `ClaimTooLong`.
fn claim_string(raw: &[u8], claim: ClaimName, capacity: usize) -> Result<String, DecodeError> {
    let units = string_units(raw).expect("a string value serde_json (or the library) read");
    let mut out = String::new();
    for u in units {
        if u.surrogate_escape {
            return Err(DecodeError::Json);
        }
        if out.len() + u.c.len_utf8() > capacity {
            return Err(DecodeError::ClaimTooLong { claim, capacity });
        }
        out.push(u.c);
    }
    Ok(out)
}

/// The claims a reading gives, or the first error in member order: what `Claims::decode`
/// (`all`) or `TimeClaims::decode` (only the times; other registered claims are only checked
/// for duplicates) must return.
fn claims_model(reading: &Reading<'_>, all: bool) -> Result<Expected, DecodeError> {
    let mut x = Expected::default();
    let mut seen: Vec<ClaimName> = Vec::new();
    for m in &reading.members {
        let Some(claim) = m.key.as_deref().and_then(claim_named) else {
            continue;
        };
        if seen.contains(&claim) {
            return Err(DecodeError::DuplicateClaim { claim });
        }
        seen.push(claim);
        if !all && !is_time(claim) {
            continue;
        }
        let value = m.value.as_ref().expect("a member read strictly");
        match claim {
            ClaimName::Exp | ClaimName::Nbf | ClaimName::Iat => {
                let secs = numeric_date(value).ok_or(DecodeError::InvalidNumericDate { claim })?;
                match claim {
                    ClaimName::Exp => x.exp = Some(secs),
                    ClaimName::Nbf => x.nbf = Some(secs),
                    _ => x.iat = Some(secs),
                }
            }
            ClaimName::Iss | ClaimName::Sub | ClaimName::Jti => {
                if !value.is_string() {
                    return Err(DecodeError::InvalidClaimType { claim });
                }
                let s = claim_string(m.raw, claim, DEFAULT_STR_CAPACITY)?;
                match claim {
                    ClaimName::Iss => x.iss = Some(s),
                    ClaimName::Sub => x.sub = Some(s),
                    _ => x.jti = Some(s),
                }
            }
            _ => {
                let items: Vec<&[u8]> = match value {
                    serde_json::Value::String(_) => vec![m.raw],
                    serde_json::Value::Array(_) => array_items(m.raw).expect("an array read"),
                    _ => return Err(DecodeError::InvalidClaimType { claim }),
                };
                x.aud.clear();
                for item in items {
                    // The element's type is checked as it is read, then the count, then its text.
                    if !item.starts_with(b"\"") {
                        return Err(DecodeError::InvalidClaimType { claim });
                    }
                    if x.aud.len() >= DEFAULT_AUD_CAPACITY {
                        return Err(DecodeError::TooManyAudiences {
                            capacity: DEFAULT_AUD_CAPACITY,
                        });
                    }
                    x.aud.push(claim_string(item, claim, DEFAULT_STR_CAPACITY)?);
                }
            }
        }
    }
    Ok(x)
}

/// Reads the payload as the crate must: the members `strict` names by serde_json, the rest as
/// documented. With `tolerate`, known deviations (`KNOWN_DEVIATIONS`) may explain more, unless
/// the run is strict about them.
fn justify<'a>(payload: &'a [u8], all: bool, what: &str) -> Reading<'a> {
    let strict_member = |name: &str| claim_named(name).is_some_and(|c| all || is_time(c));
    match read_object(payload, &strict_member, false) {
        Ok(reading) => reading,
        Err(why) => {
            let reading = read_object(payload, &strict_member, true).unwrap_or_else(|e| {
                panic!(
                    "{what} accepted a payload that is not JSON where the crate reads it: {why} \
                     (also as the library: {e}); payload {:?}",
                    String::from_utf8_lossy(payload)
                )
            });
            for deviation in &reading.deviations {
                assert!(
                    !strict(deviation),
                    "known deviation `{deviation}`: {what} accepted {:?} ({why})",
                    String::from_utf8_lossy(payload)
                );
            }
            reading
        }
    }
}

/// The independent model of both decoders (see the module docs).
fn model(token: &str, full: &Result<Claims, DecodeError>, times: &Result<TimeClaims, DecodeError>) {
    let full = full.as_ref().map(expected_of).map_err(|e| *e);
    let times = times.as_ref().map(expected_times).map_err(|e| *e);
    if std::env::var_os("JWT_REFRESH_FUZZ_TRACE").is_some() {
        let payload = before_json(token).map(|p| String::from_utf8_lossy(&p).into_owned());
        eprintln!("{token}\n  payload {payload:?}\n  Claims {full:?}\n  TimeClaims {times:?}");
    }
    let payload = match before_json(token) {
        Ok(payload) => payload,
        Err(e) => {
            assert_eq!(full, Err(e), "Claims::decode of {token}");
            assert_eq!(times, Err(e), "TimeClaims::decode of {token}");
            return;
        }
    };
    let text = String::from_utf8_lossy(&payload);
    // UTF-8 is checked, either for the whole payload (`Utf8`) or by the library in strings
    // (reported as `Utf8` too); bytes elsewhere are a syntax error or skipped leniently.
    let utf8 = std::str::from_utf8(&payload).is_ok();
    for got in [&full, &times] {
        if *got == Err(DecodeError::Utf8) {
            assert!(!utf8, "Utf8 for a UTF-8 payload {text:?}");
        }
    }
    let expect = |want: DecodeError, why: &str| {
        for got in [&full, &times] {
            assert!(
                *got == Err(want) || (!utf8 && *got == Err(DecodeError::Utf8)),
                "{why}: {got:?} instead of {want:?} for {text:?}"
            );
        }
    };
    let depth = nesting_depth(&payload);
    if depth > MAX_NESTING {
        return expect(DecodeError::TooDeep, "nested {depth} levels");
    }
    match payload.iter().find(|&&b| !is_ws(b)) {
        None => return expect(DecodeError::Json, "white space only"),
        Some(b'{') => {}
        Some(_) => return expect(DecodeError::NotAnObject, "not an object"),
    }
    if utf8 {
        if let JsonVerdict::Object(_) = json_members(&payload) {
            // JSON within the limits: exactly what the model reads.
            let reading = read_object(&payload, &|name| claim_named(name).is_some(), false)
                .unwrap_or_else(|e| panic!("serde_json reads {text:?}, read_object: {e}"));
            if std::env::var_os("JWT_REFRESH_FUZZ_TRACE").is_some() {
                eprintln!("  JSON: model {:?}", claims_model(&reading, true));
            }
            assert_eq!(
                full,
                claims_model(&reading, true),
                "Claims::decode of {text:?}"
            );
            assert_eq!(
                times,
                claims_model(&reading, false),
                "TimeClaims::decode of {text:?}"
            );
            return;
        }
    }
    // Not JSON to serde_json: only documented leniency (or a known deviation) may be accepted.
    if let Ok(got) = &full {
        let reading = justify(&payload, true, "Claims::decode");
        assert_eq!(
            Ok(got),
            claims_model(&reading, true).as_ref(),
            "Claims::decode of {text:?}"
        );
    }
    if let Ok(got) = &times {
        let reading = justify(&payload, false, "TimeClaims::decode");
        assert_eq!(
            Ok(got),
            claims_model(&reading, false).as_ref(),
            "TimeClaims::decode of {text:?}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Structured tokens
// ---------------------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Spec {
    header: HeaderKind,
    members: Vec<Member>,
    layout: Layout,
    escape: EscapeSel,
    /// `=` padding after the payload (JWS has none; some producers add it).
    padding: bool,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum HeaderKind {
    SimpleJwt,
    Rs256WithKid,
    None,
    Empty,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum Layout {
    Compact,
    Spaces,
    /// CRLF and spaces, like the RFC 7519 example.
    CrLf,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EscapeSel {
    Minimal,
    Everything,
    Short,
}

#[derive(Arbitrary, Debug)]
struct Member {
    kind: Kind,
    /// Write the key with a `\u` escape (`"e\u0078p"` is still `exp`).
    escaped_key: bool,
}

#[derive(Arbitrary, Debug)]
enum Kind {
    Exp(Num),
    Nbf(Num),
    Iat(Num),
    Iss(Text),
    Sub(Text),
    Jti(Text),
    Aud(Aud),
    Unknown { key: String, value: Value },
}

#[derive(Arbitrary, Debug)]
enum Num {
    Int(u64),
    /// `int.frac` with three decimals.
    Frac(u64, u16),
    /// `m.ff` times ten to the `exp`, written with `e`, `E`, `e+` or `e-`.
    Sci {
        mantissa: u32,
        frac: u8,
        exp: i8,
        upper: bool,
    },
    Negative(u32),
    Quoted(u32),
    Null,
    Bool(bool),
}

#[derive(Arbitrary, Debug)]
enum Text {
    Str(String),
    Number(u32),
}

#[derive(Arbitrary, Debug)]
enum Aud {
    One(String),
    Many(Vec<AudItem>),
    Object,
}

#[derive(Arbitrary, Debug)]
enum AudItem {
    Str(String),
    Number(u8),
}

#[derive(Arbitrary, Debug)]
enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(u32, u16),
    Str(String),
    Array(Vec<Value>),
    Object(Vec<(String, Value)>),
    /// Nested arrays this deep (mod 256): the crate allows 16 levels, the payload included.
    Deep(u8),
}

/// What the decoders must return, computed without the crate.
#[derive(Debug, Default, PartialEq)]
struct Expected {
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    aud: Vec<String>,
}

struct Builder {
    escape: Escape,
    sep: &'static str,
    /// Some value nests deeper than `MAX_NESTING` levels, the payload object included.
    too_deep: bool,
}

impl Builder {
    fn s(&self, s: &str) -> String {
        json_str(s, self.escape)
    }

    /// The number's text, and the NumericDate the crate reads from it: only a whole number of
    /// seconds written as a JSON integer, unless the `float-dates` feature is on (then any
    /// number, floored: exact here, since none of these texts is within an `f64` step of the
    /// next integer, and none past `UnixTime::MAX` floors below it).
    fn num(n: &Num) -> (String, Option<u64>) {
        const MAX: u64 = 253_402_300_799;
        let valid = |v: u128| (v <= u128::from(MAX)).then_some(v as u64);
        let (text, value) = Self::num_floored(n);
        let whole = matches!(n, Num::Int(_));
        (
            text,
            value
                .filter(|_| whole || cfg!(feature = "float-dates"))
                .and_then(|v| valid(u128::from(v))),
        )
    }

    /// The number's text and its value floored, for any number form.
    fn num_floored(n: &Num) -> (String, Option<u64>) {
        match n {
            Num::Int(v) => (v.to_string(), Some(*v)),
            Num::Frac(v, f) => (format!("{v}.{:03}", f % 1000), Some(*v)),
            Num::Sci {
                mantissa,
                frac,
                exp,
                upper,
            } => {
                let frac = frac % 100;
                let e = if *upper { "E" } else { "e" };
                let sign = if *exp >= 0 && frac % 2 == 1 { "+" } else { "" };
                let text = format!("{mantissa}.{frac:02}{e}{sign}{exp}");
                // value = (mantissa * 100 + frac) * 10^(exp - 2)
                let digits = u128::from(*mantissa) * 100 + u128::from(frac);
                let shift = i32::from(*exp) - 2;
                let value = if digits == 0 {
                    Some(0)
                } else if shift >= 0 {
                    (0..shift).try_fold(digits, |acc, _| {
                        let next = acc.checked_mul(10)?;
                        (next <= u128::from(u64::MAX)).then_some(next)
                    })
                } else {
                    let div = (0..-shift).fold(1u128, |acc, _| acc.saturating_mul(10));
                    Some(digits / div)
                };
                (text, value.map(|v| v as u64))
            }
            // `-0` floors to 0; anything below it is not a NumericDate.
            Num::Negative(v) => (format!("-{v}"), (*v == 0).then_some(0)),
            Num::Quoted(v) => (format!("\"{v}\""), None),
            Num::Null => ("null".into(), None),
            Num::Bool(b) => (b.to_string(), None),
        }
    }

    /// Writes an unknown member's value that sits `depth` levels below the payload object.
    fn value(&mut self, v: &Value, depth: usize, out: &mut String) {
        if depth > 40 {
            out.push_str("null");
            return;
        }
        // This value's own level: the payload object, the `depth` levels above, and itself.
        if matches!(v, Value::Array(_) | Value::Object(_)) && 1 + depth + 1 > MAX_NESTING {
            self.too_deep = true;
        }
        match v {
            Value::Null => out.push_str("null"),
            Value::Bool(b) => out.push_str(&b.to_string()),
            Value::Int(i) => out.push_str(&i.to_string()),
            Value::Float(a, b) => out.push_str(&format!("-{a}.{b}e-{}", b % 400)),
            Value::Str(s) => out.push_str(&self.s(s)),
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                        out.push_str(self.sep);
                    }
                    self.value(item, depth + 1, out);
                }
                out.push(']');
            }
            Value::Object(members) => {
                out.push('{');
                for (i, (k, item)) in members.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&self.s(k));
                    out.push(':');
                    out.push_str(self.sep);
                    self.value(item, depth + 1, out);
                }
                out.push('}');
            }
            Value::Deep(n) => {
                let n = usize::from(*n);
                // The payload object, the `depth` levels above, this array and its `n - 1`
                // children.
                if n > 0 && 1 + depth + n > MAX_NESTING {
                    self.too_deep = true;
                }
                out.push_str(&"[".repeat(n));
                out.push_str(&"]".repeat(n));
                if n == 0 {
                    out.push('0');
                }
            }
        }
    }
}

fn key_text(name: &str, escaped: bool) -> String {
    if escaped {
        // Escape the middle character: `"e\u0078p"`.
        let bytes: Vec<char> = name.chars().collect();
        format!("\"{}\\u{:04x}{}\"", bytes[0], bytes[1] as u32, bytes[2])
    } else {
        format!("\"{name}\"")
    }
}

const REGISTERED: [&str; 7] = ["exp", "nbf", "iat", "iss", "sub", "jti", "aud"];

fn claim_of(kind: &Kind) -> Option<ClaimName> {
    Some(match kind {
        Kind::Exp(_) => ClaimName::Exp,
        Kind::Nbf(_) => ClaimName::Nbf,
        Kind::Iat(_) => ClaimName::Iat,
        Kind::Iss(_) => ClaimName::Iss,
        Kind::Sub(_) => ClaimName::Sub,
        Kind::Jti(_) => ClaimName::Jti,
        Kind::Aud(_) => ClaimName::Aud,
        Kind::Unknown { .. } => return None,
    })
}

/// Builds the payload text and the two expected results (all claims, times only).
/// `count_first`: an `aud` entry past the capacity is `TooManyAudiences` before its type or
/// length is looked at; else its type is checked first, then the count, then its text (the
/// crate's order since e593d62: the library reads the element before the crate counts it).
/// Either order makes a correct decoder; the test accepts both.
fn build(
    spec: &Spec,
    count_first: bool,
) -> (
    String,
    Result<Expected, DecodeError>,
    Result<Expected, DecodeError>,
) {
    let mut b = Builder {
        escape: match spec.escape {
            EscapeSel::Minimal => Escape::Minimal,
            EscapeSel::Everything => Escape::Everything,
            EscapeSel::Short => Escape::Short,
        },
        sep: match spec.layout {
            Layout::Compact => "",
            Layout::Spaces => " ",
            Layout::CrLf => "\r\n ",
        },
        too_deep: false,
    };
    let mut text = String::from("{");
    text.push_str(b.sep);
    let mut full: Result<Expected, DecodeError> = Ok(Expected::default());
    let mut times: Result<Expected, DecodeError> = Ok(Expected::default());
    let mut seen: Vec<ClaimName> = Vec::new();
    let cap = DEFAULT_STR_CAPACITY;
    for (i, m) in spec.members.iter().enumerate() {
        if i > 0 {
            text.push(',');
            text.push_str(b.sep);
        }
        let claim = claim_of(&m.kind);
        match &m.kind {
            Kind::Unknown { key, .. } => {
                // Keep unknown keys unknown.
                let key = if REGISTERED.contains(&key.as_str()) {
                    format!("x-{key}")
                } else {
                    key.clone()
                };
                text.push_str(&b.s(&key));
            }
            _ => text.push_str(&key_text(
                claim.expect("registered").as_str(),
                m.escaped_key,
            )),
        }
        text.push(':');
        text.push_str(b.sep);
        // Duplicates are rejected before the value is read.
        let dup = claim.filter(|c| seen.contains(c));
        if let Some(c) = claim {
            seen.push(c);
        }
        let mut fail_full: Option<DecodeError> =
            dup.map(|claim| DecodeError::DuplicateClaim { claim });
        let mut fail_times = fail_full;
        // Decoded a character at a time: one that does not fit is `ClaimTooLong`; one beyond
        // the BMP written as a UTF-16 surrogate pair of escapes (`Escape::Everything`) is
        // refused when reached (`serde-json-core` decodes one `\u` at a time).
        let escape = b.escape;
        let string_claim = move |s: &str, claim: ClaimName| -> Result<String, DecodeError> {
            let mut out = String::new();
            for c in s.chars() {
                if escape == Escape::Everything && c.len_utf16() == 2 {
                    return Err(DecodeError::Json);
                }
                if out.len() + c.len_utf8() > cap {
                    return Err(DecodeError::ClaimTooLong {
                        claim,
                        capacity: cap,
                    });
                }
                out.push(c);
            }
            Ok(out)
        };
        match &m.kind {
            Kind::Exp(n) | Kind::Nbf(n) | Kind::Iat(n) => {
                let claim = claim.expect("registered");
                let (t, v) = Builder::num(n);
                text.push_str(&t);
                let e = DecodeError::InvalidNumericDate { claim };
                if fail_full.is_none() {
                    match v {
                        None => {
                            fail_full = Some(e);
                            fail_times = Some(e);
                        }
                        Some(v) => {
                            for x in [&mut full, &mut times].into_iter().flatten() {
                                match claim {
                                    ClaimName::Exp => x.exp = Some(v),
                                    ClaimName::Nbf => x.nbf = Some(v),
                                    _ => x.iat = Some(v),
                                }
                            }
                        }
                    }
                }
            }
            Kind::Iss(t) | Kind::Sub(t) | Kind::Jti(t) => {
                let claim = claim.expect("registered");
                let value = match t {
                    Text::Str(s) => {
                        text.push_str(&b.s(s));
                        string_claim(s, claim)
                    }
                    Text::Number(n) => {
                        text.push_str(&n.to_string());
                        Err(DecodeError::InvalidClaimType { claim })
                    }
                };
                if fail_full.is_none() {
                    match value {
                        Err(e) => fail_full = Some(e),
                        Ok(s) => {
                            if let Ok(x) = &mut full {
                                match claim {
                                    ClaimName::Iss => x.iss = Some(s),
                                    ClaimName::Sub => x.sub = Some(s),
                                    _ => x.jti = Some(s),
                                }
                            }
                        }
                    }
                }
            }
            Kind::Aud(a) => {
                let claim = ClaimName::Aud;
                let mut result: Result<Vec<String>, DecodeError> = Ok(Vec::new());
                // `None`: an element that is not a string.
                let mut push = |r: Option<Result<String, DecodeError>>| {
                    if let Ok(list) = &mut result {
                        let full = list.len() >= DEFAULT_AUD_CAPACITY;
                        let too_many = DecodeError::TooManyAudiences {
                            capacity: DEFAULT_AUD_CAPACITY,
                        };
                        match r {
                            _ if full && count_first => result = Err(too_many),
                            None => result = Err(DecodeError::InvalidClaimType { claim }),
                            Some(_) if full => result = Err(too_many),
                            Some(Ok(s)) => list.push(s),
                            Some(Err(e)) => result = Err(e),
                        }
                    }
                };
                match a {
                    Aud::One(s) => {
                        text.push_str(&b.s(s));
                        push(Some(string_claim(s, claim)));
                    }
                    Aud::Many(items) => {
                        text.push('[');
                        for (j, item) in items.iter().enumerate() {
                            if j > 0 {
                                text.push(',');
                            }
                            match item {
                                AudItem::Str(s) => {
                                    text.push_str(&b.s(s));
                                    push(Some(string_claim(s, claim)));
                                }
                                AudItem::Number(n) => {
                                    text.push_str(&n.to_string());
                                    push(None);
                                }
                            }
                        }
                        text.push(']');
                    }
                    Aud::Object => {
                        text.push_str(r#"{"a":["b"]}"#);
                        result = Err(DecodeError::InvalidClaimType { claim });
                    }
                }
                if fail_full.is_none() {
                    match result {
                        Err(e) => fail_full = Some(e),
                        Ok(list) => {
                            if let Ok(x) = &mut full {
                                x.aud = list;
                            }
                        }
                    }
                }
            }
            Kind::Unknown { value, .. } => b.value(value, 0, &mut text),
        }
        if let (Some(e), Ok(_)) = (fail_full, &full) {
            full = Err(e);
        }
        if let (Some(e), Ok(_)) = (fail_times, &times) {
            times = Err(e);
        }
    }
    text.push_str(b.sep);
    text.push('}');
    // The nesting is checked before anything is parsed: it wins over every other error.
    if b.too_deep {
        full = Err(DecodeError::TooDeep);
        times = Err(DecodeError::TooDeep);
    }
    (text, full, times)
}

fn structured(spec: &Spec) {
    let (payload, mut want_full, mut want_times) = build(spec, true);
    let (_, other_full, _) = build(spec, false);
    let header = match spec.header {
        HeaderKind::SimpleJwt => r#"{"alg":"HS256","typ":"JWT"}"#,
        HeaderKind::Rs256WithKid => r#"{"alg":"RS256","kid":"k-2024-06","typ":"at+jwt"}"#,
        HeaderKind::None => r#"{"alg":"none"}"#,
        HeaderKind::Empty => "",
    };
    let mut token = if spec.header.is_empty() {
        format!(".{}.", b64url(payload.as_bytes()))
    } else {
        jws(header, &payload)
    };
    if spec.padding {
        // Pad the payload segment to a multiple of four.
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        while !parts[1].len().is_multiple_of(4) {
            parts[1].push('=');
        }
        token = parts.join(".");
    }
    if payload.len() > DEFAULT_PAYLOAD_CAPACITY {
        let e = DecodeError::TooLarge {
            needed: payload.len(),
            capacity: DEFAULT_PAYLOAD_CAPACITY,
        };
        want_full = Err(e);
        want_times = Err(e);
    }
    let got_full = Claims::decode(&token).map(|c| expected_of(&c));
    let got_times = TimeClaims::decode(&token).map(|t| expected_times(&t));
    let want_times = want_times.map(|w| Expected {
        exp: w.exp,
        nbf: w.nbf,
        iat: w.iat,
        ..Expected::default()
    });
    if got_full != want_full
        && other_full.is_err()
        && !matches!(want_full, Err(DecodeError::TooLarge { .. }))
    {
        assert_eq!(got_full, other_full, "Claims::decode of payload {payload}");
    } else {
        assert_eq!(got_full, want_full, "Claims::decode of payload {payload}");
    }
    assert_eq!(
        got_times, want_times,
        "TimeClaims::decode of payload {payload}"
    );
}

impl HeaderKind {
    fn is_empty(self) -> bool {
        matches!(self, HeaderKind::Empty)
    }
}
