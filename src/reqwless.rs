//! A ready [`AsyncTransport`] for firmware over reqwless ([`ReqwlessTransport`], feature
//! `reqwless`), generic over the `embedded-nal-async` connect and DNS traits as reqwless is.
//! No std, no alloc: the answer's head goes into a buffer you give, its body into the caller's.

use core::fmt;
use core::future::{poll_fn, Future};
use core::pin::pin;
use core::task::Poll;

use embedded_hal_async::delay::DelayNs;
use embedded_io_async::Read as _;
use embedded_nal_async::{Dns, TcpConnect};
use reqwless::client::HttpClient;
use reqwless::request::{Method as HttpMethod, RequestBuilder as _};

use crate::time::Duration;
use crate::transport::{
    parse_retry_after, AsyncTransport, BearerError, Endpoint, ErrorKind, ErrorType, Method,
    Request, Response,
};

/// The `embedded-nal-async` (0.9) whose [`TcpConnect`] and [`Dns`] reqwless is generic over.
pub use ::embedded_nal_async;
/// The reqwless this module is built against (0.14), to build the [`HttpClient`] with.
pub use ::reqwless;

/// An [`AsyncTransport`] over a reqwless [`HttpClient`]: API requests go to the API's base URL,
/// token requests (login and refresh) to the token endpoint's, with the [`Request`]'s path
/// appended to the base URL's path.
///
/// - **One connection per request.** Every `send` connects (through the client's
///   [`TcpConnect`] and [`Dns`]), sends `Connection: close`, reads the answer and drops the
///   connection. A login or refresh therefore never goes out on a kept-alive connection that
///   the server closed meanwhile (after which the server may have rotated the refresh token).
///   API requests pay a TCP (and, with TLS, a handshake) per request too.
/// - The answer's head (status line and headers) is read into the `rx` buffer given to
///   [`new`](Self::new); a head that does not fit is [`Error::HeadTooLarge`]. 1 KB is plenty
///   for the usual servers. The buffer is wiped after every request (it also holds the start of
///   the body, which may be a token).
/// - The body is read into the caller's buffer; one that does not fit is
///   [`Error::BufferTooSmall`], never a truncation, and what was written is wiped.
/// - Every status is an answer, with `Retry-After` (seconds) and a `WWW-Authenticate: Bearer`
///   challenge reported in the [`Response`]. reqwless follows no redirects.
/// - **Timeouts:** reqwless has none. Give one with [`with_timeout`](Self::with_timeout) and a
///   `DelayNs` (e.g. `embassy_time::Delay`): the whole exchange (DNS, connecting, the request,
///   the whole answer) is then bounded, and a request that takes longer is dropped (its
///   connection closed) with [`Error::TimedOut`]. Without one, a server that stops answering
///   stalls `send` until your network stack's own socket timeout, if any.
/// - Plain `http://` with reqwless's default features off (as this crate depends on it). For
///   `https://`, turn on reqwless's `embedded-tls` feature in your own `Cargo.toml` and pass
///   an `HttpClient::new_with_tls`; its TLS buffers are yours and this crate does not wipe them.
///
/// `Debug` shows the base URLs, the buffer size and the timeout only.
///
/// ```no_run
/// # async fn run<T, D>(tcp: &T, dns: &D) -> Option<()>
/// # where T: jwt_refresh::reqwless::embedded_nal_async::TcpConnect,
/// #       D: jwt_refresh::reqwless::embedded_nal_async::Dns {
/// use jwt_refresh::reqwless::reqwless::client::HttpClient;
/// use jwt_refresh::reqwless::ReqwlessTransport;
///
/// // `tcp` and `dns`: e.g. embassy-net's `TcpClient` and `DnsSocket`.
/// let mut rx = [0u8; 1024];
/// let transport = ReqwlessTransport::new(
///     HttpClient::new(tcp, dns),
///     "http://192.168.1.10:8000",
///     "http://192.168.1.10:8000",
///     &mut rx,
/// )
/// .ok()?;
/// // With embassy-time: `.with_timeout(embassy_time::Delay, Duration::from_secs(10))`.
/// # let _ = transport;
/// # Some(())
/// # }
/// ```
pub struct ReqwlessTransport<'a, T, D, W = NoTimeout>
where
    T: TcpConnect,
    D: Dns,
{
    client: HttpClient<'a, T, D>,
    api: &'a str,
    auth: &'a str,
    rx: &'a mut [u8],
    timer: W,
    timeout: Option<Duration>,
}

/// The timer of a [`ReqwlessTransport`] without a timeout: its delays never end.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoTimeout;

impl DelayNs for NoTimeout {
    async fn delay_ns(&mut self, _ns: u32) {
        core::future::pending::<()>().await;
    }
}

impl<'a, T, D> ReqwlessTransport<'a, T, D, NoTimeout>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
{
    /// A transport over `client` to `api_url` and `auth_url` (e.g. `http://192.168.1.10:8000`,
    /// or with a path prefix such as `https://auth.example.com/v1`), reading answer heads into
    /// `rx`, without a timeout.
    ///
    /// Fails with [`Error::Url`] when a URL is not an `http://` or `https://` URL without
    /// credentials, query or fragment, and with [`Error::HeadTooLarge`] when `rx` is empty.
    pub fn new(
        client: HttpClient<'a, T, D>,
        api_url: &'a str,
        auth_url: &'a str,
        rx: &'a mut [u8],
    ) -> Result<Self, Error> {
        check_base_url(api_url, Endpoint::Api)?;
        check_base_url(auth_url, Endpoint::Auth)?;
        if rx.is_empty() {
            return Err(Error::HeadTooLarge);
        }
        Ok(ReqwlessTransport {
            client,
            api: api_url,
            auth: auth_url,
            rx,
            timer: NoTimeout,
            timeout: None,
        })
    }
}

impl<'a, T, D, W> ReqwlessTransport<'a, T, D, W>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
{
    /// Bounds every request (DNS, connecting, sending and reading the whole answer) to
    /// `timeout`, measured with `timer` (e.g. `embassy_time::Delay`). Keep it below the
    /// session's `RefreshPolicy::request_timeout`.
    pub fn with_timeout<W2: DelayNs>(
        self,
        timer: W2,
        timeout: Duration,
    ) -> ReqwlessTransport<'a, T, D, W2> {
        ReqwlessTransport {
            client: self.client,
            api: self.api,
            auth: self.auth,
            rx: self.rx,
            timer,
            timeout: Some(timeout),
        }
    }

    /// The timeout of every request, if there is one.
    pub fn timeout(&self) -> Option<Duration> {
        self.timeout
    }

    /// The base URL of an endpoint, as given.
    pub fn base_url(&self, endpoint: Endpoint) -> &str {
        match endpoint {
            Endpoint::Api => self.api,
            Endpoint::Auth => self.auth,
        }
    }
}

/// Checks a base URL without parsing it fully (reqwless does that on every request).
fn check_base_url(url: &str, endpoint: Endpoint) -> Result<(), Error> {
    let bad = |reason| Error::Url { endpoint, reason };
    let rest = strip_prefix_ignore_case(url, "http://")
        .or_else(|| strip_prefix_ignore_case(url, "https://"))
        .ok_or(bad("the scheme is not http or https"))?;
    if !url.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad("a URL has no spaces or control characters"));
    }
    let authority = rest.split('/').next().unwrap_or_default();
    if authority.is_empty() {
        return Err(bad("no host"));
    }
    if authority.contains('@') {
        return Err(bad("credentials in a URL are not sent; use the protocol's"));
    }
    if url.contains(['?', '#']) {
        return Err(bad("a base URL has no query or fragment"));
    }
    Ok(())
}

fn strip_prefix_ignore_case<'s>(s: &'s str, prefix: &str) -> Option<&'s str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| s.get(prefix.len()..))
        .flatten()
}

impl<'a, T, D, W> fmt::Debug for ReqwlessTransport<'a, T, D, W>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwlessTransport")
            .field("api", &self.api)
            .field("auth", &self.auth)
            .field("rx_capacity", &self.rx.len())
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a [`ReqwlessTransport`] exchange (or its construction) failed. Never holds a URL, a
/// header value or a body.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// A base URL given to [`ReqwlessTransport::new`] is unusable.
    Url {
        /// Which base URL.
        endpoint: Endpoint,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request's path, `Authorization` or `Content-Type` cannot go into an HTTP head
    /// (control characters, or a path that does not start with `/`); the part is named, never
    /// its value.
    InvalidRequest(&'static str),
    /// The answer's status line and headers do not fit the `rx` buffer.
    HeadTooLarge,
    /// reqwless failed: DNS, connecting, sending, an invalid answer, or a connection closed
    /// mid-answer.
    Http(reqwless::Error),
    /// The answer's body does not fit the caller's buffer of `capacity` bytes. `needed` is the
    /// body's length when the answer announced it; otherwise reading stopped at the first byte
    /// that did not fit.
    BufferTooSmall {
        /// The length the answer announced, if it did.
        needed: Option<usize>,
        /// The size of the caller's buffer.
        capacity: usize,
    },
    /// No complete answer within the timeout of
    /// [`with_timeout`](ReqwlessTransport::with_timeout).
    TimedOut,
}

/// Written by hand rather than derived, so that `defmt` does not need reqwless's own `defmt`
/// feature (whose log calls would then need a defmt logger in every host build): reqwless's
/// error goes through its `Debug`.
#[cfg(feature = "defmt")]
impl defmt::Format for Error {
    fn format(&self, f: defmt::Formatter<'_>) {
        match self {
            Error::Url { endpoint, reason } => {
                defmt::write!(
                    f,
                    "Url {{ endpoint: {}, reason: {=str} }}",
                    endpoint,
                    reason
                )
            }
            Error::InvalidRequest(part) => defmt::write!(f, "InvalidRequest({=str})", part),
            Error::HeadTooLarge => defmt::write!(f, "HeadTooLarge"),
            Error::Http(e) => defmt::write!(f, "Http({})", defmt::Debug2Format(e)),
            Error::BufferTooSmall { needed, capacity } => defmt::write!(
                f,
                "BufferTooSmall {{ needed: {}, capacity: {} }}",
                needed,
                capacity
            ),
            Error::TimedOut => defmt::write!(f, "TimedOut"),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url { endpoint, reason } => {
                write!(f, "unusable {} base URL: {reason}", endpoint.label())
            }
            Error::InvalidRequest(part) => write!(f, "the request's {part} cannot be sent"),
            Error::HeadTooLarge => f.write_str("the answer's head does not fit the rx buffer"),
            Error::Http(e) => write!(f, "HTTP: {e:?}"),
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
            Error::TimedOut => f.write_str("no answer in time"),
        }
    }
}

impl core::error::Error for Error {}

impl crate::transport::Error for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Error::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            Error::TimedOut
            | Error::Http(reqwless::Error::Network(embedded_io_async::ErrorKind::TimedOut)) => {
                ErrorKind::TimedOut
            }
            _ => ErrorKind::Other,
        }
    }
}

impl<'a, T, D, W> ErrorType for ReqwlessTransport<'a, T, D, W>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
{
    type Error = Error;
}

impl<'a, T, D, W> AsyncTransport for ReqwlessTransport<'a, T, D, W>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
    W: DelayNs,
{
    async fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, Error> {
        let base = match request.endpoint {
            Endpoint::Api => self.api,
            Endpoint::Auth => self.auth,
        };
        let result = {
            let exchange = exchange(&mut self.client, base, &mut *self.rx, request, &mut *body);
            match self.timeout {
                None => exchange.await,
                Some(timeout) => {
                    let ms = u32::try_from(timeout.as_millis()).unwrap_or(u32::MAX);
                    let expiry = self.timer.delay_ms(ms);
                    first_of(exchange, expiry).await
                }
            }
        };
        // The head buffer also holds the start of the body: a token, or a password echoed back.
        crate::wipe::bytes(self.rx);
        if result.is_err() {
            // A dropped (timed-out) exchange could not wipe what it had written.
            if matches!(result, Err(Error::TimedOut)) {
                crate::wipe::bytes(body);
            }
        }
        result
    }
}

/// `exchange`'s result, or [`Error::TimedOut`] if `expiry` ends first.
async fn first_of<F, E>(exchange: F, expiry: E) -> Result<Response, Error>
where
    F: Future<Output = Result<Response, Error>>,
    E: Future<Output = ()>,
{
    let mut exchange = pin!(exchange);
    let mut expiry = pin!(expiry);
    poll_fn(|cx| {
        if let Poll::Ready(result) = exchange.as_mut().poll(cx) {
            return Poll::Ready(result);
        }
        if expiry.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Err(Error::TimedOut));
        }
        Poll::Pending
    })
    .await
}

/// Whether a header value can go into an HTTP head as it is.
fn is_header_value(value: &str) -> bool {
    value
        .bytes()
        .all(|b| b == b'\t' || (b' '..=b'~').contains(&b))
}

/// One request on a new connection, dropped (closed) at the end.
async fn exchange<'a, T, D>(
    client: &mut HttpClient<'a, T, D>,
    base: &str,
    rx: &mut [u8],
    request: &Request<'_>,
    body: &mut [u8],
) -> Result<Response, Error>
where
    T: TcpConnect + 'a,
    D: Dns + 'a,
{
    let path = request.path;
    if !path.starts_with('/') || !path.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(Error::InvalidRequest("path"));
    }
    // `Connection: close`, then what the request has; `n` of the four are used.
    let mut headers: [(&str, &str); 4] = [("Connection", "close"); 4];
    let mut n = 1;
    let mut add = |header| {
        if let Some(slot) = headers.get_mut(n) {
            *slot = header;
            n += 1;
        }
    };
    if request.endpoint == Endpoint::Auth {
        add(("Accept", "application/json"));
    }
    if let Some(content_type) = request.content_type {
        if !is_header_value(content_type) {
            return Err(Error::InvalidRequest("Content-Type"));
        }
        add(("Content-Type", content_type));
    }
    if let Some(authorization) = request.authorization {
        if !is_header_value(authorization) {
            return Err(Error::InvalidRequest("Authorization"));
        }
        add(("Authorization", authorization));
    }
    let headers = headers.get(..n).unwrap_or_default();

    let mut resource = client.resource(base).await.map_err(Error::Http)?;
    let builder = resource
        .request(method(request.method), path)
        .headers(headers);
    let answer = if request.body.is_empty() && request.method == Method::Get {
        builder.send(rx).await
    } else {
        builder.body(request.body).send(rx).await
    };
    let answer = answer.map_err(|e| match e {
        reqwless::Error::BufferTooSmall => Error::HeadTooLarge,
        e => Error::Http(e),
    })?;

    let mut response = Response::new(answer.status.0, 0);
    for (name, value) in answer.headers() {
        let Ok(value) = core::str::from_utf8(value) else {
            continue;
        };
        if name.eq_ignore_ascii_case("retry-after") {
            response.retry_after = parse_retry_after(value);
        } else if name.eq_ignore_ascii_case("www-authenticate") && response.bearer_error.is_none() {
            response.bearer_error = BearerError::parse(value);
        }
    }

    let capacity = body.len();
    if let Some(needed) = answer.content_length {
        if needed > capacity {
            return Err(Error::BufferTooSmall {
                needed: Some(needed),
                capacity,
            });
        }
    }
    let mut reader = answer.body().reader();
    let mut len: usize = 0;
    let outcome = loop {
        let read = match body.get_mut(len..) {
            Some(into) if !into.is_empty() => reader.read(into).await,
            _ => {
                // The buffer is full: one more byte means the body does not fit.
                let mut probe = [0u8; 1];
                match reader.read(&mut probe).await {
                    Ok(0) => break Ok(()),
                    Ok(_) => {
                        break Err(Error::BufferTooSmall {
                            needed: None,
                            capacity,
                        })
                    }
                    Err(e) => break Err(Error::Http(e)),
                }
            }
        };
        match read {
            Ok(0) => break Ok(()),
            Ok(read) => len = len.saturating_add(read),
            Err(e) => break Err(Error::Http(e)),
        }
    };
    match outcome {
        Ok(()) => {
            response.body_len = len;
            Ok(response)
        }
        Err(e) => {
            if let Some(written) = body.get_mut(..len) {
                crate::wipe::bytes(written);
            }
            Err(e)
        }
    }
}

fn method(method: Method) -> HttpMethod {
    match method {
        Method::Get => HttpMethod::GET,
        Method::Post => HttpMethod::POST,
        Method::Put => HttpMethod::PUT,
        Method::Patch => HttpMethod::PATCH,
        Method::Delete => HttpMethod::DELETE,
    }
}
