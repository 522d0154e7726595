//! The reqwest adapter (`jwt_refresh::reqwest`, feature `reqwest`) over real TCP on 127.0.0.1:
//! a real `AsyncClient` with `ReqwestTransport`, `TokioDelay` and `SystemClock` against the demo
//! server (`examples/support/server.rs`) on each of its framings, then what `Transport` asks of
//! every transport: answers that do not fit, the headers the session reads, redirects, timeouts,
//! no token request on a kept-alive connection the server closed, `Send` futures, no secret in
//! `Debug`.
//!
//! `cargo test --features reqwest --test reqwest_transport`

#[path = "../examples/support/server.rs"]
mod server;
#[path = "support/timeline.rs"]
mod timeline;

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration as StdDuration, Instant as StdInstant};

use embedded_hal_async::delay::DelayNs;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::reqwest::{ReqwestTransport, TokioDelay, DEFAULT_TIMEOUT};
use jwt_refresh::transport::{BearerError, Endpoint, Error as _, ErrorKind, Request, Response};
use jwt_refresh::{
    AsyncClient, AsyncTransport, Clock, Duration, NoStore, Protocol, RefreshPolicy, Session,
    SystemClock,
};
use server::{
    EventKind, Fault, FaultAction, Framing, Server, ServerConfig, PROTECTED_PATH, REFRESH_PATH,
    TOKEN_PATH,
};
use timeline::Seen;

const API: Request<'static> = Request::get(PROTECTED_PATH);
const FRAMINGS: [Framing; 3] = [Framing::ContentLength, Framing::Chunked, Framing::Close];

fn start(config: ServerConfig) -> Server {
    Server::start(config).expect("start the demo server")
}

fn transport(server: &Server) -> ReqwestTransport {
    ReqwestTransport::new(&server.url(), &server.url()).expect("a transport")
}

/// `API` with a bearer token.
fn bearer(authorization: &str) -> Request<'_> {
    Request {
        authorization: Some(authorization),
        ..API
    }
}

fn assert_send<T: Send>(value: T) -> T {
    value
}

// ---------------------------------------------------------------------------------------------
// The driver: login, API requests, a refresh ahead of expiry, an expiry, a refresh
// ---------------------------------------------------------------------------------------------

/// With 3-second tokens and no jitter the session uses a token for 2 s from its request (a
/// second is taken off whole-second claims) and refreshes it after 1 s.
fn timeline_config(framing: Framing) -> ServerConfig {
    ServerConfig {
        access_lifetime: StdDuration::from_secs(3),
        framing,
        ..ServerConfig::default()
    }
}

fn no_jitter() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

/// The client under test: the real driver over reqwest, on tokio and the host's clocks.
type Tokio<'b> = AsyncClient<'static, 'b, ReqwestTransport, SystemClock, TokioDelay, NoStore>;

/// Sends the API request; the answer is the protected view's, whole.
async fn send_api(client: &mut Tokio<'_>, body: &mut [u8]) -> u16 {
    let response = client.send(&API, body).await.expect("send");
    assert_eq!(
        &body[..response.body_len],
        PROTECTED_BODY,
        "the API's answer, whole"
    );
    response.status
}

/// The timeline, run in a `tokio::spawn`ed task on the multi-thread runtime: this compiles only
/// if `AsyncClient::send` over `ReqwestTransport`, `TokioDelay` and `SystemClock` is `Send`.
async fn run_timeline(url: String) -> Seen {
    let task = tokio::spawn(async move {
        let transport = ReqwestTransport::new(&url, &url).expect("a transport");
        let protocol = Protocol::SimpleJwt(SimpleJwt {
            credentials: Some(Credentials {
                username: "device",
                password: "device-password",
            }),
            ..SimpleJwt::default()
        });
        let session: Session<'static> = Session::new(protocol, no_jitter());
        let clock = SystemClock::new();
        let mut scratch = [0u8; 1024];
        let mut client: Tokio<'_> =
            AsyncClient::new(session, transport, clock, TokioDelay, NoStore, &mut scratch);
        let mut body = [0u8; 2048];
        let mut seen = Seen::default();
        // 0 s: no token: log in, then the API request; at once another with the same token.
        seen.statuses.push(send_api(&mut client, &mut body).await);
        seen.statuses.push(send_api(&mut client, &mut body).await);
        // 1.5 s: the token is due for a refresh and still usable: refresh first.
        tokio::time::sleep(StdDuration::from_millis(1500)).await;
        let lease = client.session().lease().expect("a lease");
        let now = clock.now();
        seen.due_but_usable = now >= lease.refresh_at && lease.is_usable(now);
        seen.statuses.push(send_api(&mut client, &mut body).await);
        // 3.7 s: the token of 1.5 s expired at 3.5 s: refresh before sending.
        tokio::time::sleep(StdDuration::from_millis(2200)).await;
        let lease = client.session().lease().expect("a lease");
        seen.expired = !lease.is_usable(clock.now());
        seen.statuses.push(send_api(&mut client, &mut body).await);
        seen.stats = client.session().stats();
        seen
    });
    task.await.expect("the timeline task")
}

async fn timeline(framing: Framing) {
    let mut server = start(timeline_config(framing));
    let seen = run_timeline(server.url()).await;
    server.stop();

    let events = server.events();
    timeline::check(framing, &seen, &events);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeline_content_length() {
    timeline(Framing::ContentLength).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeline_chunked() {
    timeline(Framing::Chunked).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_timeline_close_delimited() {
    timeline(Framing::Close).await;
}

// ---------------------------------------------------------------------------------------------
// The transport against the demo server
// ---------------------------------------------------------------------------------------------

const PROTECTED_BODY: &[u8] = br#"{"ok":true,"user_id":"1"}"#;

#[tokio::test]
async fn an_answer_that_does_not_fit_is_buffer_too_small_never_a_truncation() {
    for framing in FRAMINGS {
        let server = start(ServerConfig {
            framing,
            ..ServerConfig::default()
        });
        let authorization = format!("Bearer {}", server.issue_tokens().0);
        let mut transport = transport(&server);
        // Exactly as large as the buffer fits, and the bytes after it are untouched.
        let mut exact = vec![b'#'; PROTECTED_BODY.len() + 1];
        let fits = &mut exact[..PROTECTED_BODY.len()];
        let response = transport.send(&bearer(&authorization), fits).await.unwrap();
        assert_eq!(
            (response.status, response.body_len),
            (200, PROTECTED_BODY.len())
        );
        assert_eq!(
            &exact[..PROTECTED_BODY.len()],
            PROTECTED_BODY,
            "{framing:?}"
        );
        assert_eq!(exact[PROTECTED_BODY.len()], b'#');
        // One byte more than the buffer is an error, whatever the framing.
        let mut short = vec![0u8; PROTECTED_BODY.len() - 1];
        let err = transport
            .send(&bearer(&authorization), &mut short)
            .await
            .unwrap_err();
        assert_eq!(
            err.kind(),
            ErrorKind::BufferTooSmall,
            "{framing:?}: {err:?}"
        );
        let announced = match framing {
            // Refused from the header, before reading the body.
            Framing::ContentLength => Some(PROTECTED_BODY.len() as u64),
            // Found while streaming.
            _ => None,
        };
        assert!(
            matches!(err, jwt_refresh::reqwest::Error::BufferTooSmall { needed, capacity }
                if needed == announced && capacity == PROTECTED_BODY.len() - 1),
            "{framing:?}: {err:?}"
        );
    }
}

#[tokio::test]
async fn a_token_answer_too_large_for_the_body_buffer_is_answer_too_large() {
    // A chunked login answer (about 500 bytes in chunks of 250) into a 300-byte buffer.
    let server = start(ServerConfig {
        framing: Framing::Chunked,
        ..ServerConfig::default()
    });
    let protocol = Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "device-password",
        }),
        ..SimpleJwt::default()
    });
    let mut scratch = [0u8; 1024];
    let mut client: Tokio<'_> = AsyncClient::new(
        Session::new(protocol, no_jitter()),
        transport(&server),
        SystemClock::new(),
        TokioDelay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 300];
    match client.send(&API, &mut body).await {
        Err(jwt_refresh::Error::AnswerTooLarge(e)) => {
            assert_eq!(e.kind(), ErrorKind::BufferTooSmall)
        }
        other => panic!("{other:?}"),
    }
    // The server answered the login; the API was never asked.
    assert_eq!(
        (
            server.count(EventKind::Login),
            server.count(EventKind::Protected)
        ),
        (1, 0)
    );
}

#[tokio::test]
async fn retry_after_and_www_authenticate_are_reported_and_statuses_are_answers() {
    let server = start(ServerConfig {
        faults: vec![Fault::on_path(
            PROTECTED_PATH,
            1,
            FaultAction::Unavailable {
                retry_after_secs: 7,
            },
        )],
        ..ServerConfig::default()
    });
    let mut transport = transport(&server);
    let mut body = [0u8; 1024];
    let authorization = format!("Bearer {}", server.issue_tokens().0);

    let busy = transport
        .send(&bearer(&authorization), &mut body)
        .await
        .unwrap();
    assert_eq!(busy.status, 503);
    assert_eq!(busy.retry_after, Some(Duration::from_secs(7)));
    assert_eq!(busy.bearer_error, None);
    assert!(busy.body_len > 0, "the 503's body is read too");

    // An expired token: 401 with SimpleJWT's `WWW-Authenticate: Bearer realm="api"`.
    let expired = server.mint_token("access", StdDuration::ZERO);
    let expired = format!("Bearer {expired}");
    let rejected = transport.send(&bearer(&expired), &mut body).await.unwrap();
    assert_eq!(rejected.status, 401);
    assert_eq!(rejected.bearer_error, Some(BearerError::None));
    assert_eq!(rejected.retry_after, None);
    let text = std::str::from_utf8(&body[..rejected.body_len]).unwrap();
    assert!(text.contains("token_not_valid"), "{text}");

    // And a good request after both.
    let ok = transport
        .send(&bearer(&authorization), &mut body)
        .await
        .unwrap();
    assert_eq!(
        (ok.status, ok.retry_after, ok.bearer_error),
        (200, None, None)
    );
}

#[tokio::test]
async fn redirects_are_answers_and_not_followed() {
    let server = start(ServerConfig::default());
    let mut transport = transport(&server);
    let mut body = [0u8; 256];
    // Django's APPEND_SLASH: `/api/token/refresh` answers 301 to `/api/token/refresh/`.
    let refresh = Request {
        endpoint: Endpoint::Auth,
        ..Request::post(
            REFRESH_PATH.trim_end_matches('/'),
            "application/json",
            br#"{"refresh":"r"}"#,
        )
    };
    let response = transport.send(&refresh, &mut body).await.unwrap();
    assert_eq!((response.status, response.body_len), (301, 0));
    // One request only: the redirect was not followed.
    assert_eq!(server.events().len(), 1);
    assert_eq!(server.count(EventKind::Refresh), 0);
}

#[tokio::test]
async fn token_requests_reach_the_token_endpoint_with_their_headers() {
    // The API and the token endpoint on two servers: each request goes to its own.
    let api = start(ServerConfig::default());
    let auth = start(ServerConfig::default());
    let mut transport = ReqwestTransport::new(&format!("{}/", api.url()), &auth.url()).unwrap();
    assert_eq!(transport.base_url(Endpoint::Api), api.url());
    let login = Request {
        endpoint: Endpoint::Auth,
        ..Request::post(
            TOKEN_PATH,
            "application/json",
            br#"{"username":"device","password":"device-password"}"#,
        )
    };
    let mut body = [0u8; 2048];
    let response = transport.send(&login, &mut body).await.unwrap();
    assert_eq!(
        response.status, 200,
        "the JSON body and its Content-Type arrived"
    );
    let tokens: serde_json::Value = serde_json::from_slice(&body[..response.body_len]).unwrap();
    let access = tokens["access"].as_str().unwrap();
    let authorization = format!("Bearer {access}");
    let response = transport
        .send(&bearer(&authorization), &mut body)
        .await
        .unwrap();
    assert_eq!(response.status, 200, "the Authorization header arrived");
    assert_eq!(
        (
            auth.count(EventKind::Login),
            auth.count(EventKind::Protected)
        ),
        (1, 0)
    );
    assert_eq!(
        (api.count(EventKind::Login), api.count(EventKind::Protected)),
        (0, 1)
    );
}

// ---------------------------------------------------------------------------------------------
// Raw servers: silence, a stalled body, the keep-alive trap
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// Accepts and never writes a byte.
    Silent,
    /// Reads the request, sends the head and 4 of 100 body bytes, then nothing.
    StalledBody,
    /// Answers the first request on a connection (HTTP/1.1 keep-alive, `Content-Length`);
    /// a second request on that connection is read and the socket closed without an answer:
    /// the server closing an idle connection just as the client reuses it.
    KeepAliveTrap,
}

/// A request a raw server read: `(connection, request on it, method, answered)`, counted
/// from 1.
type Entry = (usize, usize, String, bool);
type Log = Arc<Mutex<Vec<Entry>>>;

/// A raw HTTP/1.1 server on 127.0.0.1 for the cases the demo server cannot play. It stops by
/// itself after 20 s, or when dropped.
struct RawServer {
    addr: SocketAddr,
    log: Log,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl RawServer {
    fn start(mode: Mode) -> RawServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let log: Log = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let (accept_log, accept_stop) = (Arc::clone(&log), Arc::clone(&stop));
        let accept = thread::spawn(move || {
            let until = StdInstant::now() + StdDuration::from_secs(20);
            let mut connections = Vec::new();
            while !accept_stop.load(Ordering::SeqCst) && StdInstant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let conn = connections.len() + 1;
                        let (log, stop) = (Arc::clone(&accept_log), Arc::clone(&accept_stop));
                        connections.push(thread::spawn(move || {
                            serve(mode, conn, stream, &log, &stop, until)
                        }));
                    }
                    Err(_) => thread::sleep(StdDuration::from_millis(5)),
                }
            }
            accept_stop.store(true, Ordering::SeqCst);
            for connection in connections {
                let _ = connection.join();
            }
        });
        RawServer {
            addr,
            log,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn log(&self) -> Vec<Entry> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Reads one request (head, then a `Content-Length` body): its method, or `None` when the
/// client closed, the server stops or the deadline passes.
fn read_request(stream: &mut TcpStream, stop: &AtomicBool, until: StdInstant) -> Option<String> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut request = httparse::Request::new(&mut headers);
        if let Ok(httparse::Status::Complete(head)) = request.parse(&buf) {
            let length: usize = request
                .headers
                .iter()
                .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                .unwrap_or(0);
            let method = request.method.unwrap_or_default().to_owned();
            while buf.len() < head + length {
                match stream.read(&mut chunk) {
                    Ok(0) => return None,
                    Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    Err(_) if !stop.load(Ordering::SeqCst) && StdInstant::now() < until => {}
                    Err(_) => return None,
                }
            }
            return Some(method);
        }
        match stream.read(&mut chunk) {
            Ok(0) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            // The read timeout: look at the stop flag and the deadline, then read on.
            Err(_) if !stop.load(Ordering::SeqCst) && StdInstant::now() < until => {}
            Err(_) => return None,
        }
    }
}

fn serve(
    mode: Mode,
    conn: usize,
    mut stream: TcpStream,
    log: &Mutex<Vec<Entry>>,
    stop: &AtomicBool,
    until: StdInstant,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(StdDuration::from_millis(20)))
        .unwrap();
    let hold = |stop: &AtomicBool| {
        while !stop.load(Ordering::SeqCst) && StdInstant::now() < until {
            thread::sleep(StdDuration::from_millis(10));
        }
    };
    match mode {
        Mode::Silent => hold(stop),
        Mode::StalledBody => {
            if let Some(method) = read_request(&mut stream, stop, until) {
                log.lock().unwrap().push((conn, 1, method, false));
                let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"ok");
                hold(stop);
            }
        }
        Mode::KeepAliveTrap => {
            let Some(method) = read_request(&mut stream, stop, until) else {
                return;
            };
            log.lock().unwrap().push((conn, 1, method.clone(), true));
            let body: &[u8] = if method == "POST" {
                br#"{"access":"a","refresh":"r"}"#
            } else {
                br#"{"ok":true}"#
            };
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nKeep-Alive: timeout=5\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&[head.as_bytes(), body].concat());
            // The connection stays open, idle. A second request on it is never answered.
            if let Some(method) = read_request(&mut stream, stop, until) {
                log.lock().unwrap().push((conn, 2, method, false));
                let _ = stream.shutdown(Shutdown::Both);
            }
        }
    }
}

#[tokio::test]
async fn a_server_that_never_answers_times_out() {
    let silent = RawServer::start(Mode::Silent);
    let mut transport = ReqwestTransport::new(&silent.url(), &silent.url())
        .unwrap()
        .with_timeout(StdDuration::from_millis(300));
    assert_eq!(transport.timeout(), StdDuration::from_millis(300));
    let mut body = [0u8; 256];
    let err = transport.send(&API, &mut body).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");

    // The head arrives, the body stalls: the timeout covers the whole answer.
    let stalled = RawServer::start(Mode::StalledBody);
    let mut transport = ReqwestTransport::new(&stalled.url(), &stalled.url())
        .unwrap()
        .with_timeout(StdDuration::from_millis(300));
    let err = transport.send(&API, &mut body).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TimedOut, "{err:?}");
    assert_eq!(stalled.log().len(), 1, "the request was read");
}

fn token_request() -> Request<'static> {
    Request {
        endpoint: Endpoint::Auth,
        ..Request::post(REFRESH_PATH, "application/json", br#"{"refresh":"r"}"#)
    }
}

/// An API request that leaves its connection idle in the pool, a pause for the pool to take
/// it back, then a token request to the same host and port.
async fn api_then_token(
    transport: &mut ReqwestTransport,
) -> (Response, Result<Response, jwt_refresh::reqwest::Error>) {
    let mut body = [0u8; 256];
    let api = transport
        .send(&API, &mut body)
        .await
        .expect("the API request");
    tokio::time::sleep(StdDuration::from_millis(100)).await;
    let token = transport.send(&token_request(), &mut body).await;
    (api, token)
}

#[tokio::test]
async fn a_token_request_never_reuses_a_connection_the_server_closed() {
    let trap = RawServer::start(Mode::KeepAliveTrap);
    let mut transport = ReqwestTransport::new(&trap.url(), &trap.url()).unwrap();
    let (api, token) = api_then_token(&mut transport).await;
    assert_eq!(api.status, 200);
    let token = token.expect("the token request went out on a new connection");
    assert_eq!(token.status, 200);
    // And another one: a token request never leaves a connection behind either.
    let mut body = [0u8; 256];
    let again = transport.send(&token_request(), &mut body).await.unwrap();
    assert_eq!(again.status, 200);
    let log = trap.log();
    let on: Vec<(usize, usize, &str, bool)> = log
        .iter()
        .map(|(c, n, m, answered)| (*c, *n, m.as_str(), *answered))
        .collect();
    assert_eq!(
        on,
        [
            (1, 1, "GET", true),
            (2, 1, "POST", true),
            (3, 1, "POST", true)
        ]
    );
}

#[tokio::test]
async fn control_a_pooled_token_client_falls_into_the_keep_alive_trap() {
    // The same exchange with the API's pooled client for tokens too: the refresh goes out on
    // the idle connection and the server closes it. This is what the token client prevents.
    let trap = RawServer::start(Mode::KeepAliveTrap);
    let pooled = ReqwestTransport::api_client_builder().build().unwrap();
    let mut transport =
        ReqwestTransport::with_clients(&trap.url(), &trap.url(), pooled.clone(), pooled).unwrap();
    let (api, token) = api_then_token(&mut transport).await;
    assert_eq!(api.status, 200);
    let err = token.expect_err("the refresh was sent on the closed connection");
    assert_eq!(err.kind(), ErrorKind::Other, "{err:?}");
    let log = trap.log();
    assert_eq!(
        log.iter()
            .map(|(c, n, m, answered)| (*c, *n, m.as_str(), *answered))
            .collect::<Vec<_>>(),
        [(1, 1, "GET", true), (1, 2, "POST", false)]
    );
}

// ---------------------------------------------------------------------------------------------
// Send, Debug, construction, TokioDelay
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn futures_are_send() {
    // Compile-time: these futures can be `tokio::spawn`ed. (The timelines spawn a whole
    // `AsyncClient::send` loop.) Not awaited: nothing listens on port 9.
    let mut transport = ReqwestTransport::new("http://127.0.0.1:9", "http://127.0.0.1:9").unwrap();
    let mut body = [0u8; 16];
    drop(assert_send(transport.send(&API, &mut body)));
    let mut delay = TokioDelay;
    drop(assert_send(delay.delay_ms(1)));
    drop(assert_send(delay.delay_ns(1)));
}

#[tokio::test]
async fn debug_and_errors_show_no_secret() {
    let transport = ReqwestTransport::new("http://127.0.0.1:9/v1/", "http://127.0.0.1:9").unwrap();
    let debug = format!("{transport:?}");
    assert_eq!(
        debug,
        "ReqwestTransport { api: \"http://127.0.0.1:9/v1\", auth: \"http://127.0.0.1:9\", timeout: 10s, .. }"
    );
    assert_eq!(transport.timeout(), DEFAULT_TIMEOUT);

    // A refused connection, with a token in the header and a secret in the body and path.
    let closed = TcpListener::bind(("127.0.0.1", 0)).unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let mut transport = ReqwestTransport::new(&url, &url).unwrap();
    let request = Request {
        authorization: Some("Bearer secret-access-token"),
        endpoint: Endpoint::Auth,
        ..Request::post(
            "/api/token/?code=secret-in-path",
            "application/json",
            br#"{"refresh":"secret-refresh-token"}"#,
        )
    };
    let mut body = [0u8; 64];
    let err = transport.send(&request, &mut body).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Other);
    for text in [format!("{err:?}"), format!("{err}")] {
        for secret in [
            "secret-access-token",
            "secret-refresh-token",
            "secret-in-path",
        ] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
    // An invalid header value is named, never shown.
    let request = Request {
        authorization: Some("Bearer secret\nX-Injected: 1"),
        ..API
    };
    let err = transport.send(&request, &mut body).await.unwrap_err();
    assert!(matches!(
        err,
        jwt_refresh::reqwest::Error::InvalidHeader("Authorization")
    ));
    assert!(!format!("{err:?} {err}").contains("secret"));
}

#[test]
fn base_urls_must_be_plain_http_or_https() {
    for (url, reason) in [
        ("127.0.0.1:8000", "not an absolute URL"),
        ("ftp://example.com", "the scheme is not http or https"),
        (
            "http://user:secret@example.com",
            "credentials in a URL are not sent; use the protocol's",
        ),
        (
            "http://example.com/?tenant=1",
            "a base URL has no query or fragment",
        ),
        (
            "http://example.com/#x",
            "a base URL has no query or fragment",
        ),
    ] {
        match ReqwestTransport::new(url, "http://example.com") {
            Err(jwt_refresh::reqwest::Error::Url {
                endpoint: Endpoint::Api,
                reason: r,
            }) => {
                assert_eq!(r, reason, "{url}")
            }
            other => panic!("{url}: {other:?}"),
        }
        let err = ReqwestTransport::new("http://example.com", url).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        assert!(matches!(
            err,
            jwt_refresh::reqwest::Error::Url {
                endpoint: Endpoint::Auth,
                ..
            }
        ));
    }
    let transport =
        ReqwestTransport::new("https://api.example.com/v1/", "https://auth.example.com").unwrap();
    assert_eq!(
        transport.base_url(Endpoint::Api),
        "https://api.example.com/v1"
    );
    assert_eq!(
        transport.base_url(Endpoint::Auth),
        "https://auth.example.com"
    );
}

#[tokio::test(start_paused = true)]
async fn tokio_delay_sleeps_as_long_as_asked_on_tokio_time() {
    // Tokio's paused clock jumps to each sleep's deadline, so the durations are exact, to
    // tokio's timer resolution of a millisecond (a shorter sleep is rounded up, never down).
    let start = tokio::time::Instant::now();
    let mut delay = TokioDelay;
    delay.delay_ms(1500).await;
    assert_eq!(start.elapsed(), StdDuration::from_millis(1500));
    delay.delay_us(2_000).await;
    assert_eq!(start.elapsed(), StdDuration::from_millis(1502));
    delay.delay_ns(7_000_000).await;
    assert_eq!(start.elapsed(), StdDuration::from_millis(1509));
    delay.delay_us(300).await;
    assert_eq!(start.elapsed(), StdDuration::from_millis(1510));
    // Beyond the default method's 4,294 ms step: one sleep, not a loop of them.
    delay.delay_ms(u32::MAX).await;
    assert_eq!(
        start.elapsed(),
        StdDuration::from_millis(1510 + u64::from(u32::MAX))
    );
}
