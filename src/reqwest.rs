//! A ready [`AsyncTransport`] over reqwest ([`ReqwestTransport`]) and a tokio sleep
//! ([`TokioDelay`]), so that [`AsyncClient`](crate::AsyncClient) runs on tokio (feature
//! `reqwest`, host only). This module owns the mapping of [`Request`]s to HTTP and back.
//!
//! reqwest is used without its default features: HTTP/1.1 and plain `http://` only. For
//! `https://`, turn on reqwest's `rustls-tls` or `native-tls` feature in your own `Cargo.toml`
//! (`reqwest = { version = "0.12", features = ["rustls-tls"] }`); Cargo unifies the features,
//! and the clients this module builds use TLS from then on.

use core::fmt;
use core::time::Duration;

use ::reqwest::header::{
    HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE,
};
use ::reqwest::redirect;
use embedded_hal_async::delay::DelayNs;

use crate::transport::{
    parse_retry_after, AsyncTransport, BearerError, Endpoint, ErrorKind, ErrorType, Method,
    Request, Response,
};

/// The request timeout of [`ReqwestTransport::new`]: 10 seconds, connecting and the whole
/// answer included.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// An [`AsyncTransport`] over reqwest: API requests go to the API's base URL, token requests
/// (login and refresh) to the token endpoint's, each with the path of the [`Request`] appended.
///
/// - The answer's body is read chunk by chunk straight into the caller's buffer, never
///   buffered whole; one that does not fit is an [`Error::BufferTooSmall`], never a truncation.
/// - Every status is an answer, with `Retry-After` (seconds) and a `WWW-Authenticate: Bearer`
///   challenge reported in the [`Response`]. Redirects are not followed: a 3xx is an answer too.
/// - Every request has a timeout ([`DEFAULT_TIMEOUT`], see [`with_timeout`](Self::with_timeout))
///   covering the connection, the request and the whole answer.
/// - Token requests go through a client that keeps no idle connection, so a login or refresh
///   (which the server may act on, rotating the refresh token) never goes out on a kept-alive
///   connection that the server has closed meanwhile. API requests reuse connections: one
///   that meets a connection the server closed at that moment fails with
///   [`ErrorKind::Other`], which `send` returns as a retryable
///   [`Error::Transport`](crate::Error::Transport).
/// - The `Authorization` value is marked sensitive; `Debug` shows the base URLs and the
///   timeout only, and errors carry no URL.
///
/// Its futures are `Send`: an [`AsyncClient`](crate::AsyncClient) over it can run in a
/// `tokio::spawn`ed task.
///
/// reqwest and hyper copy each request and answer into buffers of their own, which this crate
/// cannot wipe: the crate's wiping covers its own buffers (scratch, body) only.
///
/// ```no_run
/// use jwt_refresh::protocol::{Credentials, SimpleJwt};
/// use jwt_refresh::reqwest::{ReqwestTransport, TokioDelay};
/// use jwt_refresh::{AsyncClient, NoStore, Protocol, RefreshPolicy, Request, Session, SystemClock};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let transport = ReqwestTransport::new("http://127.0.0.1:8000", "http://127.0.0.1:8000")?
///     .with_timeout(std::time::Duration::from_secs(5));
/// let protocol = Protocol::SimpleJwt(SimpleJwt {
///     credentials: Some(Credentials { username: "device-7", password: "secret" }),
///     ..SimpleJwt::default()
/// });
/// let session: Session<'_> = Session::new(protocol, RefreshPolicy::default());
/// let mut scratch = [0u8; 1024];
/// let mut client = AsyncClient::new(
///     session,
///     transport,
///     SystemClock::new(),
///     TokioDelay,
///     NoStore,
///     &mut scratch,
/// );
/// let mut body = [0u8; 4096];
/// let response = client.send(&Request::get("/api/protected/"), &mut body).await?;
/// println!("{}: {:?}", response.status, &body[..response.body_len]);
/// # Ok(())
/// # }
/// ```
///
/// Cloning is cheap (reqwest's clients are shared handles): give each task its own clone.
#[derive(Clone)]
pub struct ReqwestTransport {
    api: Target,
    auth: Target,
    timeout: Duration,
}

/// A base URL and the client that sends to it.
#[derive(Clone)]
struct Target {
    client: ::reqwest::Client,
    /// Without a trailing slash.
    base: String,
}

impl ReqwestTransport {
    /// A transport to `api_url` and `auth_url` (e.g. `http://127.0.0.1:8000`, or with a path
    /// prefix such as `https://auth.example.com/v1`), over clients built from
    /// [`api_client_builder`](Self::api_client_builder) and
    /// [`token_client_builder`](Self::token_client_builder), with [`DEFAULT_TIMEOUT`].
    ///
    /// Fails when a URL is not an absolute `http://` or `https://` URL without credentials,
    /// query or fragment ([`Error::Url`]), or when reqwest cannot build a client.
    pub fn new(api_url: &str, auth_url: &str) -> Result<Self, Error> {
        let api = Self::api_client_builder().build().map_err(Error::http)?;
        let token = Self::token_client_builder().build().map_err(Error::http)?;
        Self::with_clients(api_url, auth_url, api, token)
    }

    /// A transport over your own clients (proxies, TLS roots, default headers): `api_client`
    /// for API requests, `token_client` for logins and refreshes (they may be clones of one
    /// client). Start from [`api_client_builder`](Self::api_client_builder) and
    /// [`token_client_builder`](Self::token_client_builder), or give your clients the same
    /// settings yourself:
    ///
    /// - both: `redirect(reqwest::redirect::Policy::none())`. A client that follows redirects
    ///   would turn a token endpoint's 301 into a GET of another URL.
    /// - the token client: `pool_max_idle_per_host(0)`. A refresh sent on a kept-alive
    ///   connection that the server closed at the same moment fails after the server may have
    ///   rotated the refresh token.
    ///
    /// The transport's timeout replaces the clients' own for every request.
    pub fn with_clients(
        api_url: &str,
        auth_url: &str,
        api_client: ::reqwest::Client,
        token_client: ::reqwest::Client,
    ) -> Result<Self, Error> {
        Ok(ReqwestTransport {
            api: Target {
                client: api_client,
                base: base_url(api_url, Endpoint::Api)?,
            },
            auth: Target {
                client: token_client,
                base: base_url(auth_url, Endpoint::Auth)?,
            },
            timeout: DEFAULT_TIMEOUT,
        })
    }

    /// The builder of [`new`](Self::new)'s API client: reqwest's defaults (connection reuse,
    /// proxies from the environment) without redirects.
    pub fn api_client_builder() -> ::reqwest::ClientBuilder {
        ::reqwest::Client::builder().redirect(redirect::Policy::none())
    }

    /// The builder of [`new`](Self::new)'s token-endpoint client: as
    /// [`api_client_builder`](Self::api_client_builder), and no idle connection is kept, so
    /// every login and refresh goes out on a new connection.
    pub fn token_client_builder() -> ::reqwest::ClientBuilder {
        Self::api_client_builder().pool_max_idle_per_host(0)
    }

    /// Replaces the timeout of every request: connecting, sending and reading the whole answer.
    /// Keep it below the session's `RefreshPolicy::request_timeout`.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The timeout of every request.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The base URL of an endpoint, as requests use it (without a trailing slash).
    pub fn base_url(&self, endpoint: Endpoint) -> &str {
        match endpoint {
            Endpoint::Api => &self.api.base,
            Endpoint::Auth => &self.auth.base,
        }
    }
}

/// Checks a base URL and drops its trailing slash.
fn base_url(url: &str, endpoint: Endpoint) -> Result<String, Error> {
    let bad = |reason| Error::Url { endpoint, reason };
    let parsed = ::reqwest::Url::parse(url).map_err(|_| bad("not an absolute URL"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad("the scheme is not http or https"));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(bad("credentials in a URL are not sent; use the protocol's"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(String::from(parsed.as_str().trim_end_matches('/')))
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the clients: their `Debug` shows default headers, which may hold credentials.
        f.debug_struct("ReqwestTransport")
            .field("api", &self.api.base)
            .field("auth", &self.auth.base)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a [`ReqwestTransport`] exchange (or its construction) failed. Never shows a URL, a
/// header value or a body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A base URL given to [`ReqwestTransport::new`] or
    /// [`with_clients`](ReqwestTransport::with_clients) is unusable.
    Url {
        /// Which base URL.
        endpoint: Endpoint,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request's `Authorization` or `Content-Type` is not a valid header value (the
    /// header's name is given, never its value).
    InvalidHeader(&'static str),
    /// reqwest failed: connecting, sending, a timeout, an invalid answer, or a connection
    /// closed mid-answer. The error's URL has been removed.
    Http(::reqwest::Error),
    /// The answer's body does not fit the caller's buffer of `capacity` bytes. `needed` is the
    /// body's length when the answer announced it; otherwise reading stopped at the first byte
    /// that did not fit.
    BufferTooSmall {
        /// The length the answer announced, if it did.
        needed: Option<u64>,
        /// The size of the caller's buffer.
        capacity: usize,
    },
}

impl Error {
    fn http(e: ::reqwest::Error) -> Self {
        Error::Http(e.without_url())
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url { endpoint, reason } => {
                write!(f, "unusable {} base URL: {reason}", endpoint.label())
            }
            Error::InvalidHeader(name) => write!(f, "the request's {name} is not a header value"),
            Error::Http(e) => write!(f, "{e}"),
            Error::BufferTooSmall {
                needed: Some(n),
                capacity,
            } => write!(
                f,
                "the answer's {n}-byte body does not fit {capacity} bytes"
            ),
            Error::BufferTooSmall {
                needed: None,
                capacity,
            } => write!(f, "the answer's body does not fit {capacity} bytes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Http(e) => Some(e),
            _ => None,
        }
    }
}

impl crate::transport::Error for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Error::Http(e) if e.is_timeout() => ErrorKind::TimedOut,
            _ => ErrorKind::Other,
        }
    }
}

impl ErrorType for ReqwestTransport {
    type Error = Error;
}

impl AsyncTransport for ReqwestTransport {
    async fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, Error> {
        let target = match request.endpoint {
            Endpoint::Api => &self.api,
            Endpoint::Auth => &self.auth,
        };
        let mut url = String::with_capacity(target.base.len() + request.path.len());
        url.push_str(&target.base);
        url.push_str(request.path);
        let mut builder = target
            .client
            .request(method(request.method), url)
            .timeout(self.timeout);
        if request.endpoint == Endpoint::Auth {
            builder = builder.header(ACCEPT, HeaderValue::from_static("application/json"));
        }
        if let Some(authorization) = request.authorization {
            let mut value = HeaderValue::from_str(authorization)
                .map_err(|_| Error::InvalidHeader("Authorization"))?;
            value.set_sensitive(true);
            builder = builder.header(AUTHORIZATION, value);
        }
        if let Some(content_type) = request.content_type {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| Error::InvalidHeader("Content-Type"))?;
            builder = builder.header(CONTENT_TYPE, value);
        }
        if !request.body.is_empty() || request.method != Method::Get {
            builder = builder.body(request.body.to_vec());
        }
        let mut answer = builder.send().await.map_err(Error::http)?;

        let mut response = Response::new(answer.status().as_u16(), 0);
        let headers = answer.headers();
        response.retry_after = headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        response.bearer_error = headers
            .get_all(WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(BearerError::parse);

        let capacity = body.len();
        if let Some(needed) = answer.content_length() {
            if u64::try_from(capacity).is_ok_and(|capacity| needed > capacity) {
                return Err(Error::BufferTooSmall {
                    needed: Some(needed),
                    capacity,
                });
            }
        }
        let mut len: usize = 0;
        while let Some(chunk) = answer.chunk().await.map_err(Error::http)? {
            let end = len.saturating_add(chunk.len());
            let Some(into) = body.get_mut(len..end) else {
                return Err(Error::BufferTooSmall {
                    needed: None,
                    capacity,
                });
            };
            into.copy_from_slice(&chunk);
            len = end;
        }
        response.body_len = len;
        Ok(response)
    }
}

fn method(method: Method) -> ::reqwest::Method {
    match method {
        Method::Get => ::reqwest::Method::GET,
        Method::Post => ::reqwest::Method::POST,
        Method::Put => ::reqwest::Method::PUT,
        Method::Patch => ::reqwest::Method::PATCH,
        Method::Delete => ::reqwest::Method::DELETE,
    }
}

/// An `embedded_hal_async::delay::DelayNs` over `tokio::time::sleep`, for an
/// [`AsyncClient`](crate::AsyncClient) on tokio (the runtime needs its time driver:
/// `enable_time`, or `enable_all`, as `#[tokio::main]` does).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokioDelay;

impl DelayNs for TokioDelay {
    async fn delay_ns(&mut self, ns: u32) {
        tokio::time::sleep(Duration::from_nanos(u64::from(ns))).await;
    }

    async fn delay_us(&mut self, us: u32) {
        tokio::time::sleep(Duration::from_micros(u64::from(us))).await;
    }

    async fn delay_ms(&mut self, ms: u32) {
        tokio::time::sleep(Duration::from_millis(u64::from(ms))).await;
    }
}
