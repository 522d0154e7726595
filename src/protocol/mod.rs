//! The token endpoint's two dialects: Django REST Framework SimpleJWT and OAuth 2.0 (RFC 6749
//! section 6). Request bodies are written into caller buffers; answers are parsed from borrowed
//! bytes and classified as success, retry later, log in again, or fatal configuration.
//!
//! Nothing here performs I/O or keeps state: the [`Session`](crate::Session) calls it.

use core::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, Visitor};
use serde_json_core::de::Error as LibError;

use crate::json::{self, Key, RawStr, Seconds, Str};
use crate::time::Duration;

pub mod oauth2;
pub mod simplejwt;
mod write;

pub use oauth2::{ClientAuth, OAuth2, OAuth2Login, OAuthErrorCode};
pub use simplejwt::{Credentials, SimpleJwt};

/// Which refresh protocol a session speaks, with its endpoint paths and credentials.
///
/// Credentials are borrowed (`'c`): on a microcontroller they can live in flash.
#[derive(Clone, Copy)]
pub enum Protocol<'c> {
    /// Django REST Framework SimpleJWT.
    SimpleJwt(SimpleJwt<'c>),
    /// OAuth 2.0 token endpoint.
    OAuth2(OAuth2<'c>),
}

impl fmt::Debug for Protocol<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Protocol::SimpleJwt(p) => f.debug_tuple("SimpleJwt").field(p).finish(),
            Protocol::OAuth2(p) => f.debug_tuple("OAuth2").field(p).finish(),
        }
    }
}

/// An HTTP method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Method {
    /// `GET`.
    Get,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method's name on the wire.
    pub const fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

/// Which server a request is for: the token endpoint may live on another host than the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Endpoint {
    /// The API the application talks to.
    Api,
    /// The authorization server's token endpoint.
    Auth,
}

#[cfg(any(feature = "reqwest", feature = "reqwless"))]
impl Endpoint {
    /// `"API"` or `"token endpoint"`, for the adapters' messages.
    pub(crate) const fn label(self) -> &'static str {
        match self {
            Endpoint::Api => "API",
            Endpoint::Auth => "token endpoint",
        }
    }
}

/// A request to send, borrowed from the session and the caller's buffer.
///
/// `Debug` leaves out the body and the `Authorization` value: they carry secrets.
#[derive(Clone, Copy)]
pub struct Request<'a> {
    /// The method.
    pub method: Method,
    /// Which server.
    pub endpoint: Endpoint,
    /// The path (and query), starting with `/`.
    pub path: &'a str,
    /// The `Content-Type` of the body, if there is one.
    pub content_type: Option<&'a str>,
    /// The `Authorization` header value, if any (OAuth 2.0 HTTP Basic client authentication).
    pub authorization: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// `GET path` on the API.
    pub const fn get(path: &'a str) -> Self {
        Request {
            method: Method::Get,
            endpoint: Endpoint::Api,
            path,
            content_type: None,
            authorization: None,
            body: &[],
        }
    }

    /// `POST path` on the API with a body of type `content_type`.
    pub const fn post(path: &'a str, content_type: &'a str, body: &'a [u8]) -> Self {
        Request {
            method: Method::Post,
            endpoint: Endpoint::Api,
            path,
            content_type: Some(content_type),
            authorization: None,
            body,
        }
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Request")
            .field("method", &self.method)
            .field("endpoint", &self.endpoint)
            .field("path", &self.path)
            .field("content_type", &self.content_type)
            .field("authorization", &self.authorization.map(|_| "<redacted>"))
            .field("body_len", &self.body.len())
            .finish()
    }
}

/// `application/json`.
pub const JSON: &str = "application/json";
/// `application/x-www-form-urlencoded`.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// The token endpoint's answer, as the transport received it.
#[derive(Clone, Copy)]
pub struct TokenResponse<'b> {
    /// The HTTP status code.
    pub status: u16,
    /// The body.
    pub body: &'b [u8],
    /// The `Retry-After` header, when it gave a number of seconds.
    pub retry_after: Option<Duration>,
}

impl fmt::Debug for TokenResponse<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenResponse")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .field("retry_after", &self.retry_after)
            .finish()
    }
}

/// What the session had asked the token endpoint for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Grant {
    /// A refresh with the refresh token.
    Refresh,
    /// A login with credentials (SimpleJWT username and password, OAuth 2.0 client credentials).
    Login,
}

/// Which token an answer problem concerns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum TokenKind {
    /// The access token.
    Access,
    /// The refresh token.
    Refresh,
}

/// Why a 2xx token endpoint answer could not be read: its shape, before the session judges the
/// tokens in it ([`TokenError`](crate::TokenError)). The session's tokens are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum AnswerError {
    /// The body is not valid UTF-8 JSON (truncated, HTML from a proxy...).
    Json,
    /// A success answer without an access token.
    MissingAccessToken,
    /// A token member whose value is not a JSON string.
    NotAString {
        /// Which token.
        token: TokenKind,
    },
    /// `token_type` is not `Bearer`.
    UnsupportedTokenType,
    /// `expires_in` is not a non-negative integer.
    InvalidExpiresIn,
    /// The same field appears twice.
    DuplicateField,
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AnswerError::Json => f.write_str("the answer is not valid JSON"),
            AnswerError::MissingAccessToken => f.write_str("the answer has no access token"),
            AnswerError::NotAString { token } => {
                write!(f, "the {token:?} token is not a string")
            }
            AnswerError::UnsupportedTokenType => f.write_str("token_type is not Bearer"),
            AnswerError::InvalidExpiresIn => f.write_str("expires_in is not a whole number"),
            AnswerError::DuplicateField => f.write_str("a field appears twice in the answer"),
        }
    }
}

/// How to react to a failed refresh or login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FailureClass {
    /// Transient: back off and try again. The tokens are kept.
    RetryLater,
    /// The refresh token (or the credentials) were definitively rejected: log in again.
    LoginAgain,
    /// A configuration problem (wrong path, client, grant type or scope): retrying will not
    /// help. The tokens are kept.
    Fatal,
}

/// How the protocol classifies a token endpoint's answer that gives no tokens, from its status
/// and body. The protocol layer's error: the session adds what it saw itself in
/// [`RefreshError`](crate::RefreshError).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum EndpointError {
    /// 5xx, 429, 425, 408, or an OAuth `server_error` / `temporarily_unavailable`.
    Unavailable {
        /// The status code.
        status: u16,
        /// The server's `Retry-After`, when given in seconds.
        retry_after: Option<Duration>,
    },
    /// A 2xx answer that could not be read.
    BadAnswer(AnswerError),
    /// The refresh token was rejected for good (SimpleJWT `token_not_valid`, OAuth
    /// `invalid_grant`): expired, revoked, or already used after a rotation.
    RefreshTokenRejected,
    /// The login credentials were rejected (SimpleJWT 401, OAuth `invalid_client` on a
    /// client-credentials login).
    CredentialsRejected,
    /// The server names a configuration problem, or the status makes no sense for a token
    /// endpoint (404, redirects, 400 from SimpleJWT).
    Configuration {
        /// The status code.
        status: u16,
        /// The OAuth 2.0 `error` code, when there was one.
        code: Option<OAuthErrorCode>,
    },
}

impl EndpointError {
    /// Retry later, log in again, or fatal.
    pub const fn class(&self) -> FailureClass {
        match self {
            EndpointError::Unavailable { .. } | EndpointError::BadAnswer(_) => {
                FailureClass::RetryLater
            }
            EndpointError::RefreshTokenRejected | EndpointError::CredentialsRejected => {
                FailureClass::LoginAgain
            }
            EndpointError::Configuration { .. } => FailureClass::Fatal,
        }
    }
}

impl fmt::Display for EndpointError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EndpointError::Unavailable { status, .. } => {
                write!(f, "token endpoint unavailable (status {status})")
            }
            EndpointError::BadAnswer(e) => write!(f, "unusable token endpoint answer: {e}"),
            EndpointError::RefreshTokenRejected => f.write_str("the refresh token was rejected"),
            EndpointError::CredentialsRejected => {
                f.write_str("the login credentials were rejected")
            }
            EndpointError::Configuration { status, code } => match code {
                Some(code) => write!(
                    f,
                    "configuration problem: {} (status {status})",
                    code.as_str()
                ),
                None => write!(f, "configuration problem (status {status})"),
            },
        }
    }
}

impl core::error::Error for EndpointError {}

/// A successful answer, borrowed from the body. Tokens are still JSON-escaped. No `Debug`: it
/// holds tokens.
#[derive(Clone, Copy)]
pub(crate) struct Tokens<'b> {
    pub(crate) access: RawStr<'b>,
    pub(crate) refresh: Option<RawStr<'b>>,
    pub(crate) expires_in: Option<u64>,
}

#[cfg(test)]
impl fmt::Debug for Tokens<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tokens { .. }")
    }
}

/// Classification shared by both dialects for statuses that say nothing protocol-specific.
pub(crate) fn transient_status(
    status: u16,
    retry_after: Option<Duration>,
) -> Option<EndpointError> {
    match status {
        408 | 425 | 429 | 500..=599 => Some(EndpointError::Unavailable {
            status,
            retry_after,
        }),
        _ => None,
    }
}

/// Which member names a success answer uses.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `access`, `refresh`.
    SimpleJwt,
    /// `access_token`, `refresh_token`, `token_type`, `expires_in`.
    OAuth2,
}

/// A member of a success answer that the crate reads.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Field {
    Access,
    Refresh,
    TokenType,
    ExpiresIn,
}

impl Dialect {
    fn field(self, key: RawStr<'_>) -> Option<Field> {
        let names: &[(&str, Field)] = match self {
            Dialect::SimpleJwt => &[("access", Field::Access), ("refresh", Field::Refresh)],
            Dialect::OAuth2 => &[
                ("access_token", Field::Access),
                ("refresh_token", Field::Refresh),
                ("token_type", Field::TokenType),
                ("expires_in", Field::ExpiresIn),
            ],
        };
        names
            .iter()
            .find(|(name, _)| key.is(name))
            .map(|&(_, field)| field)
    }
}

/// What the answer visitor learnt while `serde-json-core` read the body: the crate's own
/// verdict, or the member whose value was being read when the library failed.
#[derive(Default)]
struct AnswerContext {
    error: Option<AnswerError>,
    current: Option<Field>,
}

impl AnswerContext {
    /// Records the crate's verdict and stops the library with an error of its own type.
    fn fail<E: de::Error>(&mut self, error: AnswerError) -> E {
        self.error = Some(error);
        E::custom("")
    }

    /// The typed error for a failed parse.
    fn error(&self, lib: LibError) -> AnswerError {
        if let Some(error) = self.error {
            return error;
        }
        match (self.current, lib) {
            (Some(Field::Access), LibError::InvalidType) => AnswerError::NotAString {
                token: TokenKind::Access,
            },
            (Some(Field::Refresh), LibError::InvalidType) => AnswerError::NotAString {
                token: TokenKind::Refresh,
            },
            (Some(Field::TokenType), LibError::InvalidType) => AnswerError::UnsupportedTokenType,
            // Negative, too large, of the wrong type, or (without `float-dates`) not a whole
            // number: the library stops after `59` of `59.9`, at the next member.
            (
                Some(Field::ExpiresIn),
                LibError::InvalidType
                | LibError::InvalidNumber
                | LibError::ExpectedObjectCommaOrEnd
                | LibError::CustomError,
            ) => AnswerError::InvalidExpiresIn,
            _ => AnswerError::Json,
        }
    }
}

/// Reads a success answer's tokens, borrowed from the body and still escaped.
pub(crate) fn tokens(body: &[u8], dialect: Dialect) -> Result<Tokens<'_>, AnswerError> {
    json::check_depth(body).map_err(|_| AnswerError::Json)?;
    let read = |context: &mut AnswerContext, expires_in_text| {
        json::parse(
            body,
            TokensVisitor {
                dialect,
                expires_in_text,
                context,
            },
        )
    };
    let mut context = AnswerContext::default();
    let mut result = read(&mut context, false);
    // Some servers send `"expires_in": "3600"`. `serde-json-core` cannot read a value whose
    // type it is not told, so such an answer is read a second time with a string there.
    // (The library calls a string where it wanted a number `InvalidType`, or with
    // `float-dates` `InvalidNumber`.)
    if let (Err(LibError::InvalidType | LibError::InvalidNumber), None, Some(Field::ExpiresIn)) =
        (&result, context.error, context.current)
    {
        context = AnswerContext::default();
        result = read(&mut context, true);
    }
    let tokens = result.map_err(|lib| context.error(lib))?;
    match tokens.access {
        Some(access) => Ok(Tokens {
            access,
            refresh: tokens.refresh,
            expires_in: tokens.expires_in,
        }),
        None => Err(AnswerError::MissingAccessToken),
    }
}

/// A success answer as read, before the access token is required.
#[derive(Default)]
struct Members<'b> {
    access: Option<RawStr<'b>>,
    refresh: Option<RawStr<'b>>,
    expires_in: Option<u64>,
    token_type: bool,
}

struct TokensVisitor<'x> {
    dialect: Dialect,
    /// Read `expires_in` as a string of digits rather than a number.
    expires_in_text: bool,
    context: &'x mut AnswerContext,
}

impl<'de> DeserializeSeed<'de> for TokensVisitor<'_> {
    type Value = Members<'de>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for TokensVisitor<'_> {
    type Value = Members<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a token answer")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let mut members = Members::default();
        while let Some(Key(key)) = map.next_key()? {
            self.context.current = self.dialect.field(key);
            let Some(field) = self.context.current else {
                map.next_value::<IgnoredAny>()?;
                continue;
            };
            let duplicate = match field {
                Field::Access => members.access.is_some(),
                Field::Refresh => members.refresh.is_some(),
                Field::TokenType => members.token_type,
                Field::ExpiresIn => members.expires_in.is_some(),
            };
            if duplicate {
                return Err(self.context.fail(AnswerError::DuplicateField));
            }
            match field {
                Field::Access => members.access = Some(map.next_value::<Str<'de>>()?.0),
                Field::Refresh => members.refresh = Some(map.next_value::<Str<'de>>()?.0),
                Field::TokenType => {
                    let Str(kind) = map.next_value()?;
                    if !kind
                        .unescaped()
                        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"))
                    {
                        return Err(self.context.fail(AnswerError::UnsupportedTokenType));
                    }
                    members.token_type = true;
                }
                Field::ExpiresIn => {
                    let secs = if self.expires_in_text {
                        let Str(text) = map.next_value()?;
                        text.unescaped()
                            .filter(|t| t.bytes().all(|b| b.is_ascii_digit()))
                            .and_then(|t| t.parse().ok())
                    } else {
                        map.next_value::<Seconds>()?.0
                    };
                    let secs =
                        secs.ok_or_else(|| self.context.fail(AnswerError::InvalidExpiresIn))?;
                    members.expires_in = Some(secs);
                }
            }
        }
        Ok(members)
    }
}

/// The member `key` of a JSON object body (escaped names included), when its value is a plain
/// string (an error answer's code): one copy for both dialects. A body that names `key` twice
/// has no such member: neither copy is read, as success answers refuse duplicates
/// ([`AnswerError::DuplicateField`]). Otherwise whichever copy came last would win, and
/// `{"code":"x","code":"token_not_valid"}` would drop a refresh token that the reverse order
/// keeps.
pub(crate) fn string_member<'b>(body: &'b [u8], key: &str) -> Option<&'b str> {
    json::check_depth(body).ok()?;
    json::parse(body, Member { key }).ok()??.unescaped()
}

/// Finds one string member of an object.
struct Member<'k> {
    key: &'k str,
}

impl<'de> DeserializeSeed<'de> for Member<'_> {
    type Value = Option<RawStr<'de>>;

    fn deserialize<D: de::Deserializer<'de>>(
        self,
        deserializer: D,
    ) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Member<'_> {
    type Value = Option<RawStr<'de>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
        let (mut found, mut duplicate) = (None, false);
        while let Some(Key(name)) = map.next_key()? {
            if name.is(self.key) && found.is_none() && !duplicate {
                found = Some(map.next_value::<Str<'de>>()?.0);
            } else {
                // A second copy of `key` (whatever its value) voids the first: the rest of the
                // object is still read, so that a body that is no JSON object has no code.
                if name.is(self.key) {
                    found = None;
                    duplicate = true;
                }
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(found)
    }
}

/// Whether `c` may appear in an access token, which goes into an `Authorization` header:
/// visible ASCII, no space (RFC 6750 `b64token` and then some).
pub(crate) fn is_access_char(c: char) -> bool {
    c.is_ascii_graphic()
}

/// Whether `c` may appear in a refresh token: RFC 6749 `VSCHAR` (visible ASCII and space).
pub(crate) fn is_refresh_char(c: char) -> bool {
    c == ' ' || c.is_ascii_graphic()
}

/// The buffer was too small for a request; `needed` bytes would do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct BufferTooSmall {
    /// Bytes the request needs.
    pub needed: usize,
}

impl fmt::Display for BufferTooSmall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request buffer is too small: {} bytes needed",
            self.needed
        )
    }
}

impl core::error::Error for BufferTooSmall {}

impl Protocol<'_> {
    /// Whether this configuration can log in by itself (credentials or client credentials).
    pub fn can_login(&self) -> bool {
        match self {
            Protocol::SimpleJwt(p) => p.credentials.is_some(),
            Protocol::OAuth2(p) => p.login == OAuth2Login::ClientCredentials,
        }
    }

    /// Writes the refresh request for `refresh_token` into `buf`.
    pub fn refresh_request<'a>(
        &'a self,
        refresh_token: &str,
        buf: &'a mut [u8],
    ) -> Result<Request<'a>, BufferTooSmall> {
        match self {
            Protocol::SimpleJwt(p) => p.refresh_request(refresh_token, buf),
            Protocol::OAuth2(p) => p.refresh_request(refresh_token, buf),
        }
    }

    /// Writes the login request into `buf`; `None` when no login is configured.
    pub fn login_request<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> Option<Result<Request<'a>, BufferTooSmall>> {
        match self {
            Protocol::SimpleJwt(p) => p.login_request(buf),
            Protocol::OAuth2(p) => p.login_request(buf),
        }
    }

    /// Reads the token endpoint's answer to a `grant` request.
    pub(crate) fn parse<'b>(
        &self,
        grant: Grant,
        answer: &TokenResponse<'b>,
    ) -> Result<Tokens<'b>, EndpointError> {
        let status = answer.status;
        if (200..300).contains(&status) {
            let dialect = match self {
                Protocol::SimpleJwt(_) => Dialect::SimpleJwt,
                Protocol::OAuth2(_) => Dialect::OAuth2,
            };
            return tokens(answer.body, dialect).map_err(EndpointError::BadAnswer);
        }
        if let Some(transient) = transient_status(status, answer.retry_after) {
            return Err(transient);
        }
        Err(match self {
            Protocol::SimpleJwt(_) => simplejwt::error(grant, answer),
            Protocol::OAuth2(_) => oauth2::error(grant, answer),
        })
    }
}
