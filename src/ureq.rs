//! A ready blocking [`Transport`] over [ureq](https://docs.rs/ureq) 3 (feature `ureq`, host
//! only): [`UreqTransport`] maps each [`Endpoint`] to a base URL and reads every answer straight
//! into the caller's buffer; [`UreqError`] says what went wrong, with its [`ErrorKind`].
//!
//! # TLS
//! This crate depends on ureq without its default features, so without TLS: only `http://`
//! URLs work. For `https://`, turn on ureq's `rustls` (or `native-tls`) feature in your own
//! `Cargo.toml`; Cargo unifies the features and this transport then speaks TLS too:
//!
//! ```toml
//! [dependencies]
//! jwt-refresh = { version = "0.1", features = ["ureq"] }
//! ureq = { version = "3", default-features = false, features = ["rustls"] }
//! ```
//!
//! # What it guarantees
//! - Non-2xx statuses are answers, not errors, and redirects are not followed: a 3xx is
//!   returned as it is (the session reports a redirecting token endpoint as a configuration
//!   problem and backs off).
//! - The body goes straight into the caller's buffer. An answer that does not fit is an error
//!   of kind [`ErrorKind::BufferTooSmall`] (the buffer is wiped), never a truncation, and
//!   nothing larger than the buffer is ever read into memory.
//! - `Retry-After` (in seconds) and a `WWW-Authenticate: Bearer` challenge are reported in the
//!   [`Response`].
//! - Token requests never reuse a connection: they go through their own agent, which keeps no
//!   idle connections, and say `Connection: close`. A keep-alive connection that the server
//!   has closed (often right after a 401) can therefore never fail a refresh. API requests
//!   reuse connections; ureq checks an idle one before sending on it.
//! - A timeout bounds each whole request, answer body included:
//!   [`UreqTransport::DEFAULT_TIMEOUT`] unless configured.
//!
//! Like ureq itself, the agents honour the `HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY` and
//! `NO_PROXY` environment variables unless configured otherwise ([`UreqTransport::with_config`]
//! with `.proxy(None)`).

use core::fmt;
use std::io::{self, Read};
use std::time::Duration as StdDuration;

use ::ureq::config::ConfigBuilder;
use ::ureq::http::{self, header, HeaderValue};
use ::ureq::typestate::AgentScope;
use ::ureq::Agent;

use crate::transport::{
    parse_retry_after, BearerError, Endpoint, ErrorKind, ErrorType, Method, Request, Response,
    Transport,
};

/// A blocking [`Transport`] over ureq 3: one agent for the API, one (without idle connections)
/// for the token endpoint.
///
/// `Debug` shows the base URLs (which may not carry credentials), never a request.
///
/// ```no_run
/// use jwt_refresh::protocol::{Credentials, SimpleJwt};
/// use jwt_refresh::ureq::UreqTransport;
/// use jwt_refresh::{Client, FileStore, Protocol, RefreshPolicy, Request, Session};
/// use jwt_refresh::{StdDelay, SystemClock};
///
/// // The API and its token endpoint (here on the same server).
/// let transport = UreqTransport::new("http://127.0.0.1:8000", "http://127.0.0.1:8000")?;
/// let protocol = Protocol::SimpleJwt(SimpleJwt {
///     credentials: Some(Credentials { username: "device", password: "secret" }),
///     ..SimpleJwt::default()
/// });
/// let session: Session<'_> = Session::new(protocol, RefreshPolicy::default());
/// let store = FileStore::new("refresh-token");
/// let mut scratch = [0u8; 4096];
/// let mut client =
///     Client::new(session, transport, SystemClock::new(), StdDelay, store, &mut scratch);
/// client.restore()?;
///
/// let mut body = [0u8; 16 * 1024];
/// let response = client.send(&Request::get("/api/protected/"), &mut body)?;
/// println!("{}: {}", response.status, String::from_utf8_lossy(&body[..response.body_len]));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct UreqTransport {
    api: Agent,
    auth: Agent,
    api_base: String,
    auth_base: String,
}

impl UreqTransport {
    /// The timeout of a whole request (connection, request, answer and body) unless
    /// configured otherwise.
    pub const DEFAULT_TIMEOUT: StdDuration = StdDuration::from_secs(10);

    /// A transport sending API requests under `api_base` and token requests under `auth_base`
    /// (`http://host[:port][/prefix]`, or `https://` with a TLS feature of ureq; a trailing
    /// slash is ignored), with [`DEFAULT_TIMEOUT`](Self::DEFAULT_TIMEOUT).
    pub fn new(api_base: &str, auth_base: &str) -> Result<Self, BaseUrlError> {
        Self::with_config(api_base, auth_base, |config| config)
    }

    /// As [`new`](Self::new), with this timeout for each whole request.
    pub fn with_timeout(
        api_base: &str,
        auth_base: &str,
        timeout: StdDuration,
    ) -> Result<Self, BaseUrlError> {
        Self::with_config(api_base, auth_base, |config| {
            config.timeout_global(Some(timeout))
        })
    }

    /// As [`new`](Self::new), with ureq's agent configuration adjusted by `configure` (a
    /// proxy, TLS settings, other timeouts, a `User-Agent`). It is given a builder that
    /// already holds the default timeout and is called once for each of the two agents.
    ///
    /// What the [`Transport`] contract needs is set after it, whatever it did: statuses as
    /// answers (`http_status_as_error(false)`), no redirects followed (`max_redirects(0)`,
    /// `max_redirects_will_error(false)`), and no idle connections kept for token requests.
    pub fn with_config(
        api_base: &str,
        auth_base: &str,
        configure: impl Fn(ConfigBuilder<AgentScope>) -> ConfigBuilder<AgentScope>,
    ) -> Result<Self, BaseUrlError> {
        let api_base = base_url(api_base)?;
        let auth_base = base_url(auth_base)?;
        let agent = |pooled: bool| {
            let config =
                configure(Agent::config_builder().timeout_global(Some(Self::DEFAULT_TIMEOUT)))
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .max_redirects_will_error(false);
            let config = if pooled {
                config
            } else {
                config
                    .max_idle_connections(0)
                    .max_idle_connections_per_host(0)
            };
            Agent::new_with_config(config.build())
        };
        Ok(UreqTransport {
            api: agent(true),
            auth: agent(false),
            api_base,
            auth_base,
        })
    }

    /// The base URL of API requests, without a trailing slash.
    pub fn api_base(&self) -> &str {
        &self.api_base
    }

    /// The base URL of token requests, without a trailing slash.
    pub fn auth_base(&self) -> &str {
        &self.auth_base
    }
}

impl fmt::Debug for UreqTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UreqTransport")
            .field("api_base", &self.api_base)
            .field("auth_base", &self.auth_base)
            .field("timeout", &self.api.config().timeouts().global)
            .finish_non_exhaustive()
    }
}

/// Checks a base URL: `http` or `https`, a host, no user info, query or fragment.
fn base_url(url: &str) -> Result<String, BaseUrlError> {
    let trimmed = url.trim_end_matches('/');
    let uri: http::Uri = trimmed.parse().map_err(|_| BaseUrlError("not a URL"))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => return Err(BaseUrlError("the scheme is not http or https")),
    }
    let authority = uri.authority().ok_or(BaseUrlError("no host"))?;
    if authority.as_str().contains('@') {
        return Err(BaseUrlError(
            "credentials in the URL (use the protocol's client authentication)",
        ));
    }
    if authority.host().is_empty() {
        return Err(BaseUrlError("no host"));
    }
    if uri.query().is_some() || trimmed.contains('#') {
        return Err(BaseUrlError("a query or fragment"));
    }
    Ok(trimmed.to_owned())
}

/// A base URL given to [`UreqTransport`] is not `http(s)://host[:port][/prefix]`, or carries
/// user info, a query or a fragment. It says why, without repeating the URL.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseUrlError(&'static str);

impl fmt::Display for BaseUrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unusable base URL: {}", self.0)
    }
}

impl std::error::Error for BaseUrlError {}

/// Why an exchange through [`UreqTransport`] failed.
///
/// `Debug` and `Display` leave out anything a request carried (its `Authorization` value,
/// its body) and the URL of a malformed request.
#[non_exhaustive]
pub enum UreqError {
    /// The answer's body did not fit the buffer of `capacity` bytes (the buffer is wiped).
    BufferTooSmall {
        /// The buffer's size.
        capacity: usize,
        /// The body's size, when the answer announced it.
        needed: Option<u64>,
    },
    /// A request header could not be sent as given (it names which; e.g. a line break in it).
    InvalidHeader(&'static str),
    /// ureq failed: connecting, a timeout, the connection breaking, an answer that is not HTTP.
    Ureq(::ureq::Error),
}

impl fmt::Debug for UreqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UreqError::BufferTooSmall { capacity, needed } => f
                .debug_struct("BufferTooSmall")
                .field("capacity", capacity)
                .field("needed", needed)
                .finish(),
            UreqError::InvalidHeader(name) => f.debug_tuple("InvalidHeader").field(name).finish(),
            UreqError::Ureq(::ureq::Error::BadUri(_)) => f.write_str("Ureq(BadUri(..))"),
            UreqError::Ureq(e) => f.debug_tuple("Ureq").field(e).finish(),
        }
    }
}

impl fmt::Display for UreqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UreqError::BufferTooSmall {
                capacity,
                needed: Some(needed),
            } => write!(
                f,
                "the answer's {needed}-byte body does not fit {capacity} bytes"
            ),
            UreqError::BufferTooSmall { capacity, .. } => {
                write!(f, "the answer's body does not fit {capacity} bytes")
            }
            UreqError::InvalidHeader(name) => write!(f, "invalid {name} header value"),
            UreqError::Ureq(::ureq::Error::BadUri(_)) => f.write_str("malformed request URL"),
            UreqError::Ureq(e) => fmt::Display::fmt(e, f),
        }
    }
}

impl std::error::Error for UreqError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            UreqError::Ureq(::ureq::Error::BadUri(_)) => None,
            UreqError::Ureq(e) => Some(e),
            _ => None,
        }
    }
}

impl crate::transport::Error for UreqError {
    fn kind(&self) -> ErrorKind {
        match self {
            UreqError::BufferTooSmall { .. }
            | UreqError::Ureq(::ureq::Error::BodyExceedsLimit(_)) => ErrorKind::BufferTooSmall,
            UreqError::Ureq(::ureq::Error::Timeout(_)) => ErrorKind::TimedOut,
            UreqError::Ureq(::ureq::Error::Io(e))
                if matches!(
                    e.kind(),
                    io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
                ) =>
            {
                ErrorKind::TimedOut
            }
            _ => ErrorKind::Other,
        }
    }
}

impl From<::ureq::Error> for UreqError {
    fn from(e: ::ureq::Error) -> Self {
        UreqError::Ureq(e)
    }
}

impl ErrorType for UreqTransport {
    type Error = UreqError;
}

impl Transport for UreqTransport {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, UreqError> {
        let (agent, base) = match request.endpoint {
            Endpoint::Api => (&self.api, &self.api_base),
            Endpoint::Auth => (&self.auth, &self.auth_base),
        };
        let mut url = String::with_capacity(base.len() + request.path.len() + 1);
        url.push_str(base);
        if !request.path.starts_with('/') {
            url.push('/');
        }
        url.push_str(request.path);

        let method = match request.method {
            Method::Get => http::Method::GET,
            Method::Post => http::Method::POST,
            Method::Put => http::Method::PUT,
            Method::Patch => http::Method::PATCH,
            Method::Delete => http::Method::DELETE,
        };
        let mut builder = http::Request::builder().method(method).uri(url);
        if let Some(authorization) = request.authorization {
            let mut value = HeaderValue::from_str(authorization)
                .map_err(|_| UreqError::InvalidHeader("Authorization"))?;
            // Left out of `http`'s own `Debug` output.
            value.set_sensitive(true);
            builder = builder.header(header::AUTHORIZATION, value);
        }
        if let Some(content_type) = request.content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| UreqError::InvalidHeader("Content-Type"))?;
            builder = builder.header(header::CONTENT_TYPE, value);
        }
        if request.endpoint == Endpoint::Auth {
            builder = builder.header(header::CONNECTION, HeaderValue::from_static("close"));
        }
        // GET and DELETE without a body send none (no `Content-Length: 0`); a POST, PUT or
        // PATCH always says its length, even when it is 0.
        let bodiless = matches!(request.method, Method::Get | Method::Delete);
        let answer = if request.body.is_empty() && bodiless {
            builder
                .body(())
                .map_err(|e| UreqError::Ureq(e.into()))
                .and_then(|r| agent.run(r).map_err(UreqError::Ureq))
        } else {
            builder
                .body(request.body)
                .map_err(|e| UreqError::Ureq(e.into()))
                .and_then(|r| agent.run(r).map_err(UreqError::Ureq))
        };
        let mut answer = answer?;

        let headers = answer.headers();
        let mut response = Response::new(answer.status().as_u16(), 0);
        response.retry_after = headers
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        response.bearer_error = headers
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(BearerError::parse);

        let announced = answer.body().content_length();
        let capacity = body.len();
        if announced.is_some_and(|n| n > capacity as u64) {
            return Err(UreqError::BufferTooSmall {
                capacity,
                needed: announced,
            });
        }
        let mut reader = answer.body_mut().as_reader();
        let mut len = 0usize;
        let outcome = read_into(&mut reader, body, &mut len);
        if let Err(e) = outcome {
            // Nothing of an answer that failed stays in the buffer.
            if let Some(written) = body.get_mut(..len) {
                crate::wipe::bytes(written);
            }
            return Err(match e {
                ReadError::TooLarge => UreqError::BufferTooSmall {
                    capacity,
                    needed: announced,
                },
                ReadError::Io(e) => UreqError::Ureq(::ureq::Error::from(e)),
            });
        }
        response.body_len = len;
        Ok(response)
    }
}

enum ReadError {
    TooLarge,
    Io(io::Error),
}

/// Reads the whole body into `body`, counting in `len`; once `body` is full, only the end of
/// the body may follow.
fn read_into(reader: &mut impl Read, body: &mut [u8], len: &mut usize) -> Result<(), ReadError> {
    loop {
        let read = match body.get_mut(*len..) {
            Some(free) if !free.is_empty() => reader.read(free),
            _ => {
                let mut probe = [0u8; 1];
                match reader.read(&mut probe) {
                    Ok(0) => return Ok(()),
                    Ok(_) => return Err(ReadError::TooLarge),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(ReadError::Io(e)),
                }
            }
        };
        match read {
            Ok(0) => return Ok(()),
            Ok(n) => *len += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
}
