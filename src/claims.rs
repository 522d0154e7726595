//! Reading a JWT's registered claims into fixed-size buffers, without allocating.
//!
//! The decoder splits a compact JWS (`header.payload.signature`), base64url-decodes the payload
//! into a scratch buffer and reads `exp`, `nbf`, `iat`, `iss`, `sub`, `jti` and `aud`, skipping
//! every other claim. **It does not verify the signature**: decoded claims are scheduling hints
//! only (RFC 8725 section 3.10), and the server remains the judge of a token's validity.

use core::fmt;

use base64::alphabet;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;
use heapless::{String, Vec};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json_core::de::Error as LibError;

use crate::json::{self, Key, RawStr, Seconds, Str};
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
        match key.unescaped() {
            Some(plain) => ClaimName::from_plain(plain),
            None => ClaimName::ALL
                .iter()
                .copied()
                .find(|claim| key.is(claim.as_str())),
        }
    }

    /// Recognises an unescaped member key (one `match`, compiled to a length switch).
    fn from_plain(key: &str) -> Option<ClaimName> {
        Some(match key {
            "exp" => ClaimName::Exp,
            "nbf" => ClaimName::Nbf,
            "iat" => ClaimName::Iat,
            "iss" => ClaimName::Iss,
            "sub" => ClaimName::Sub,
            "jti" => ClaimName::Jti,
            "aud" => ClaimName::Aud,
            _ => return None,
        })
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
    /// The payload does not start with a JSON object (`serde-json-core` cannot tell another
    /// JSON value from text that is not JSON at all).
    NotAnObject,
    /// The payload is not valid JSON (`serde-json-core` reports no position), or, without the
    /// `float-dates` feature, the library could not read it at all.
    Json,
    /// The payload nests arrays or objects deeper than 16 levels, the top-level object
    /// included: the parser recurses, so deeper payloads are refused before parsing.
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
            DecodeError::Json => "json",
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
            DecodeError::Json => f.write_str("the payload is not valid JSON"),
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
        let (iss, sub, jti, aud) = (
            &mut claims.iss,
            &mut claims.sub,
            &mut claims.jti,
            &mut claims.aud,
        );
        let mut keep = |claim: ClaimName, raw: RawStr<'_>| {
            let slot = match claim {
                ClaimName::Iss => iss.insert(String::new()),
                ClaimName::Sub => sub.insert(String::new()),
                ClaimName::Jti => jti.insert(String::new()),
                _ => {
                    aud.push(String::new())
                        .map_err(|_| DecodeError::TooManyAudiences { capacity: A })?;
                    aud.last_mut()
                        .ok_or(DecodeError::TooManyAudiences { capacity: A })?
                }
            };
            decode_string(raw, claim, slot)
        };
        let times = read_claims(decode_payload(token, scratch)?, Some(&mut keep))?;
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
        read_claims(decode_payload(token, scratch)?, None)
    }
}

/// Unescapes a string claim into its buffer.
fn decode_string<const S: usize>(
    raw: RawStr<'_>,
    claim: ClaimName,
    out: &mut String<S>,
) -> Result<(), DecodeError> {
    let too_long = DecodeError::ClaimTooLong { claim, capacity: S };
    if let Some(plain) = raw.unescaped().filter(|_| raw.is_strict_json()) {
        return out.push_str(plain).map_err(|_| too_long);
    }
    // An invalid escape (or a UTF-16 surrogate pair, which `serde-json-core` refuses) is not
    // JSON the library reads; a long string is the claim's own error.
    raw.try_for_each_char(|c| out.push(c).map_err(|_| too_long), DecodeError::Json)
}

/// base64url (RFC 4648 section 5): padding optional but never more than the canonical amount,
/// non-zero trailing bits refused.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Splits the token and base64url-decodes its payload into `scratch`.
fn decode_payload<'s>(token: &str, scratch: &'s mut [u8]) -> Result<&'s [u8], DecodeError> {
    let payload = payload_segment(token)?;
    // The decoded length, from the characters before any padding, so that a payload that
    // does not fit is reported with what it needs.
    let unpadded = payload
        .len()
        .saturating_sub(payload.iter().rev().take_while(|&&b| b == b'=').count());
    if unpadded == 0 {
        return Err(DecodeError::EmptyPayload);
    }
    let needed = (unpadded / 4 * 3).saturating_add((unpadded % 4).saturating_sub(1));
    let capacity = scratch.len();
    let out = scratch
        .get_mut(..needed)
        .ok_or(DecodeError::TooLarge { needed, capacity })?;
    let written = BASE64URL
        .decode_slice(payload, out)
        .map_err(|_| DecodeError::Base64)?;
    // UTF-8 is checked by `serde-json-core` in every string it reads, where any non-ASCII
    // byte of a valid payload must be. A byte inside a skipped number or literal is not checked
    // (the library skips those leniently), but nothing is taken from such a value.
    out.get(..written).ok_or(DecodeError::Base64)
}

/// The payload segment of a compact JWS (between the first and the second of exactly two
/// dots), or the error for another shape.
fn payload_segment(token: &str) -> Result<&[u8], DecodeError> {
    // `str::find` looks for an ASCII byte a word at a time.
    let Some(first) = token.find('.') else {
        return Err(DecodeError::Malformed { segments: 1 });
    };
    let after = token.get(first.saturating_add(1)..).unwrap_or_default();
    let Some(length) = after.find('.') else {
        return Err(DecodeError::Malformed { segments: 2 });
    };
    let (payload, rest) = after.split_at_checked(length).unwrap_or_default();
    match rest.bytes().filter(|&b| b == b'.').count() {
        1 => Ok(payload.as_bytes()),
        3 => Err(DecodeError::Encrypted),
        dots => Err(DecodeError::Malformed {
            segments: dots.saturating_add(2),
        }),
    }
}

/// Hands a string claim, still escaped, to the caller that keeps it.
type StringSink<'x, 'de> = &'x mut dyn FnMut(ClaimName, RawStr<'de>) -> Result<(), DecodeError>;

/// What the visitors learnt while `serde-json-core` read the payload: the crate's own verdict,
/// or the claim whose value was being read when the library failed.
#[derive(Default)]
struct Context {
    error: Option<DecodeError>,
    current: Option<ClaimName>,
}

impl Context {
    /// Records the crate's verdict and stops the library with an error of its own type.
    fn fail<E: de::Error>(&mut self, error: DecodeError) -> E {
        self.error = Some(error);
        E::custom("")
    }

    /// The typed error for a failed parse: the crate's own verdict when it gave one, else the
    /// library's error read in the light of the claim being read.
    fn error(self, lib: LibError) -> DecodeError {
        if let Some(error) = self.error {
            return error;
        }
        let claim = self.current;
        match (claim, lib) {
            (_, LibError::InvalidUnicodeCodePoint) => DecodeError::Utf8,
            (None, LibError::InvalidType) => DecodeError::NotAnObject,
            // A date that is not a whole number of seconds, of the wrong type, negative or
            // too large; without `float-dates` the library stops after the integer part of
            // `1.5` or `1e9`, at the next member.
            (
                Some(claim @ (ClaimName::Exp | ClaimName::Nbf | ClaimName::Iat)),
                LibError::InvalidType
                | LibError::InvalidNumber
                | LibError::ExpectedObjectCommaOrEnd
                | LibError::CustomError,
            ) => DecodeError::InvalidNumericDate { claim },
            (Some(claim), LibError::InvalidType) => DecodeError::InvalidClaimType { claim },
            _ => DecodeError::Json,
        }
    }
}

/// Reads the time claims, hands every other registered claim to `strings` (or skips it when
/// there is none) and skips unknown ones. One copy serves both `Claims` and `TimeClaims`.
fn read_claims<'de>(
    payload: &'de [u8],
    strings: Option<StringSink<'_, 'de>>,
) -> Result<TimeClaims, DecodeError> {
    json::check_depth(payload).map_err(|_| DecodeError::TooDeep)?;
    let mut context = Context::default();
    let visitor = ClaimsVisitor {
        strings,
        context: &mut context,
    };
    let result = json::parse(payload, visitor);
    result.map_err(|lib| context.error(lib))
}

/// The top-level object, member by member.
struct ClaimsVisitor<'x, 'y, 'de> {
    strings: Option<StringSink<'y, 'de>>,
    context: &'x mut Context,
}

impl<'de> DeserializeSeed<'de> for ClaimsVisitor<'_, '_, 'de> {
    type Value = TimeClaims;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<TimeClaims, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for ClaimsVisitor<'_, '_, 'de> {
    type Value = TimeClaims;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(mut self, mut map: M) -> Result<TimeClaims, M::Error> {
        let mut times = TimeClaims::default();
        let mut seen = 0u8;
        while let Some(Key(key)) = map.next_key()? {
            self.context.current = None;
            let Some(claim) = ClaimName::from_key(key) else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            if seen & claim.bit() != 0 {
                return Err(self.context.fail(DecodeError::DuplicateClaim { claim }));
            }
            seen |= claim.bit();
            self.context.current = Some(claim);
            let slot = match claim {
                ClaimName::Exp => &mut times.exp,
                ClaimName::Nbf => &mut times.nbf,
                ClaimName::Iat => &mut times.iat,
                _ => {
                    match self.strings.as_mut() {
                        None => map.next_value::<IgnoredAny>().map(drop)?,
                        Some(sink) if claim == ClaimName::Aud => map.next_value_seed(Audience {
                            sink: &mut **sink,
                            context: &mut *self.context,
                        })?,
                        Some(sink) => {
                            let Str(value) = map.next_value()?;
                            sink(claim, value).map_err(|e| self.context.fail(e))?;
                        }
                    }
                    continue;
                }
            };
            let Seconds(secs) = map.next_value()?;
            let date = secs.and_then(UnixTime::from_secs);
            *slot = Some(
                date.ok_or_else(|| self.context.fail(DecodeError::InvalidNumericDate { claim }))?,
            );
        }
        Ok(times)
    }
}

/// `aud`: one string or an array of strings. `serde-json-core` has no `deserialize_any`, but
/// its `deserialize_ignored_any` lends strings and arrays to the visitor and reports numbers
/// and literals as a unit.
struct Audience<'x, 'y, 'de> {
    sink: &'y mut dyn FnMut(ClaimName, RawStr<'de>) -> Result<(), DecodeError>,
    context: &'x mut Context,
}

impl<'de> DeserializeSeed<'de> for Audience<'_, '_, 'de> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_ignored_any(self)
    }
}

impl<'de> Audience<'_, '_, 'de> {
    fn one<E: de::Error>(&mut self, raw: RawStr<'de>) -> Result<(), E> {
        (self.sink)(ClaimName::Aud, raw).map_err(|e| self.context.fail(e))
    }

    fn wrong_type<E: de::Error>(self) -> Result<(), E> {
        Err(self.context.fail(DecodeError::InvalidClaimType {
            claim: ClaimName::Aud,
        }))
    }
}

impl<'de> Visitor<'de> for Audience<'_, '_, 'de> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string or an array of strings")
    }

    fn visit_borrowed_str<E: de::Error>(mut self, v: &'de str) -> Result<(), E> {
        self.one(RawStr::json(v))
    }

    fn visit_seq<Q: SeqAccess<'de>>(mut self, mut seq: Q) -> Result<(), Q::Error> {
        // An element of another type is the library's `InvalidType`, read as
        // `InvalidClaimType` because `aud` is the claim being read.
        while let Some(Str(value)) = seq.next_element()? {
            self.one(value)?;
        }
        Ok(())
    }

    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.wrong_type()
    }

    fn visit_map<M: MapAccess<'de>>(self, _: M) -> Result<(), M::Error> {
        self.wrong_type()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
