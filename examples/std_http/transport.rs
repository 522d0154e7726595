//! A `jwt_refresh::Transport` over `std::net::TcpStream`: plain `http://`, HTTP/1.1 with
//! `Connection: close` and a read timeout; answers delimited by `Content-Length`, by
//! `Transfer-Encoding: chunked` or by the connection closing; redirects are errors. The response
//! head is parsed with `httparse`.
//!
//! Shared by the `std_http` and `demo` examples and the transport tests (`#[path]` modules).

#![allow(
    dead_code,
    reason = "each user of this module needs a different part of it"
)]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::Duration as StdDuration;

use jwt_refresh::transport::{
    parse_retry_after, BearerError, Endpoint, ErrorKind, ErrorType, Request, Response, Transport,
};

/// Why an exchange failed.
#[derive(Debug)]
pub enum HttpError {
    /// The URL is not `http://host[:port][/prefix]`.
    Url(String),
    /// Connecting, writing or reading failed.
    Io(io::Error),
    /// The body did not fit the caller's buffer.
    BufferTooSmall {
        needed: Option<usize>,
        capacity: usize,
    },
    /// The server redirected (a token endpoint must not).
    Redirect(u16),
    /// The answer is not valid HTTP/1.1 (or its head is over 8 KiB).
    Malformed(&'static str),
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Url(url) => write!(f, "not an http:// URL: {url}"),
            HttpError::Io(e) => write!(f, "{e}"),
            HttpError::BufferTooSmall {
                needed: Some(n),
                capacity,
            } => {
                write!(
                    f,
                    "the answer's {n}-byte body does not fit {capacity} bytes"
                )
            }
            HttpError::BufferTooSmall {
                needed: None,
                capacity,
            } => {
                write!(f, "the answer's body does not fit {capacity} bytes")
            }
            HttpError::Redirect(status) => write!(f, "redirected with status {status}"),
            HttpError::Malformed(what) => write!(f, "malformed answer: {what}"),
        }
    }
}

impl jwt_refresh::transport::Error for HttpError {
    fn kind(&self) -> ErrorKind {
        match self {
            HttpError::BufferTooSmall { .. } => ErrorKind::BufferTooSmall,
            HttpError::Io(e)
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

impl From<io::Error> for HttpError {
    fn from(e: io::Error) -> Self {
        HttpError::Io(e)
    }
}

/// `http://host[:port][/prefix]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BaseUrl {
    pub host: String,
    pub port: u16,
    /// A path prefix without a trailing slash (often empty).
    pub prefix: String,
}

impl BaseUrl {
    pub fn parse(url: &str) -> Result<BaseUrl, HttpError> {
        let bad = || HttpError::Url(url.to_owned());
        let rest = url.strip_prefix("http://").ok_or_else(bad)?;
        let (authority, prefix) = match rest.find('/') {
            Some(at) => rest.split_at(at),
            None => (rest, ""),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((host, port)) => (host, port.parse().map_err(|_| bad())?),
            None => (authority, 80),
        };
        if host.is_empty() {
            return Err(bad());
        }
        Ok(BaseUrl {
            host: host.to_owned(),
            port,
            prefix: prefix.trim_end_matches('/').to_owned(),
        })
    }
}

/// The transport: one TCP connection per request.
pub struct StdHttp {
    pub api: BaseUrl,
    pub auth: BaseUrl,
    pub timeout: StdDuration,
}

impl StdHttp {
    pub fn new(api: BaseUrl, auth: BaseUrl) -> Self {
        StdHttp {
            api,
            auth,
            timeout: StdDuration::from_secs(10),
        }
    }
}

impl ErrorType for StdHttp {
    type Error = HttpError;
}

impl Transport for StdHttp {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, HttpError> {
        let base = match request.endpoint {
            Endpoint::Api => &self.api,
            Endpoint::Auth => &self.auth,
        };
        let mut stream = TcpStream::connect((base.host.as_str(), base.port))?;
        stream.set_read_timeout(Some(self.timeout))?;
        stream.set_write_timeout(Some(self.timeout))?;
        stream.set_nodelay(true)?;
        write_request(&mut stream, base, request)?;
        read_response(&mut stream, body)
    }
}

/// Writes the request head and body in one buffer (one segment for small requests).
pub fn write_request<W: Write>(
    out: &mut W,
    base: &BaseUrl,
    request: &Request<'_>,
) -> io::Result<()> {
    let mut head = format!(
        "{} {}{} HTTP/1.1\r\nHost: {}:{}\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: jwt-refresh-std-http\r\n",
        request.method.as_str(),
        base.prefix,
        request.path,
        base.host,
        base.port
    );
    if let Some(authorization) = request.authorization {
        head.push_str(&format!("Authorization: {authorization}\r\n"));
    }
    if let Some(content_type) = request.content_type {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    if !request.body.is_empty() || request.method != jwt_refresh::transport::Method::Get {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("\r\n");
    let mut all = head.into_bytes();
    all.extend_from_slice(request.body);
    out.write_all(&all)?;
    out.flush()
}

/// A small buffered reader: the head is parsed from its buffer, the body read through it.
struct Input<'r, R> {
    inner: &'r mut R,
    buf: [u8; 8192],
    start: usize,
    end: usize,
}

impl<R: Read> Input<'_, R> {
    /// Reads more bytes after the buffered ones; `Ok(0)` at the end of the stream.
    fn fill(&mut self) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end == self.buf.len() {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "line too long"));
        }
        loop {
            match self.inner.read(&mut self.buf[self.end..]) {
                Ok(n) => {
                    self.end += n;
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    }

    fn buffered(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Copies up to `out.len()` bytes; `Ok(0)` at the end of the stream.
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if self.start == self.end && self.fill()? == 0 {
            return Ok(0);
        }
        let n = out.len().min(self.end - self.start);
        out[..n].copy_from_slice(&self.buf[self.start..self.start + n]);
        self.start += n;
        Ok(n)
    }

    fn read_exact(&mut self, out: &mut [u8]) -> Result<(), HttpError> {
        let mut done = 0;
        while done < out.len() {
            match self.read(&mut out[done..])? {
                0 => return Err(HttpError::Malformed("the body ended early")),
                n => done += n,
            }
        }
        Ok(())
    }

    /// One CRLF-terminated line (without the CRLF).
    fn line(&mut self) -> Result<String, HttpError> {
        loop {
            if let Some(at) = self.buffered().windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buffered()[..at]).into_owned();
                self.start += at + 2;
                return Ok(line);
            }
            if self.fill()? == 0 {
                return Err(HttpError::Malformed("the chunked body ended early"));
            }
        }
    }
}

/// How the body is delimited.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// Reads one HTTP/1.1 response from `stream`, its body into `body`.
pub fn read_response<R: Read>(stream: &mut R, body: &mut [u8]) -> Result<Response, HttpError> {
    let mut input = Input {
        inner: stream,
        buf: [0; 8192],
        start: 0,
        end: 0,
    };
    let (mut response, framing, head_len) = loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut parsed = httparse::Response::new(&mut headers);
        match parsed.parse(input.buffered()) {
            Ok(httparse::Status::Complete(head_len)) => {
                let status = parsed.code.ok_or(HttpError::Malformed("no status"))?;
                let (response, framing) = head(status, parsed.headers)?;
                break (response, framing, head_len);
            }
            Ok(httparse::Status::Partial) => {}
            Err(_) => return Err(HttpError::Malformed("invalid response head")),
        }
        match input.fill() {
            Ok(0) => {
                return Err(HttpError::Malformed(
                    "the connection closed before the head ended",
                ))
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                return Err(HttpError::Malformed("response head over 8 KiB"))
            }
            Err(e) => return Err(e.into()),
        }
    };
    input.start += head_len;
    if (300..400).contains(&response.status) {
        return Err(HttpError::Redirect(response.status));
    }
    let capacity = body.len();
    let too_small = |needed| HttpError::BufferTooSmall { needed, capacity };
    let no_body = response.status == 204 || response.status == 304 || response.status < 200;
    response.body_len = match framing {
        _ if no_body => 0,
        Framing::Length(n) => {
            input.read_exact(body.get_mut(..n).ok_or(too_small(Some(n)))?)?;
            n
        }
        Framing::UntilClose => {
            let mut len = 0;
            loop {
                if len == capacity {
                    // Full: only the end of the stream may follow.
                    let mut probe = [0u8; 1];
                    if input.read(&mut probe)? != 0 {
                        return Err(too_small(None));
                    }
                    break len;
                }
                match input.read(&mut body[len..])? {
                    0 => break len,
                    n => len += n,
                }
            }
        }
        Framing::Chunked => {
            let mut len = 0;
            loop {
                let line = input.line()?;
                let size = line.split(';').next().unwrap_or("").trim();
                let size = usize::from_str_radix(size, 16)
                    .map_err(|_| HttpError::Malformed("bad chunk size"))?;
                if size == 0 {
                    // Trailers, up to the empty line.
                    while !input.line()?.is_empty() {}
                    break len;
                }
                let end = len.checked_add(size).ok_or(too_small(None))?;
                input.read_exact(body.get_mut(len..end).ok_or(too_small(None))?)?;
                len = end;
                if !input.line()?.is_empty() {
                    return Err(HttpError::Malformed("chunk not followed by CRLF"));
                }
            }
        }
    };
    Ok(response)
}

/// The status and the few headers the session needs.
fn head(status: u16, headers: &[httparse::Header<'_>]) -> Result<(Response, Framing), HttpError> {
    let mut response = Response::new(status, 0);
    let mut framing = Framing::UntilClose;
    for header in headers {
        let value = std::str::from_utf8(header.value).unwrap_or("");
        if header.name.eq_ignore_ascii_case("content-length") {
            let n = value
                .trim()
                .parse()
                .map_err(|_| HttpError::Malformed("bad Content-Length"))?;
            if !matches!(framing, Framing::Chunked) {
                framing = Framing::Length(n);
            }
        } else if header.name.eq_ignore_ascii_case("transfer-encoding") {
            if value.to_ascii_lowercase().contains("chunked") {
                framing = Framing::Chunked;
            }
        } else if header.name.eq_ignore_ascii_case("retry-after") {
            response.retry_after = parse_retry_after(value);
        } else if header.name.eq_ignore_ascii_case("www-authenticate") {
            response.bearer_error = response.bearer_error.or(BearerError::parse(value));
        }
    }
    Ok((response, framing))
}
