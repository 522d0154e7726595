//! The claims decoders' stack cases: `Claims::decode` (with its default 1 KiB stack scratch
//! buffer) and `TimeClaims::decode` (which the session runs on every new access token) on a
//! SimpleJWT token, on a payload with escaped strings and an `aud` array, and on payloads that
//! nest unknown values as deep as the crate's JSON reader allows (`MAX_DEPTH` levels, the
//! top-level object included: the reader skips them by recursion), half as deep (the difference
//! is the cost of a level), and one level deeper (refused before parsing).
//!
//! `main` paints the stack, calls [`decode_claims`] or [`decode_times`] for each case and finds
//! the deepest word written. Both images without the crate's calls keep the cases and the loop,
//! with stand-ins that do not call the crate.

use core::hint::black_box;

use jwt_refresh::{Claims, TimeClaims, UnixTime};

use crate::tokens;

/// Which decoder a case runs.
#[derive(Clone, Copy)]
pub enum Decoder {
    /// `Claims::decode`: every registered claim, strings unescaped into the claims' buffers.
    Claims,
    /// `TimeClaims::decode`: `exp`, `nbf` and `iat` only.
    Times,
}

/// What a case must decode to: the claims, or `DecodeError::TooDeep`.
#[derive(Clone, Copy)]
pub struct Expect {
    pub exp: u64,
    pub iat: u64,
    pub iss: Option<&'static str>,
    pub sub: Option<&'static str>,
    pub jti: &'static str,
    pub aud: &'static [&'static str],
    pub too_deep: bool,
}

/// SimpleJWT access token 7, issued 7 x 600 s after the first, valid 300 s.
const SIMPLEJWT: Expect = Expect {
    exp: tokens::FIRST_IAT + 7 * 600 + tokens::SIMPLEJWT_ACCESS_EXP_MINUS_IAT,
    iat: tokens::FIRST_IAT + 7 * 600,
    iss: None,
    sub: None,
    jti: tokens::SIMPLEJWT_ACCESS_JTI[7],
    aud: &[],
    too_deep: false,
};

/// The claims of `tokens::CLAIMS_ESCAPED`, unescaped.
const ESCAPED_CLAIMS: Expect = Expect {
    iss: Some("https://auth.example.com/realms/devices"),
    sub: Some("device-7 \"greenhouse\""),
    jti: "9f2c4e1d",
    aud: &["api.example.com", "telemetry/v2", "ota"],
    ..NESTED
};

/// The claims of the nested payloads.
const NESTED: Expect = Expect {
    exp: tokens::CASE_EXP,
    iat: tokens::CASE_EXP - tokens::SIMPLEJWT_ACCESS_EXP_MINUS_IAT,
    iss: None,
    sub: None,
    jti: "nested",
    aud: &[],
    too_deep: false,
};

const REFUSED: Expect = Expect {
    too_deep: true,
    ..NESTED
};

pub struct Case {
    /// The `measure` key of its peak.
    pub key: &'static str,
    pub what: &'static str,
    pub decoder: Decoder,
    pub token: &'static str,
    pub expect: Expect,
}

const fn case(
    key: &'static str,
    what: &'static str,
    decoder: Decoder,
    token: &'static str,
    expect: Expect,
) -> Case {
    Case {
        key,
        what,
        decoder,
        token,
        expect,
    }
}

/// Every case, in the order they run.
pub const CASES: &[Case] = &[
    case(
        FLAT,
        "Claims::decode, SimpleJWT access token, flat payload",
        Decoder::Claims,
        tokens::SIMPLEJWT_ACCESS[7],
        SIMPLEJWT,
    ),
    case(
        ESCAPED,
        "Claims::decode, escaped iss, sub and jti, a 3-entry aud array",
        Decoder::Claims,
        tokens::CLAIMS_ESCAPED,
        ESCAPED_CLAIMS,
    ),
    case(
        DEEP_ARRAYS,
        "Claims::decode, arrays nested to MAX_DEPTH",
        Decoder::Claims,
        tokens::CLAIMS_DEEP_ARRAYS,
        NESTED,
    ),
    case(
        DEEP_OBJECTS,
        "Claims::decode, objects nested to MAX_DEPTH",
        Decoder::Claims,
        tokens::CLAIMS_DEEP_OBJECTS,
        NESTED,
    ),
    case(
        HALF_ARRAYS,
        "Claims::decode, arrays nested to MAX_DEPTH / 2",
        Decoder::Claims,
        tokens::CLAIMS_HALF_ARRAYS,
        NESTED,
    ),
    case(
        "stack_claims_decode_too_deep_peak",
        "Claims::decode, one level past MAX_DEPTH: refused",
        Decoder::Claims,
        tokens::CLAIMS_TOO_DEEP,
        REFUSED,
    ),
    case(
        "stack_time_claims_decode_peak",
        "TimeClaims::decode, SimpleJWT access token, flat payload",
        Decoder::Times,
        tokens::SIMPLEJWT_ACCESS[7],
        SIMPLEJWT,
    ),
    case(
        "stack_time_claims_decode_deep_arrays_peak",
        "TimeClaims::decode, arrays nested to MAX_DEPTH",
        Decoder::Times,
        tokens::CLAIMS_DEEP_ARRAYS,
        NESTED,
    ),
    case(
        "stack_time_claims_decode_deep_objects_peak",
        "TimeClaims::decode, objects nested to MAX_DEPTH",
        Decoder::Times,
        tokens::CLAIMS_DEEP_OBJECTS,
        NESTED,
    ),
];

/// The keys that `main` derives the deepest case and the cost of a level from.
pub const FLAT: &str = "stack_claims_decode_peak";
pub const ESCAPED: &str = "stack_claims_decode_escaped_peak";
pub const DEEP_ARRAYS: &str = "stack_claims_decode_deep_arrays_peak";
pub const DEEP_OBJECTS: &str = "stack_claims_decode_deep_objects_peak";
pub const HALF_ARRAYS: &str = "stack_claims_decode_half_arrays_peak";

/// Runs one case: true when it decoded to what it must. Inlined, so that the decoder's frame
/// is the first below the caller's.
#[inline(always)]
pub fn run(case: &Case) -> bool {
    match case.decoder {
        Decoder::Claims => decode_claims(case.token, &case.expect),
        Decoder::Times => decode_times(case.token, &case.expect),
    }
}

/// Whether `Claims::decode`'s result (`None`: refused as too deep) is what the case expects.
/// In every image (the stand-ins check default claims), so that the flash figures hold the
/// decoders' calls only; by reference, so that the decoder's frame holds no copy.
#[inline(never)]
pub fn check_claims(claims: Option<&Claims>, expect: &Expect) -> bool {
    let Some(c) = claims else {
        return expect.too_deep;
    };
    !expect.too_deep
        && c.exp.map(UnixTime::as_secs) == Some(expect.exp)
        && c.iat.map(UnixTime::as_secs) == Some(expect.iat)
        && c.iss.as_deref() == expect.iss
        && c.sub.as_deref() == expect.sub
        && c.jti.as_deref() == Some(expect.jti)
        && c.audiences().eq(expect.aud.iter().copied())
}

/// Whether `TimeClaims::decode`'s result is what the case expects (its dates).
#[inline(never)]
pub fn check_times(times: &TimeClaims, expect: &Expect) -> bool {
    times.exp.map(UnixTime::as_secs) == Some(expect.exp)
        && times.iat.map(UnixTime::as_secs) == Some(expect.iat)
}

/// `Claims::decode` as an application calls it.
#[cfg(crate_calls)]
#[inline(never)]
pub fn decode_claims(token: &str, expect: &Expect) -> bool {
    match Claims::decode(black_box(token)) {
        Ok(claims) => check_claims(Some(&claims), expect),
        Err(jwt_refresh::DecodeError::TooDeep) => check_claims(None, expect),
        Err(_) => false,
    }
}

/// `TimeClaims::decode` as the session calls it on every new access token.
#[cfg(crate_calls)]
#[inline(never)]
pub fn decode_times(token: &str, expect: &Expect) -> bool {
    match TimeClaims::decode(black_box(token)) {
        Ok(times) => check_times(&times, expect),
        Err(_) => false,
    }
}

/// The stand-in of the images without the crate's calls: the same check, on empty claims.
#[cfg(not(crate_calls))]
#[inline(never)]
pub fn decode_claims(token: &str, expect: &Expect) -> bool {
    let claims = black_box(Claims::default());
    check_claims((black_box(token).len() > 2).then_some(&claims), expect)
}

/// The stand-in of the images without the crate's calls.
#[cfg(not(crate_calls))]
#[inline(never)]
pub fn decode_times(token: &str, expect: &Expect) -> bool {
    let times = black_box(TimeClaims::default());
    black_box(token).len() > 2 && check_times(&times, expect)
}
