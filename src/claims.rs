//! Reading a JWT's registered claims into fixed-size buffers, without allocating.
//!
//! The decoder splits a compact JWS (`header.payload.signature`), base64url-decodes the payload
//! into a scratch buffer and reads `exp`, `nbf`, `iat`, `iss`, `sub`, `jti` and `aud`, skipping
//! every other claim. **It does not verify the signature**: decoded claims are scheduling hints
//! only (RFC 8725 section 3.10), and the server remains the judge of a token's validity.

use core::fmt;

use heapless::{String, Vec};

use crate::json::{self, JsonError, RawStr, Reader};
use crate::time::UnixTime;

/// Default capacity, in bytes, of each string claim (`iss`, `sub`, `jti` and every `aud` entry).
///
/// 96 bytes hold a SimpleJWT `jti` (32 hex digits), issuer URLs such as
/// `https://login.microsoftonline.com/<tenant-guid>/v2.0` (75 bytes) and typical client-id
/// audiences. Pick another capacity with the generic form, [`Claims::decode_in`].
pub const DEFAULT_STR_CAPACITY: usize = 96;

/// Default number of `aud` entries kept.
pub const DEFAULT_AUD_CAPACITY: usize = 4;

/// Default size, in bytes, of the stack scratch buffer that holds the decoded payload in
/// [`Claims::decode`] and [`TimeClaims::decode`].
///
/// A SimpleJWT payload is about 150 bytes; OAuth providers' payloads can reach several hundred.
/// A payload that does not fit is [`DecodeError::TooLarge`], never truncated. Pass your own
/// buffer to the `decode_in` forms for other sizes.
pub const DEFAULT_PAYLOAD_CAPACITY: usize = 1024;

/// A registered claim, as named in errors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ClaimName {
    /// `exp`, expiration time.
    Exp,
    /// `nbf`, not before.
    Nbf,
    /// `iat`, issued at.
    Iat,
    /// `iss`, issuer.
    Iss,
    /// `sub`, subject.
    Sub,
    /// `jti`, JWT ID.
    Jti,
    /// `aud`, audience.
    Aud,
}

impl ClaimName {
    /// The claim's name as it appears in the payload.
    pub const fn as_str(self) -> &'static str {
        match self {
            ClaimName::Exp => "exp",
            ClaimName::Nbf => "nbf",
            ClaimName::Iat => "iat",
            ClaimName::Iss => "iss",
            ClaimName::Sub => "sub",
            ClaimName::Jti => "jti",
            ClaimName::Aud => "aud",
        }
    }

    const ALL: [ClaimName; 7] = [
        ClaimName::Exp,
        ClaimName::Nbf,
        ClaimName::Iat,
        ClaimName::Iss,
        ClaimName::Sub,
        ClaimName::Jti,
        ClaimName::Aud,
    ];

    /// Recognises a member key, escapes included (`"e\u0078p"` is `exp`).
    fn from_key(key: RawStr<'_>) -> Option<ClaimName> {
        ClaimName::ALL
            .iter()
            .copied()
            .find(|claim| key.is(claim.as_str()))
    }

    const fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for ClaimName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a token's claims could not be read.
///
/// No variant carries token bytes, so errors are safe to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum DecodeError {
    /// Not a compact JWS: it has `segments` dot-separated parts instead of three.
    Malformed {
        /// How many dot-separated parts the token has.
        segments: usize,
    },
    /// A JWE (five parts): its claims are encrypted and cannot be read without the key.
    /// Schedule it from the server's `expires_in` instead.
    Encrypted,
    /// The payload part is empty.
    EmptyPayload,
    /// The payload is not valid base64url.
    Base64,
    /// The decoded payload needs `needed` bytes but the scratch buffer has `capacity`.
    TooLarge {
        /// Bytes the decoded payload needs.
        needed: usize,
        /// Bytes the scratch buffer has.
        capacity: usize,
    },
    /// The decoded payload is not valid UTF-8.
    Utf8,
    /// The payload is valid JSON text that does not start an object.
    NotAnObject,
    /// The payload is not valid JSON; `offset` is the byte of the decoded payload where
    /// reading stopped.
    Json {
        /// Byte offset into the decoded payload.
        offset: usize,
    },
    /// An unknown claim nests arrays or objects deeper than the reader allows (128 levels).
    TooDeep,
    /// A registered claim appears twice (RFC 7519 section 4 lets parsers reject this).
    DuplicateClaim {
        /// The repeated claim.
        claim: ClaimName,
    },
    /// A registered claim has the wrong JSON type (for example a number as `iss`).
    InvalidClaimType {
        /// The claim with the wrong type.
        claim: ClaimName,
    },
    /// A string claim is longer than its buffer.
    ClaimTooLong {
        /// The claim that did not fit.
        claim: ClaimName,
        /// The buffer's capacity in bytes.
        capacity: usize,
    },
    /// `aud` has more entries than the claims can hold.
    TooManyAudiences {
        /// How many entries fit.
        capacity: usize,
    },
    /// A NumericDate (`exp`, `nbf`, `iat`) is not a number, is negative, or lies after
    /// [`UnixTime::MAX`].
    InvalidNumericDate {
        /// The claim with the bad date.
        claim: ClaimName,
    },
}

impl DecodeError {
    /// The variant's name in snake_case (`"malformed"`, `"too_large"`, ...), stable for logs
    /// and machine-readable output.
    pub const fn kind(&self) -> &'static str {
        match self {
            DecodeError::Malformed { .. } => "malformed",
            DecodeError::Encrypted => "encrypted",
            DecodeError::EmptyPayload => "empty_payload",
            DecodeError::Base64 => "base64",
            DecodeError::TooLarge { .. } => "too_large",
            DecodeError::Utf8 => "utf8",
            DecodeError::NotAnObject => "not_an_object",
            DecodeError::Json { .. } => "json",
            DecodeError::TooDeep => "too_deep",
            DecodeError::DuplicateClaim { .. } => "duplicate_claim",
            DecodeError::InvalidClaimType { .. } => "invalid_claim_type",
            DecodeError::ClaimTooLong { .. } => "claim_too_long",
            DecodeError::TooManyAudiences { .. } => "too_many_audiences",
            DecodeError::InvalidNumericDate { .. } => "invalid_numeric_date",
        }
    }
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Malformed { segments } => write!(
                f,
                "not a compact JWS: {segments} dot-separated parts instead of 3"
            ),
            DecodeError::Encrypted => f.write_str(
                "encrypted token (JWE): claims cannot be read; use the server's expires_in",
            ),
            DecodeError::EmptyPayload => f.write_str("the payload part is empty"),
            DecodeError::Base64 => f.write_str("the payload is not valid base64url"),
            DecodeError::TooLarge { needed, capacity } => write!(
                f,
                "the decoded payload needs {needed} bytes but the buffer holds {capacity}"
            ),
            DecodeError::Utf8 => f.write_str("the payload is not valid UTF-8"),
            DecodeError::NotAnObject => f.write_str("the payload is not a JSON object"),
            DecodeError::Json { offset } => {
                write!(f, "the payload is not valid JSON (at byte {offset})")
            }
            DecodeError::TooDeep => f.write_str("a claim nests arrays or objects too deeply"),
            DecodeError::DuplicateClaim { claim } => write!(f, "claim `{claim}` appears twice"),
            DecodeError::InvalidClaimType { claim } => {
                write!(f, "claim `{claim}` has the wrong JSON type")
            }
            DecodeError::ClaimTooLong { claim, capacity } => write!(
                f,
                "claim `{claim}` is longer than its {capacity}-byte buffer"
            ),
            DecodeError::TooManyAudiences { capacity } => {
                write!(f, "claim `aud` has more than {capacity} entries")
            }
            DecodeError::InvalidNumericDate { claim } => write!(
                f,
                "claim `{claim}` is not a valid NumericDate (a non-negative number of seconds up to year 9999)"
            ),
        }
    }
}

impl core::error::Error for DecodeError {}

impl From<JsonError> for DecodeError {
    fn from(e: JsonError) -> Self {
        match e {
            JsonError::Syntax { offset } => DecodeError::Json { offset },
            JsonError::NotAnObject => DecodeError::NotAnObject,
            JsonError::TooDeep => DecodeError::TooDeep,
        }
    }
}

/// A token's registered claims (RFC 7519 section 4.1), read without verifying the signature.
///
/// `S` is the capacity in bytes of each string claim, `A` the number of `aud` entries kept.
/// Unknown claims (SimpleJWT's `token_type` and `user_id`, scopes, roles...) are skipped,
/// whatever their JSON type. The raw token is not kept, so `Debug` shows claim values only.
///
/// **Unverified**: use these values to schedule refreshes, never to make authorization
/// decisions.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Claims<const S: usize = DEFAULT_STR_CAPACITY, const A: usize = DEFAULT_AUD_CAPACITY> {
    /// `exp`: the token must not be accepted on or after this time.
    pub exp: Option<UnixTime>,
    /// `nbf`: the token must not be accepted before this time.
    pub nbf: Option<UnixTime>,
    /// `iat`: when the token was issued.
    pub iat: Option<UnixTime>,
    /// `iss`: the issuer.
    pub iss: Option<String<S>>,
    /// `sub`: the subject.
    pub sub: Option<String<S>>,
    /// `jti`: the token's unique identifier.
    pub jti: Option<String<S>>,
    /// `aud`: the audiences, whether the token gave one string or an array (empty when absent).
    pub aud: Vec<String<S>, A>,
}

/// Only the time claims, for scheduling: `exp`, `nbf` and `iat`.
///
/// Decoding these skips every string claim without copying or unescaping it, so it is the
/// cheaper choice when only deadlines matter. Other registered claims are not type-checked.
/// **Unverified**, like [`Claims`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TimeClaims {
    /// `exp`: the token must not be accepted on or after this time.
    pub exp: Option<UnixTime>,
    /// `nbf`: the token must not be accepted before this time.
    pub nbf: Option<UnixTime>,
    /// `iat`: when the token was issued.
    pub iat: Option<UnixTime>,
}

impl Claims {
    /// Reads the registered claims of a compact JWS with the default capacities, using a
    /// [`DEFAULT_PAYLOAD_CAPACITY`]-byte scratch buffer on the stack.
    ///
    /// Does not verify the signature.
    ///
    /// ```
    /// use jwt_refresh::Claims;
    /// // The example token of RFC 7519 section 3.1.
    /// let token = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.\
    ///     eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.\
    ///     dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    /// let claims = Claims::decode(token)?;
    /// assert_eq!(claims.iss.as_deref(), Some("joe"));
    /// assert_eq!(claims.exp.map(|t| t.as_secs()), Some(1_300_819_380));
    /// # Ok::<(), jwt_refresh::DecodeError>(())
    /// ```
    pub fn decode(token: &str) -> Result<Claims, DecodeError> {
        let mut scratch = [0u8; DEFAULT_PAYLOAD_CAPACITY];
        Claims::decode_in(token, &mut scratch)
    }
}

impl<const S: usize, const A: usize> Claims<S, A> {
    /// Reads the registered claims with capacities `S` and `A`, decoding the payload into
    /// `scratch` (its length bounds the payload size).
    ///
    /// ```
    /// use jwt_refresh::{Claims, DecodeError};
    /// let token = "e30.eyJzdWIiOiJkZXZpY2UtNDIiLCJleHAiOjE3MDAwMDAwMDB9.sig";
    /// let mut scratch = [0u8; 256];
    /// let small: Claims<16, 1> = Claims::decode_in(token, &mut scratch)?;
    /// assert_eq!(small.sub.as_deref(), Some("device-42"));
    /// let tiny: Result<Claims<4, 1>, _> = Claims::decode_in(token, &mut scratch);
    /// assert!(matches!(tiny, Err(DecodeError::ClaimTooLong { capacity: 4, .. })));
    /// # Ok::<(), DecodeError>(())
    /// ```
    pub fn decode_in(token: &str, scratch: &mut [u8]) -> Result<Self, DecodeError> {
        let mut claims = Claims::default();
        let times = walk_claims(decode_payload(token, scratch)?, &mut |claim, reader| {
            let slot = match claim {
                ClaimName::Iss => &mut claims.iss,
                ClaimName::Sub => &mut claims.sub,
                ClaimName::Jti => &mut claims.jti,
                ClaimName::Aud => return audience_into(reader, &mut claims.aud),
                _ => return Ok(reader.skip_value()?),
            };
            string_claim_into(reader, claim, slot.insert(String::new()))
        })?;
        claims.exp = times.exp;
        claims.nbf = times.nbf;
        claims.iat = times.iat;
        Ok(claims)
    }

    /// The audiences as string slices.
    pub fn audiences(&self) -> impl Iterator<Item = &str> {
        self.aud.iter().map(String::as_str)
    }

    /// The time claims alone.
    pub fn times(&self) -> TimeClaims {
        TimeClaims {
            exp: self.exp,
            nbf: self.nbf,
            iat: self.iat,
        }
    }
}

impl TimeClaims {
    /// Reads `exp`, `nbf` and `iat` with a [`DEFAULT_PAYLOAD_CAPACITY`]-byte scratch buffer on
    /// the stack. Does not verify the signature.
    pub fn decode(token: &str) -> Result<TimeClaims, DecodeError> {
        let mut scratch = [0u8; DEFAULT_PAYLOAD_CAPACITY];
        TimeClaims::decode_in(token, &mut scratch)
    }

    /// Reads `exp`, `nbf` and `iat`, decoding the payload into `scratch`.
    pub fn decode_in(token: &str, scratch: &mut [u8]) -> Result<TimeClaims, DecodeError> {
        walk_claims(decode_payload(token, scratch)?, &mut |_, reader| {
            Ok(reader.skip_value()?)
        })
    }
}

/// Splits the token, base64url-decodes its payload into `scratch` and checks it is UTF-8.
fn decode_payload<'s>(token: &str, scratch: &'s mut [u8]) -> Result<&'s str, DecodeError> {
    let payload = payload_segment(token)?;
    // The decoded length, from the characters before any padding.
    let unpadded = payload
        .len()
        .saturating_sub(payload.iter().rev().take_while(|&&b| b == b'=').count());
    if unpadded == 0 {
        return Err(DecodeError::EmptyPayload);
    }
    let needed = match unpadded % 4 {
        0 => unpadded / 4 * 3,
        2 => unpadded / 4 * 3 + 1,
        3 => unpadded / 4 * 3 + 2,
        _ => return Err(DecodeError::Base64),
    };
    let capacity = scratch.len();
    let out = scratch
        .get_mut(..needed)
        .ok_or(DecodeError::TooLarge { needed, capacity })?;
    let written = base64url_decode(payload, out).ok_or(DecodeError::Base64)?;
    let bytes = out.get(..written).ok_or(DecodeError::Base64)?;
    core::str::from_utf8(bytes).map_err(|_| DecodeError::Utf8)
}

/// base64url (RFC 4648 section 5) into `out`, padding optional (at most the canonical amount),
/// non-zero trailing bits rejected; `None` on any invalid input or when `out` is too small.
///
/// The microcontroller version: a character at a time with a compare chain, the smallest code
/// (a table, or the `base64` crate, decodes faster but costs 0.4 to 2 KB of flash; a token is
/// decoded once per refresh, not per request).
#[cfg(any(test, not(target_pointer_width = "64")))]
fn base64url_decode_small(input: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut data = input;
    while let [rest @ .., b'='] = data {
        data = rest;
    }
    let canonical_pad = (4 - data.len() % 4) % 4;
    if data.len() % 4 == 1 || input.len().saturating_sub(data.len()) > canonical_pad {
        return None;
    }
    let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
    for &c in data {
        let v = match c {
            b'A'..=b'Z' => c.wrapping_sub(b'A'),
            b'a'..=b'z' => c.wrapping_sub(b'a' - 26),
            b'0'..=b'9' => c.wrapping_add(52 - b'0'),
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits = bits.wrapping_add(6);
        if bits >= 8 {
            bits = bits.wrapping_sub(8);
            *out.get_mut(n)? = (acc >> bits) as u8;
            n = n.saturating_add(1);
        }
    }
    (acc & ((1 << bits) - 1) == 0).then_some(n)
}

/// The 64-bit version: four characters at a time through a 128-byte table, about three times
/// faster than [`base64url_decode_small`], which a unit test holds it equal to.
#[cfg(any(test, target_pointer_width = "64"))]
fn base64url_decode_fast(input: &[u8], out: &mut [u8]) -> Option<usize> {
    /// The base64url value of each ASCII byte; `0xFF` marks bytes outside the alphabet.
    #[allow(
        clippy::indexing_slicing,
        reason = "evaluated at compile time: an index out of bounds fails the build"
    )]
    const SEXTETS: [u8; 128] = {
        let mut table = [0xFF_u8; 128];
        let mut i = 0;
        while i < 26 {
            table[b'A' as usize + i] = i as u8;
            table[b'a' as usize + i] = 26 + i as u8;
            i += 1;
        }
        let mut d = 0;
        while d < 10 {
            table[b'0' as usize + d] = 52 + d as u8;
            d += 1;
        }
        table[b'-' as usize] = 62;
        table[b'_' as usize] = 63;
        table
    };
    let pad = input.iter().rev().take_while(|&&b| b == b'=').count();
    let data = input.get(..input.len().saturating_sub(pad))?;
    let canonical_pad = (4 - data.len() % 4) % 4;
    if data.len() % 4 == 1 || pad > canonical_pad {
        return None;
    }
    let sextet = |c: &u8| u32::from(SEXTETS.get(usize::from(*c)).copied().unwrap_or(0xFF));
    // Every valid sextet is below 64, so bits 6 and 7 of `seen` flag an invalid character.
    let mut seen = 0u32;
    let mut groups = data.chunks_exact(4);
    let mut written = 0usize;
    for (chunk, dst) in (&mut groups).zip(out.chunks_exact_mut(3)) {
        let (&[a, b, c, d], [x, y, z]) = (chunk, dst) else {
            return None;
        };
        let (a, b, c, d) = (sextet(&a), sextet(&b), sextet(&c), sextet(&d));
        seen |= a | b | c | d;
        let v = a << 18 | b << 12 | c << 6 | d;
        (*x, *y, *z) = ((v >> 16) as u8, (v >> 8) as u8, v as u8);
        written = written.saturating_add(3);
    }
    if written / 3 != data.len() / 4 {
        return None; // `out` too small
    }
    // The last two or three characters carry one or two bytes and 4 or 2 bits that must be 0.
    let tail = groups.remainder();
    let v = tail.iter().fold(0u32, |v, c| {
        let s = sextet(c);
        seen |= s;
        v << 6 | s
    });
    let bytes: &[u8] = match tail.len() {
        0 => &[],
        2 if v & 0xF == 0 => &[(v >> 4) as u8],
        3 if v & 0x3 == 0 => &[(v >> 10) as u8, (v >> 2) as u8],
        _ => return None,
    };
    let end = written.saturating_add(bytes.len());
    out.get_mut(written..end)?.copy_from_slice(bytes);
    (seen & 0xC0 == 0).then_some(end)
}

/// base64url into `out`: the smallest code on 32-bit targets, the fastest on 64-bit hosts.
fn base64url_decode(input: &[u8], out: &mut [u8]) -> Option<usize> {
    #[cfg(target_pointer_width = "64")]
    return base64url_decode_fast(input, out);
    #[cfg(not(target_pointer_width = "64"))]
    return base64url_decode_small(input, out);
}

/// The payload segment of a compact JWS (between the first and the second of exactly two
/// dots), or the error for another shape.
fn payload_segment(token: &str) -> Result<&[u8], DecodeError> {
    let (first, second, segments) = dots(token);
    match segments {
        3 => Ok(token
            .as_bytes()
            .get(first.saturating_add(1)..second)
            .unwrap_or_default()),
        5 => Err(DecodeError::Encrypted),
        _ => Err(DecodeError::Malformed { segments }),
    }
}

/// The positions of the first two dots and the number of segments. On 64-bit hosts through
/// `str::find` (a word at a time); on microcontrollers with plain loops (smaller).
fn dots(token: &str) -> (usize, usize, usize) {
    #[cfg(target_pointer_width = "64")]
    {
        let Some(first) = token.find('.') else {
            return (0, 0, 1);
        };
        let after = token.get(first.saturating_add(1)..).unwrap_or_default();
        let Some(gap) = after.find('.') else {
            return (first, 0, 2);
        };
        let second = first.saturating_add(1).saturating_add(gap);
        let more = token
            .get(second.saturating_add(1)..)
            .map_or(0, |tail| tail.matches('.').count());
        (first, second, more.saturating_add(3))
    }
    #[cfg(not(target_pointer_width = "64"))]
    {
        let bytes = token.as_bytes();
        let segments = bytes
            .iter()
            .filter(|&&b| b == b'.')
            .count()
            .saturating_add(1);
        let first = bytes.iter().position(|&b| b == b'.').unwrap_or(0);
        let start = first.saturating_add(1);
        let second = bytes
            .get(start..)
            .and_then(|rest| rest.iter().position(|&b| b == b'.'))
            .map_or(0, |at| start.saturating_add(at));
        (first, second, segments)
    }
}

/// Reads the time claims, hands every other registered claim to `strings` (which must consume
/// its value) and skips unknown ones. One copy serves both `Claims` and `TimeClaims`.
fn walk_claims<'a>(
    text: &'a str,
    strings: &mut dyn FnMut(ClaimName, &mut Reader<'a>) -> Result<(), DecodeError>,
) -> Result<TimeClaims, DecodeError> {
    let mut times = TimeClaims::default();
    walk(text, |name, reader| {
        match name {
            Some(claim @ ClaimName::Exp) => times.exp = Some(numeric_date(reader, claim)?),
            Some(claim @ ClaimName::Nbf) => times.nbf = Some(numeric_date(reader, claim)?),
            Some(claim @ ClaimName::Iat) => times.iat = Some(numeric_date(reader, claim)?),
            Some(claim) => strings(claim, reader)?,
            None => reader.skip_value()?,
        }
        Ok(())
    })?;
    Ok(times)
}

/// Walks the top-level object, calling `member` for each claim with the reader positioned at
/// its value (which `member` must consume). Rejects duplicate registered claims.
fn walk<'a>(
    text: &'a str,
    mut member: impl FnMut(Option<ClaimName>, &mut Reader<'a>) -> Result<(), DecodeError>,
) -> Result<(), DecodeError> {
    let mut seen = 0u8;
    json::members(text, |key, reader| {
        let name = ClaimName::from_key(key);
        if let Some(claim) = name {
            if seen & claim.bit() != 0 {
                return Err(DecodeError::DuplicateClaim { claim });
            }
            seen |= claim.bit();
        }
        member(name, reader)
    })
}

/// Whether the next value is a JSON number.
fn at_number(reader: &mut Reader<'_>) -> bool {
    matches!(reader.peek_value(), Some(b'-' | b'0'..=b'9'))
}

/// Reads a NumericDate. Any other JSON value is skipped (so syntax errors still surface) and
/// reported as invalid.
fn numeric_date(reader: &mut Reader<'_>, claim: ClaimName) -> Result<UnixTime, DecodeError> {
    if !at_number(reader) {
        reader.skip_value()?;
        return Err(DecodeError::InvalidNumericDate { claim });
    }
    let text = reader.number()?;
    floor_seconds(text)
        .and_then(UnixTime::from_secs)
        .ok_or(DecodeError::InvalidNumericDate { claim })
}

/// `floor(text)` for a JSON number already checked against the grammar, in exact integer
/// arithmetic (no float parsing is linked in). `None` for negative values and for values that
/// do not fit `u64`; `-0`, `0.5` and `1e-9` floor to 0.
pub(crate) fn floor_seconds(text: &str) -> Option<u64> {
    let bytes = text.as_bytes();
    let (negative, bytes) = match bytes.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, bytes),
    };
    // `b | 0x20` folds `E` onto `e`; no other byte of a JSON number maps to `e`.
    let exp_at = bytes
        .iter()
        .position(|&b| b | 0x20 == b'e')
        .unwrap_or(bytes.len());
    let (mantissa, exp_text) = bytes.split_at_checked(exp_at)?;
    // The decimal exponent, saturated far beyond any meaningful value so that the digit loop
    // below stays short (it overflows u64 within 20 steps of a non-zero digit).
    let (mut exponent, mut sign) = (0i32, 1i32);
    for &b in exp_text.get(1..).unwrap_or_default() {
        match b {
            b'-' => sign = -1,
            b'+' => {}
            _ => {
                exponent = exponent
                    .saturating_mul(10)
                    .saturating_add(i32::from(b.wrapping_sub(b'0')))
                    .min(1_000_000)
            }
        }
    }
    let int_len = mantissa
        .iter()
        .position(|&b| b == b'.')
        .unwrap_or(mantissa.len());
    let mut digits = mantissa
        .iter()
        .filter(|&&b| b != b'.')
        .map(|&b| u64::from(b.wrapping_sub(b'0')));
    if digits.clone().all(|d| d == 0) {
        return Some(0);
    }
    if negative {
        return None;
    }
    // The integer part has `int_len + exponent` digits, padded with zeros past the last one.
    let whole = i32::try_from(int_len)
        .unwrap_or(i32::MAX)
        .saturating_add(sign.saturating_mul(exponent));
    let mut acc = 0u64;
    for _ in 0..whole.max(0) {
        acc = acc
            .checked_mul(10)?
            .checked_add(digits.next().unwrap_or(0))?;
    }
    Some(acc)
}

/// Reads a string claim into `out` in place (no temporary copy on the stack).
fn string_claim_into<const S: usize>(
    reader: &mut Reader<'_>,
    claim: ClaimName,
    out: &mut String<S>,
) -> Result<(), DecodeError> {
    if reader.peek_value() != Some(b'"') {
        reader.skip_value()?;
        return Err(DecodeError::InvalidClaimType { claim });
    }
    let raw = reader.string()?;
    raw.decode_into(out)
        .map_err(|_| DecodeError::ClaimTooLong { claim, capacity: S })
}

/// Reads `aud` (one string or an array of strings) into `aud` in place.
fn audience_into<const S: usize, const A: usize>(
    reader: &mut Reader<'_>,
    aud: &mut Vec<String<S>, A>,
) -> Result<(), DecodeError> {
    let one = |reader: &mut Reader<'_>, aud: &mut Vec<String<S>, A>| {
        aud.push(String::new())
            .map_err(|_| DecodeError::TooManyAudiences { capacity: A })?;
        match aud.last_mut() {
            Some(slot) => string_claim_into(reader, ClaimName::Aud, slot),
            None => Ok(()),
        }
    };
    match reader.peek_value() {
        Some(b'"') => one(reader, aud),
        Some(b'[') => {
            reader.begin_array()?;
            let mut first = true;
            while reader.next_element(&mut first)? {
                one(reader, aud)?;
            }
            Ok(())
        }
        _ => {
            reader.skip_value()?;
            Err(DecodeError::InvalidClaimType {
                claim: ClaimName::Aud,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The two base64url decoders agree on every string of up to five characters over an
    /// alphabet with valid, padding and invalid characters, and on output buffers too small.
    #[test]
    fn both_base64url_decoders_agree() {
        let alphabet = b"AQgw_-=/+. 9z";
        let mut checked = 0u32;
        for len in 0..=5u32 {
            let combos = (alphabet.len() as u32).pow(len);
            for mut n in 0..combos {
                let mut input = [0u8; 6];
                for slot in input.iter_mut().take(len as usize) {
                    *slot = alphabet[(n % alphabet.len() as u32) as usize];
                    n /= alphabet.len() as u32;
                }
                let input = &input[..len as usize];
                for cap in [0usize, 1, 2, 3, 4, 8] {
                    let (mut a, mut b) = ([0u8; 8], [0u8; 8]);
                    let small = base64url_decode_small(input, &mut a[..cap]);
                    let fast = base64url_decode_fast(input, &mut b[..cap]);
                    assert_eq!(small, fast, "{input:?} into {cap}");
                    if let Some(n) = small {
                        assert_eq!(a[..n], b[..n], "{input:?}");
                    }
                    checked += 1;
                }
            }
        }
        assert!(checked > 1_000_000);
    }

    #[test]
    fn dots_find_the_payload() {
        assert_eq!(payload_segment("a.bc.d"), Ok(&b"bc"[..]));
        assert_eq!(
            payload_segment("..."),
            Err(DecodeError::Malformed { segments: 4 })
        );
        assert_eq!(
            payload_segment("a.b"),
            Err(DecodeError::Malformed { segments: 2 })
        );
        assert_eq!(
            payload_segment("ab"),
            Err(DecodeError::Malformed { segments: 1 })
        );
        assert_eq!(payload_segment("a.b.c.d.e"), Err(DecodeError::Encrypted));
        assert_eq!(payload_segment(".."), Ok(&b""[..]));
    }
}
