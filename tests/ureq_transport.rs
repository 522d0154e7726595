//! `jwt_refresh::ureq::UreqTransport` over real TCP on 127.0.0.1:
//! - a real blocking `Client` through login, API requests, an expiry and a refresh against the
//!   demo SimpleJWT server (`examples/support/server.rs`), once per answer framing;
//! - what the `Transport` contract asks, against the demo server and a scripted server in this
//!   file: an answer one byte too large is `BufferTooSmall` (never truncated), `Retry-After`
//!   and `WWW-Authenticate: Bearer` are reported, a redirect is an answer and not followed, a
//!   server that never answers is `TimedOut`;
//! - the keep-alive trap: a token request never goes out on a connection the server may have
//!   closed.
//!
//! `cargo test --features ureq --test ureq_transport`

#[path = "../examples/support/server.rs"]
mod server;

use std::collections::VecDeque;
use std::io::{ErrorKind as IoErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::transport::{BearerError, Endpoint, Error as _, ErrorKind, Method, Request};
use jwt_refresh::ureq::{UreqError, UreqTransport};
use jwt_refresh::{
    Client, Clock, Duration, FileStore, NoStore, Protocol, RefreshPolicy, Session, StdDelay,
    SystemClock, Transport,
};
use server::{EventKind, Fault, FaultAction, Framing, Server, ServerConfig, PROTECTED_PATH};

const API: Request<'static> = Request::get(PROTECTED_PATH);

/// The transport the tests use: no proxy from the environment, whatever CI has set.
fn transport(base: &str, timeout: StdDuration) -> UreqTransport {
    UreqTransport::with_config(base, base, |config| {
        config.proxy(None).timeout_global(Some(timeout))
    })
    .expect("a loopback base URL")
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        seed: 0x0e9,
        ..RefreshPolicy::default()
    }
}

fn protocol() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "device-password",
        }),
        ..SimpleJwt::default()
    })
}

/// A fresh file path under the system's temporary directory, removed when dropped.
struct TempFile(std::path::PathBuf);

impl TempFile {
    fn new(name: &str) -> TempFile {
        let path =
            std::env::temp_dir().join(format!("jwt-refresh-ureq-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        TempFile(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// A real client against the demo server, on each framing

/// With 3-second tokens the session uses a token for 2 s from its request: the third send,
/// 2.2 s after the login, finds it expired and refreshes first.
fn login_use_expire_refresh(framing: Framing) {
    let server = Server::start(ServerConfig {
        access_lifetime: StdDuration::from_secs(3),
        framing,
        ..ServerConfig::default()
    })
    .unwrap();
    let file = TempFile::new(&format!("{framing:?}"));
    let mut scratch = [0u8; 1024];
    let session: Session<'static, 1024, 1024> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        transport(&server.url(), StdDuration::from_secs(5)),
        SystemClock::monotonic_only(),
        StdDelay,
        FileStore::new(&file.0),
        &mut scratch,
    );
    // The token answers come through it too (about 500 bytes).
    let mut body = [0u8; 1024];

    // t = 0: no tokens: log in, then the API request.
    let r = client.send(&API, &mut body).expect("first send");
    assert_eq!(r.status, 200, "{framing:?}");
    assert_eq!(&body[..r.body_len], br#"{"ok":true,"user_id":"1"}"#);
    // At once: the same token.
    let r = client.send(&API, &mut body).expect("second send");
    assert_eq!(r.status, 200);
    let kinds: Vec<EventKind> = server.events().iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [EventKind::Login, EventKind::Protected, EventKind::Protected]
    );

    // t = 2.2 s: past the token's usable life: refresh (rotating the refresh token), then send.
    thread::sleep(StdDuration::from_millis(2200));
    let r = client.send(&API, &mut body).expect("third send");
    assert_eq!(r.status, 200);
    let stats = client.session().stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 1), "{framing:?}");
    assert!(client.take_store_error().is_none());
    drop(client);

    let events = server.events();
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    assert_eq!(
        kinds,
        [
            EventKind::Login,
            EventKind::Protected,
            EventKind::Protected,
            EventKind::Refresh,
            EventKind::Protected
        ],
        "{framing:?}"
    );
    assert!(events.iter().all(|e| e.status == 200), "{events:?}");
    assert!(events.iter().all(|e| !e.presented_expired), "{events:?}");
    // The last request carried the token the refresh issued.
    assert_eq!(events[4].token_jti, events[3].issued_jti);

    // A restart from the file: the rotated refresh token is accepted (no login).
    let mut scratch = [0u8; 1024];
    let session: Session<'static, 1024, 1024> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        transport(&server.url(), StdDuration::from_secs(5)),
        SystemClock::monotonic_only(),
        StdDelay,
        FileStore::new(&file.0),
        &mut scratch,
    );
    assert!(client.restore().expect("restore"));
    assert_eq!(
        client.send(&API, &mut body).expect("after restart").status,
        200
    );
    let stats = client.session().stats();
    assert_eq!((stats.logins, stats.refreshes), (0, 1));
    assert_eq!(server.count(EventKind::Login), 1);
}

#[test]
fn client_over_content_length_answers() {
    login_use_expire_refresh(Framing::ContentLength);
}

#[test]
fn client_over_chunked_answers() {
    login_use_expire_refresh(Framing::Chunked);
}

#[test]
fn client_over_answers_delimited_by_close() {
    login_use_expire_refresh(Framing::Close);
}

// ---------------------------------------------------------------------------------------------
// The contract, against the demo server

#[test]
fn a_body_one_byte_too_large_is_an_error_never_a_truncation() {
    const OK: &[u8] = br#"{"ok":true,"user_id":"1"}"#;
    for framing in [Framing::ContentLength, Framing::Chunked, Framing::Close] {
        let server = Server::start(ServerConfig {
            framing,
            ..ServerConfig::default()
        })
        .unwrap();
        let (access, _) = server.issue_tokens();
        let authorization = format!("Bearer {access}");
        let request = Request {
            authorization: Some(&authorization),
            ..API
        };
        let mut http = transport(&server.url(), StdDuration::from_secs(5));

        // Exactly the body's size: it fits.
        let mut exact = vec![0u8; OK.len()];
        let r = http.send(&request, &mut exact).expect("fits exactly");
        assert_eq!((r.status, r.body_len), (200, OK.len()), "{framing:?}");
        assert_eq!(exact, OK);

        // One byte less: an error, and nothing of the answer left in the buffer.
        let mut short = vec![0u8; OK.len() - 1];
        let err = http.send(&request, &mut short).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BufferTooSmall,
            "{framing:?}: {err:?}"
        );
        match err {
            UreqError::BufferTooSmall { capacity, needed } => {
                assert_eq!(capacity, OK.len() - 1);
                // Only a Content-Length announces the size.
                let announced = (framing == Framing::ContentLength).then_some(OK.len() as u64);
                assert_eq!(needed, announced, "{framing:?}");
            }
            other => panic!("{other:?}"),
        }
        assert!(short.iter().all(|&b| b == 0), "{framing:?}: {short:?}");

        // A login answer (two tokens, about 500 bytes) into 64 bytes, on the token agent.
        let login = br#"{"username":"device","password":"device-password"}"#;
        let mut small = [0u8; 64];
        let request = Request {
            endpoint: Endpoint::Auth,
            ..Request::post(server::TOKEN_PATH, "application/json", login)
        };
        let err = http.send(&request, &mut small).unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BufferTooSmall,
            "{framing:?}: {err:?}"
        );
        assert_eq!(small, [0u8; 64]);
        assert_eq!(server.count(EventKind::Login), 1, "{framing:?}");
    }
}

#[test]
fn statuses_are_answers_with_retry_after_and_the_bearer_challenge() {
    let server = Server::start(ServerConfig {
        faults: vec![Fault::on_request(
            2,
            FaultAction::Unavailable {
                retry_after_secs: 7,
            },
        )],
        ..ServerConfig::default()
    })
    .unwrap();
    let mut http = transport(&server.url(), StdDuration::from_secs(5));
    let mut body = [0u8; 512];

    // No token: 401 with SimpleJWT's `WWW-Authenticate: Bearer realm="api"`.
    let r = http.send(&API, &mut body).expect("401 is an answer");
    assert_eq!(r.status, 401);
    assert_eq!(r.bearer_error, Some(BearerError::None));
    assert_eq!(r.retry_after, None);
    assert!(std::str::from_utf8(&body[..r.body_len])
        .unwrap()
        .contains("credentials were not provided"));

    // 503 with `Retry-After: 7`.
    let r = http.send(&API, &mut body).expect("503 is an answer");
    assert_eq!(r.status, 503);
    assert_eq!(r.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(r.bearer_error, None);
}

// ---------------------------------------------------------------------------------------------
// A scripted server: canned answers, and connections it keeps open, closes, or stalls on

/// What the scripted server does with a request.
enum Reply {
    /// Writes these bytes; then reads the next request on the connection (`close: false`), or
    /// closes it (`close: true`, whatever the head said).
    Raw { bytes: String, close: bool },
    /// Writes these bytes (a head, part of a body) and then nothing until the server stops.
    Stall(String),
}

/// One request the scripted server read.
#[derive(Clone, Debug)]
struct Seen {
    /// Which connection it came on (1 = the first accepted).
    conn: usize,
    /// Its request line.
    line: String,
    /// Its `Connection` header, if any.
    connection: Option<String>,
    /// Whether it was answered (a request on a reused connection may be dropped).
    answered: bool,
}

struct Scripted {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<Seen>>>,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Scripted {
    /// Answers requests with `replies`, in order of arrival. With `drop_reused`, a second
    /// request on a connection is read and the connection closed without an answer: what a
    /// client sees when the server closed an idle keep-alive connection just as it reused it.
    fn start(replies: Vec<Reply>, drop_reused: bool) -> Scripted {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let replies = Arc::new(Mutex::new(VecDeque::from(replies)));
        let (seen2, stop2) = (Arc::clone(&seen), Arc::clone(&stop));
        let accept = thread::spawn(move || {
            let mut workers = Vec::new();
            for (i, stream) in listener.incoming().enumerate() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (seen, stop, replies) =
                    (Arc::clone(&seen2), Arc::clone(&stop2), Arc::clone(&replies));
                workers.push(thread::spawn(move || {
                    serve(i + 1, stream, &seen, &stop, &replies, drop_reused)
                }));
            }
            for worker in workers {
                let _ = worker.join();
            }
        });
        Scripted {
            addr,
            seen,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Scripted {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads one request head and its `Content-Length` body; `None` at the end of the stream or
/// when the server stops.
fn read_request(stream: &mut TcpStream, stop: &AtomicBool) -> Option<(String, Option<String>)> {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(0) => return None,
            Ok(_) => buf.push(byte[0]),
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut request = httparse::Request::new(&mut headers);
    request.parse(&buf).ok()?;
    let line = format!("{} {}", request.method?, request.path?);
    let header = |name: &str| {
        request
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).into_owned())
    };
    let connection = header("connection");
    let length: usize = header("content-length").map_or(0, |v| v.parse().unwrap_or(0));
    let mut body = vec![0u8; length];
    let mut read = 0;
    while read < length {
        match stream.read(&mut body[read..]) {
            Ok(0) => return None,
            Ok(n) => read += n,
            Err(e) if matches!(e.kind(), IoErrorKind::WouldBlock | IoErrorKind::TimedOut) => {
                if stop.load(Ordering::SeqCst) {
                    return None;
                }
            }
            Err(_) => return None,
        }
    }
    Some((line, connection))
}

fn serve(
    conn: usize,
    mut stream: TcpStream,
    seen: &Mutex<Vec<Seen>>,
    stop: &AtomicBool,
    replies: &Mutex<VecDeque<Reply>>,
    drop_reused: bool,
) {
    stream
        .set_read_timeout(Some(StdDuration::from_millis(20)))
        .unwrap();
    for nth in 0.. {
        let Some((line, connection)) = read_request(&mut stream, stop) else {
            return;
        };
        let reply = if drop_reused && nth > 0 {
            None
        } else {
            replies.lock().unwrap().pop_front()
        };
        seen.lock().unwrap().push(Seen {
            conn,
            line,
            connection,
            answered: reply.is_some(),
        });
        match reply {
            None => {
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Some(Reply::Raw { bytes, close }) => {
                if stream.write_all(bytes.as_bytes()).is_err() {
                    return;
                }
                if close {
                    let _ = stream.shutdown(Shutdown::Both);
                    return;
                }
            }
            Some(Reply::Stall(bytes)) => {
                let _ = stream.write_all(bytes.as_bytes());
                while !stop.load(Ordering::SeqCst) {
                    thread::sleep(StdDuration::from_millis(10));
                }
                return;
            }
        }
    }
}

/// An HTTP/1.1 answer with a `Content-Length`, keep-alive unless a header says otherwise.
fn answer(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut out = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    out
}

const INVALID_TOKEN: (&str, &str) = (
    "WWW-Authenticate",
    r#"Bearer realm="api", error="invalid_token", error_description="expired""#,
);
const REFRESHED: &str = r#"{"access":"a2","refresh":"r2"}"#;

fn refresh_request(body: &[u8]) -> Request<'_> {
    Request {
        endpoint: Endpoint::Auth,
        ..Request::post("/api/token/refresh/", "application/json", body)
    }
}

// ---------------------------------------------------------------------------------------------
// The keep-alive trap

#[test]
fn a_refresh_right_after_a_401_on_a_closed_keep_alive_connection_succeeds() {
    // The API answers 401 as a keep-alive answer (no `Connection: close`) and then closes the
    // socket, as Django behind some proxies does. ureq 2 sent the refresh on that socket and
    // failed with "Unexpected EOF".
    let server = Scripted::start(
        vec![
            Reply::Raw {
                bytes: answer(
                    "401 Unauthorized",
                    &[INVALID_TOKEN, ("Content-Type", "application/json")],
                    r#"{"code":"token_not_valid"}"#,
                ),
                close: true,
            },
            Reply::Raw {
                bytes: answer("200 OK", &[("Content-Type", "application/json")], REFRESHED),
                close: false,
            },
            Reply::Raw {
                bytes: answer("200 OK", &[], r#"{"ok":true}"#),
                close: false,
            },
        ],
        false,
    );
    let clock = SystemClock::monotonic_only();
    // Opaque tokens, provisioned: used until the API rejects them.
    let mut session: Session<'static> =
        Session::new(Protocol::SimpleJwt(SimpleJwt::default()), policy());
    session
        .set_tokens(
            clock.now(),
            clock.now(),
            "a1",
            Some("r1"),
            TokenFacts::default(),
        )
        .unwrap();
    let mut scratch = [0u8; 512];
    let mut client = Client::new(
        session,
        transport(&server.url(), StdDuration::from_secs(5)),
        clock,
        StdDelay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 256];
    let r = client
        .send(&Request::get("/api/data/"), &mut body)
        .expect("401, refresh, retry");
    assert_eq!(r.status, 200);
    assert_eq!(&body[..r.body_len], br#"{"ok":true}"#);
    assert_eq!(client.session().stats().refreshes, 1);

    let seen = server.seen();
    let lines: Vec<(usize, &str)> = seen.iter().map(|s| (s.conn, s.line.as_str())).collect();
    assert_eq!(
        lines,
        [
            (1, "GET /api/data/"),
            (2, "POST /api/token/refresh/"),
            (3, "GET /api/data/"),
        ]
    );
    assert_eq!(seen[1].connection.as_deref(), Some("close"));
    assert!(seen.iter().all(|s| s.answered));
}

#[test]
fn token_requests_never_reuse_a_kept_alive_connection() {
    // The server keeps the API's connection open after a keep-alive 401, but drops the next
    // request that comes on it without an answer: a client that reuses it sees the server
    // close it at that very moment, the race that no liveness check before sending can win.
    let script = || {
        vec![
            Reply::Raw {
                bytes: answer("401 Unauthorized", &[INVALID_TOKEN], "{}"),
                close: false,
            },
            Reply::Raw {
                bytes: answer("200 OK", &[], REFRESHED),
                close: false,
            },
        ]
    };

    // Control: one pooled ureq agent for both requests falls into the trap.
    let server = Scripted::start(script(), true);
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .http_status_as_error(false)
            .timeout_global(Some(StdDuration::from_secs(5)))
            .build(),
    );
    let r = agent
        .get(format!("{}/api/data/", server.url()))
        .call()
        .unwrap();
    assert_eq!(r.status(), 401);
    drop(r.into_body().read_to_vec().unwrap());
    let trapped = agent
        .post(format!("{}/api/token/refresh/", server.url()))
        .send(&br#"{"refresh":"r1"}"#[..]);
    assert!(
        trapped.is_err(),
        "the scripted server must reproduce the trap"
    );
    let seen = server.seen();
    assert_eq!((seen[1].conn, seen[1].answered), (1, false), "{seen:?}");
    drop(server);

    // The adapter: the API connection is kept (and reusable for API requests), the token
    // request goes out on a new connection that says `Connection: close`.
    let server = Scripted::start(script(), true);
    let mut http = transport(&server.url(), StdDuration::from_secs(5));
    let mut body = [0u8; 256];
    let r = http
        .send(&Request::get("/api/data/"), &mut body)
        .expect("401 is an answer");
    assert_eq!(r.status, 401);
    assert_eq!(r.bearer_error, Some(BearerError::InvalidToken));
    let r = http
        .send(&refresh_request(br#"{"refresh":"r1"}"#), &mut body)
        .expect("the refresh succeeds");
    assert_eq!((r.status, &body[..r.body_len]), (200, REFRESHED.as_bytes()));
    let seen = server.seen();
    let lines: Vec<(usize, &str, bool)> = seen
        .iter()
        .map(|s| (s.conn, s.line.as_str(), s.answered))
        .collect();
    assert_eq!(
        lines,
        [
            (1, "GET /api/data/", true),
            (2, "POST /api/token/refresh/", true)
        ]
    );
    assert_eq!(seen[1].connection.as_deref(), Some("close"));
    assert_eq!(
        seen[0].connection, None,
        "API requests keep connections alive"
    );
}

// ---------------------------------------------------------------------------------------------
// Timeouts, redirects, headers, secrets

#[test]
fn a_server_that_never_answers_times_out() {
    let stalled_body = "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"access\":";
    let server = Scripted::start(
        vec![
            Reply::Stall(String::new()),
            Reply::Stall(String::new()),
            Reply::Stall(stalled_body.into()),
        ],
        false,
    );
    let mut http = transport(&server.url(), StdDuration::from_millis(200));
    let mut body = [0u8; 256];

    // No head at all, on the API and on the token endpoint.
    let err = http.send(&API, &mut body).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    let err = http
        .send(&refresh_request(br#"{"refresh":"r1"}"#), &mut body)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");

    // A head and part of the body, then nothing: the timeout covers the body too, and the
    // part that came is not left in the buffer.
    let err = http
        .send(&refresh_request(br#"{"refresh":"r1"}"#), &mut body)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    assert_eq!(body, [0u8; 256]);
    assert_eq!(server.seen().len(), 3);
}

#[test]
fn a_redirect_is_an_answer_and_is_not_followed() {
    let server = Scripted::start(
        vec![Reply::Raw {
            bytes: answer("302 Found", &[("Location", "/login/?next=/api/")], ""),
            close: true,
        }],
        false,
    );
    let mut http = transport(&server.url(), StdDuration::from_secs(5));
    let mut body = [0u8; 64];
    let r = http
        .send(&refresh_request(br#"{"refresh":"r1"}"#), &mut body)
        .expect("a 3xx is an answer");
    assert_eq!((r.status, r.body_len), (302, 0));
    thread::sleep(StdDuration::from_millis(50));
    assert_eq!(server.seen().len(), 1, "the Location was not requested");
}

#[test]
fn requests_carry_the_method_path_and_headers_under_the_base_prefix() {
    let ok = || Reply::Raw {
        bytes: answer("204 No Content", &[], ""),
        close: false,
    };
    let server = Scripted::start(vec![ok(), ok(), ok()], false);
    let base = format!("{}/v1/", server.url());
    let mut http = transport(&base, StdDuration::from_secs(5));
    assert_eq!(http.api_base(), format!("{}/v1", server.url()));
    assert_eq!(http.auth_base(), http.api_base());
    let mut body = [0u8; 16];
    for (method, path) in [
        (Method::Delete, "/items/7"),
        (Method::Put, "items/8"),
        (Method::Patch, "/items/9?x=1"),
    ] {
        let request = Request {
            method,
            ..Request::post(path, "application/json", b"{}")
        };
        assert_eq!(http.send(&request, &mut body).unwrap().status, 204);
    }
    let lines: Vec<String> = server.seen().into_iter().map(|s| s.line).collect();
    assert_eq!(
        lines,
        [
            "DELETE /v1/items/7",
            "PUT /v1/items/8",
            "PATCH /v1/items/9?x=1"
        ]
    );
}

#[test]
fn base_urls_are_checked() {
    for good in [
        "http://127.0.0.1:8000",
        "http://localhost/",
        "https://auth.example/realms/x/",
    ] {
        assert!(UreqTransport::new(good, good).is_ok(), "{good}");
    }
    for bad in [
        "127.0.0.1:8000",
        "ftp://example.com",
        "http://user:secret@example.com",
        "http://example.com/?token=secret",
        "http://example.com/#x",
        "",
    ] {
        let err = UreqTransport::new("http://localhost", bad).unwrap_err();
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("secret"), "{shown}");
    }
}

#[test]
fn debug_and_display_show_no_secret() {
    // A port nobody listens on: the connection is refused.
    let closed = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut http = transport(&url, StdDuration::from_secs(5));
    let mut body = [0u8; 64];

    let secret_body = br#"{"refresh":"rt-secret-value"}"#;
    let request = Request {
        authorization: Some("Basic c2VjcmV0LWNsaWVudA=="),
        ..refresh_request(secret_body)
    };
    let refused = http.send(&request, &mut body).unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::Other);

    // An Authorization value that cannot be a header (a line break in it).
    let request = Request {
        authorization: Some("Bearer secret-access\r\nX-Injected: 1"),
        ..API
    };
    let invalid = http.send(&request, &mut body).unwrap_err();
    assert!(matches!(invalid, UreqError::InvalidHeader("Authorization")));
    assert_eq!(invalid.kind(), ErrorKind::Other);

    // A path that is not a URL.
    let bad_path = http
        .send(&Request::get("/api/x y?key=secret-in-query"), &mut body)
        .unwrap_err();
    assert_eq!(bad_path.kind(), ErrorKind::Other);

    for shown in [
        format!("{http:?}"),
        format!("{refused:?} {refused}"),
        format!("{invalid:?} {invalid}"),
        format!("{bad_path:?} {bad_path}"),
    ] {
        assert!(!shown.contains("secret"), "{shown}");
        assert!(!shown.contains("c2VjcmV0"), "{shown}");
    }
    assert!(format!("{http:?}").contains(&url));
}
