//! The `std_http` example's HTTP/1.1 transport: response framing, the worst chunking (one byte
//! per read), failures mid-answer, and what the session needs from the head.

#[path = "../examples/std_http/transport.rs"]
mod transport;

use std::io::{self, Read};

use jwt_refresh::transport::{BearerError, Error as _, ErrorKind, Method, Request};
use jwt_refresh::Duration;
use transport::{read_response, write_request, BaseUrl, HttpError};

/// Returns at most `chunk` bytes per read, then fails with `fail_after` if set.
struct Trickle<'a> {
    data: &'a [u8],
    chunk: usize,
    fail_after: Option<usize>,
    given: usize,
}

impl Read for Trickle<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if let Some(limit) = self.fail_after {
            if self.given >= limit {
                return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
            }
        }
        let n = self.chunk.min(out.len()).min(self.data.len());
        let n = match self.fail_after {
            Some(limit) => n.min(limit - self.given),
            None => n,
        };
        out[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        self.given += n;
        Ok(n)
    }
}

fn read_all(raw: &str, chunk: usize, body: &mut [u8]) -> Result<(u16, String), HttpError> {
    let mut input = Trickle {
        data: raw.as_bytes(),
        chunk,
        fail_after: None,
        given: 0,
    };
    let r = read_response(&mut input, body)?;
    Ok((
        r.status,
        String::from_utf8(body[..r.body_len].to_vec()).unwrap(),
    ))
}

const BODY: &str = r#"{"access":"eyJ.eyJ.sig"}"#;

#[test]
fn content_length_body_at_every_chunking() {
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    for chunk in [1, 2, 3, 7, 64, 4096] {
        let mut body = [0u8; 256];
        assert_eq!(
            read_all(&raw, chunk, &mut body).unwrap(),
            (200, BODY.to_owned()),
            "chunk {chunk}"
        );
    }
}

#[test]
fn chunked_body_with_upper_case_hex_one_byte_at_a_time() {
    // Django behind gunicorn: upper-case hex sizes, a chunk extension, a trailer.
    let raw = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nA;ext=1\r\n{\"access\":\r\n0E\r\n\"eyJ.eyJ.sig\"}\r\n0\r\nX-Trailer: 1\r\n\r\n";
    for chunk in [1, 5, 4096] {
        let mut body = [0u8; 256];
        assert_eq!(
            read_all(raw, chunk, &mut body).unwrap(),
            (200, BODY.to_owned())
        );
    }
}

#[test]
fn body_delimited_by_connection_close() {
    let raw = format!("HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{BODY}");
    let mut body = [0u8; 256];
    assert_eq!(
        read_all(&raw, 1, &mut body).unwrap(),
        (200, BODY.to_owned())
    );
    // Exactly as large as the buffer still fits; one byte more does not.
    let mut exact = vec![0u8; BODY.len()];
    assert_eq!(read_all(&raw, 3, &mut exact).unwrap().1, BODY);
    let mut short = vec![0u8; BODY.len() - 1];
    let err = read_all(&raw, 3, &mut short).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::BufferTooSmall);
}

#[test]
fn a_body_larger_than_the_buffer_is_an_error_never_a_truncation() {
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    let mut body = [0u8; 8];
    let err = read_all(&raw, 4096, &mut body).unwrap_err();
    assert!(
        matches!(err, HttpError::BufferTooSmall { needed: Some(n), capacity: 8 } if n == BODY.len())
    );
    let chunked =
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n";
    assert_eq!(
        read_all(chunked, 1, &mut body).unwrap_err().kind(),
        ErrorKind::BufferTooSmall
    );
}

#[test]
fn failures_mid_answer() {
    let raw = format!(
        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{BODY}",
        BODY.len()
    );
    for fail_after in [0, 5, 30, raw.len() - 1] {
        let mut input = Trickle {
            data: raw.as_bytes(),
            chunk: 1,
            fail_after: Some(fail_after),
            given: 0,
        };
        let mut body = [0u8; 256];
        let err = read_response(&mut input, &mut body).unwrap_err();
        assert!(matches!(err, HttpError::Io(_)), "{fail_after}: {err:?}");
    }
    // The connection closes early: a typed error, not a short body.
    let mut body = [0u8; 256];
    for cut in [10, raw.len() - 1] {
        let err = read_all(&raw[..cut], 1, &mut body).unwrap_err();
        assert!(matches!(err, HttpError::Malformed(_)), "{cut}: {err:?}");
    }
    let chunked = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n10\r\n0123";
    assert!(matches!(
        read_all(chunked, 1, &mut body).unwrap_err(),
        HttpError::Malformed(_)
    ));
}

#[test]
fn garbage_and_oversized_heads() {
    let mut body = [0u8; 64];
    for raw in [
        "HTTP/1.1 abc\r\n\r\n",
        "\x00\x01\x02\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n",
    ] {
        assert!(
            matches!(
                read_all(raw, 1, &mut body).unwrap_err(),
                HttpError::Malformed(_)
            ),
            "{raw:?}"
        );
    }
    let huge = format!("HTTP/1.1 200 OK\r\nX-Big: {}\r\n\r\n", "a".repeat(9000));
    assert!(matches!(
        read_all(&huge, 4096, &mut body).unwrap_err(),
        HttpError::Malformed(_)
    ));
    let bad_chunk = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
    assert!(matches!(
        read_all(bad_chunk, 1, &mut body).unwrap_err(),
        HttpError::Malformed(_)
    ));
}

#[test]
fn redirects_are_errors() {
    let raw =
        "HTTP/1.1 301 Moved Permanently\r\nLocation: /api/token/\r\nContent-Length: 0\r\n\r\n";
    let mut body = [0u8; 64];
    assert!(matches!(
        read_all(raw, 1, &mut body).unwrap_err(),
        HttpError::Redirect(301)
    ));
}

#[test]
fn headers_the_session_needs() {
    let raw = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer realm=\"api\", error=\"invalid_token\"\r\nRetry-After: 30\r\nContent-Length: 2\r\n\r\n{}";
    let mut input = Trickle {
        data: raw.as_bytes(),
        chunk: 1,
        fail_after: None,
        given: 0,
    };
    let mut body = [0u8; 64];
    let r = read_response(&mut input, &mut body).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.bearer_error, Some(BearerError::InvalidToken));
    assert_eq!(r.retry_after, Some(Duration::from_secs(30)));
    assert_eq!(r.body_len, 2);
    // 204 has no body whatever the framing says.
    let raw = "HTTP/1.1 204 No Content\r\n\r\n";
    assert_eq!(read_all(raw, 1, &mut body).unwrap(), (204, String::new()));
}

#[test]
fn request_wire_format() {
    let base = BaseUrl::parse("http://127.0.0.1:8000/v1/").unwrap();
    assert_eq!(
        base,
        BaseUrl {
            host: "127.0.0.1".into(),
            port: 8000,
            prefix: "/v1".into()
        }
    );
    let request = Request {
        authorization: Some("Bearer abc"),
        ..Request::post(
            "/api/token/refresh/",
            "application/json",
            br#"{"refresh":"r"}"#,
        )
    };
    let mut out = Vec::new();
    write_request(&mut out, &base, &request).unwrap();
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "POST /v1/api/token/refresh/ HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\nAccept: application/json\r\nUser-Agent: jwt-refresh-std-http\r\nAuthorization: Bearer abc\r\nContent-Type: application/json\r\nContent-Length: 15\r\n\r\n{\"refresh\":\"r\"}"
    );
    let mut out = Vec::new();
    write_request(&mut out, &base, &Request::get("/x")).unwrap();
    assert!(String::from_utf8(out)
        .unwrap()
        .starts_with("GET /v1/x HTTP/1.1\r\n"));
    assert!(BaseUrl::parse("https://example.com").is_err());
    assert!(BaseUrl::parse("http://:80").is_err());
    assert_eq!(BaseUrl::parse("http://localhost").unwrap().port, 80);
    let _ = Method::Get;
}
