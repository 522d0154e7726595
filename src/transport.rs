//! What the drivers need from your HTTP stack: send one borrowed [`Request`] and write the
//! answer's body into a caller buffer. [`Transport`] is blocking; [`AsyncTransport`] (feature
//! `async`) is its `async fn` twin. Errors follow `embedded-io`'s `ErrorType` pattern.
//!
//! The crate never opens sockets: implement these traits over reqwless, embassy-net, a modem's
//! AT commands, or `std::net` (see `examples/std_http`).

use core::fmt;

use crate::time::Duration;

pub use crate::protocol::{Endpoint, Method, Request};

/// What went wrong in a transport, coarsely, so that the drivers can react without knowing
/// your stack's error type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The answer's body did not fit the buffer: never truncated, always this error.
    BufferTooSmall,
    /// No (complete) answer in time.
    TimedOut,
    /// The connection failed or broke mid-answer, or the answer was not valid HTTP.
    Other,
}

/// A transport error.
pub trait Error: fmt::Debug {
    /// Its kind.
    fn kind(&self) -> ErrorKind;
}

impl Error for ErrorKind {
    fn kind(&self) -> ErrorKind {
        *self
    }
}

/// The error type of a transport (as in `embedded-io`).
pub trait ErrorType {
    /// The transport's error.
    type Error: Error;
}

impl<T: ErrorType + ?Sized> ErrorType for &mut T {
    type Error = T::Error;
}

/// The challenge of a `WWW-Authenticate: Bearer` header (RFC 6750 section 3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum BearerError {
    /// `Bearer` without an `error` (no or unreadable credentials; SimpleJWT's `realm="api"`).
    None,
    /// `error="invalid_token"`: expired, revoked or malformed: refresh.
    InvalidToken,
    /// `error="insufficient_scope"`: refreshing will not help.
    InsufficientScope,
    /// `error="invalid_request"`.
    InvalidRequest,
    /// Another error code.
    Other,
}

impl BearerError {
    /// Reads a `WWW-Authenticate` header value; `None` when it is not a Bearer challenge.
    pub fn parse(header: &str) -> Option<BearerError> {
        let rest = header.trim_start();
        let scheme = rest.get(..6)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return None;
        }
        let params = rest.get(6..)?;
        if !params.is_empty() && !params.starts_with(' ') {
            return None;
        }
        let code = params.split(',').find_map(|param| {
            let (name, value) = param.split_once('=')?;
            name.trim()
                .eq_ignore_ascii_case("error")
                .then(|| value.trim().trim_matches('"'))
        });
        Some(match code {
            None => BearerError::None,
            Some("invalid_token") => BearerError::InvalidToken,
            Some("insufficient_scope") => BearerError::InsufficientScope,
            Some("invalid_request") => BearerError::InvalidRequest,
            Some(_) => BearerError::Other,
        })
    }
}

/// The answer to a request, its body written into the caller's buffer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Response {
    /// The HTTP status code.
    pub status: u16,
    /// How many bytes of the body buffer hold the body.
    pub body_len: usize,
    /// `Retry-After`, when it gave a number of seconds.
    pub retry_after: Option<Duration>,
    /// The `WWW-Authenticate: Bearer` challenge, if there was one.
    pub bearer_error: Option<BearerError>,
}

impl Response {
    /// A response with this status and body length, and no headers of interest.
    pub const fn new(status: u16, body_len: usize) -> Self {
        Response {
            status,
            body_len,
            retry_after: None,
            bearer_error: None,
        }
    }

    /// Whether the status is 2xx.
    pub const fn is_success(&self) -> bool {
        self.status >= 200 && self.status < 300
    }
}

/// Parses a `Retry-After` header value given in seconds (the HTTP-date form is ignored).
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    value.parse::<u64>().ok().map(Duration::from_secs)
}

/// A blocking HTTP client for one request at a time.
pub trait Transport: ErrorType {
    /// Sends `request` to its [`Endpoint`] and writes the answer's body into `body`.
    ///
    /// Send `Connection: close` or manage keep-alive yourself; set a read timeout. Redirects
    /// must not be followed (a token endpoint that redirects is misconfigured). A body larger
    /// than `body` is an error of kind [`ErrorKind::BufferTooSmall`], never a truncation.
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, Self::Error>;
}

impl<T: Transport + ?Sized> Transport for &mut T {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, Self::Error> {
        (**self).send(request, body)
    }
}

/// The async twin of [`Transport`] (feature `async`).
#[cfg(feature = "async")]
#[allow(
    async_fn_in_trait,
    reason = "embedded executors are single-threaded; callers that need Send futures can wrap"
)]
pub trait AsyncTransport: ErrorType {
    /// Sends `request` and writes the answer's body into `body`, as [`Transport::send`].
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Self::Error>;
}

#[cfg(feature = "async")]
#[allow(
    async_fn_in_trait,
    reason = "embedded executors are single-threaded; callers that need Send futures can wrap"
)]
impl<T: AsyncTransport + ?Sized> AsyncTransport for &mut T {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Self::Error> {
        (**self).send(request, body).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn www_authenticate_challenges() {
        assert_eq!(
            BearerError::parse(r#"Bearer realm="api""#),
            Some(BearerError::None)
        );
        assert_eq!(
            BearerError::parse(
                r#"Bearer realm="example", error="invalid_token", error_description="The access token expired""#
            ),
            Some(BearerError::InvalidToken)
        );
        assert_eq!(
            BearerError::parse(r#"bearer error="insufficient_scope""#),
            Some(BearerError::InsufficientScope)
        );
        assert_eq!(BearerError::parse("Bearer"), Some(BearerError::None));
        assert_eq!(BearerError::parse(r#"Basic realm="x""#), None);
        assert_eq!(BearerError::parse("Bearerx"), None);
        assert_eq!(BearerError::parse(""), None);
    }

    #[test]
    fn retry_after_seconds_only() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), None);
        assert_eq!(parse_retry_after("-1"), None);
        assert_eq!(parse_retry_after(""), None);
        assert_eq!(parse_retry_after("99999999999999999999999"), None);
    }
}
