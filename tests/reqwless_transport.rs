//! The reqwless adapter (`jwt_refresh::reqwless`, feature `reqwless`) over real TCP on
//! 127.0.0.1: a real `AsyncClient` with `ReqwlessTransport` against the demo server
//! (`examples/support/server.rs`) on each of its framings, then what `Transport` asks of every
//! transport: answers that do not fit, the headers the session reads, a timeout, one connection
//! per request, no secret in `Debug`.
//!
//! reqwless is generic over `embedded-nal-async`'s `TcpConnect` and `Dns`; on the host they are
//! implemented over tokio's `TcpStream` and `lookup_host` (`TokioStack`, in
//! `examples/support/tokio_stack.rs`, which `examples/tokio_server.rs --transport reqwless` uses
//! against the Django interop server), and the tests run on tokio's current-thread runtime.
//!
//! `cargo test --features reqwless --test reqwless_transport` (Rust 1.91 or newer, as reqwless)

#[path = "../examples/support/server.rs"]
mod server;
#[path = "support/timeline.rs"]
mod timeline;
#[path = "../examples/support/tokio_stack.rs"]
mod tokio_stack;

use std::sync::atomic::Ordering;
use std::time::Duration as StdDuration;

use embedded_hal_async::delay::DelayNs;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::reqwless::reqwless::client::HttpClient;
use jwt_refresh::reqwless::{Error as ReqwlessError, NoTimeout, ReqwlessTransport};
use jwt_refresh::transport::{BearerError, Endpoint, Error as _, ErrorKind, Request};
use jwt_refresh::{
    AsyncClient, AsyncTransport, Clock, Duration, NoStore, Protocol, RefreshPolicy, Session,
    SystemClock,
};
use server::{
    EventKind, Fault, FaultAction, Framing, Server, ServerConfig, PROTECTED_PATH, TOKEN_PATH,
};
use timeline::Seen;
use tokio_stack::TokioStack;

const API: Request<'static> = Request::get(PROTECTED_PATH);
const FRAMINGS: [Framing; 3] = [Framing::ContentLength, Framing::Chunked, Framing::Close];
const PROTECTED_BODY: &[u8] = br#"{"ok":true,"user_id":"1"}"#;

// ---------------------------------------------------------------------------------------------
// A std network stack for reqwless: embedded-nal-async over tokio (`TokioStack`, shared with
// examples/tokio_server.rs in examples/support/tokio_stack.rs), and a delay
// ---------------------------------------------------------------------------------------------

/// An `embedded_hal_async::delay::DelayNs` over `tokio::time::sleep`.
struct TokioSleep;

impl DelayNs for TokioSleep {
    async fn delay_ns(&mut self, ns: u32) {
        tokio::time::sleep(StdDuration::from_nanos(u64::from(ns))).await;
    }
}

type Transport<'a> = ReqwlessTransport<'a, TokioStack, TokioStack, NoTimeout>;

fn start(config: ServerConfig) -> Server {
    Server::start(config).expect("start the demo server")
}

fn transport<'a>(stack: &'a TokioStack, url: &'a str, rx: &'a mut [u8]) -> Transport<'a> {
    ReqwlessTransport::new(HttpClient::new(stack, stack), url, url, rx).expect("a transport")
}

/// `API` with a bearer token.
fn bearer(authorization: &str) -> Request<'_> {
    Request {
        authorization: Some(authorization),
        ..API
    }
}

fn no_jitter() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

fn device() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "device-password",
        }),
        ..SimpleJwt::default()
    })
}

// ---------------------------------------------------------------------------------------------
// The driver: login, API requests, a refresh ahead of expiry, an expiry, a refresh
// ---------------------------------------------------------------------------------------------

type Client<'a, 'b> = AsyncClient<'static, 'b, Transport<'a>, SystemClock, TokioSleep, NoStore>;

async fn send_api(client: &mut Client<'_, '_>, body: &mut [u8]) -> u16 {
    let response = client.send(&API, body).await.expect("send");
    assert_eq!(
        &body[..response.body_len],
        PROTECTED_BODY,
        "the API's answer, whole"
    );
    response.status
}

/// With 3-second tokens and no jitter the session uses a token for 2 s from its request and
/// refreshes it after 1 s (as in tests/reqwest_transport.rs).
async fn timeline(framing: Framing) {
    let mut server = start(ServerConfig {
        access_lifetime: StdDuration::from_secs(3),
        framing,
        ..ServerConfig::default()
    });
    let url = server.url();
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let clock = SystemClock::new();
    let mut scratch = [0u8; 1024];
    let mut client: Client<'_, '_> = AsyncClient::new(
        Session::new(device(), no_jitter()),
        transport(&stack, &url, &mut rx),
        clock,
        TokioSleep,
        NoStore,
        &mut scratch,
    );
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
    drop(client);
    server.stop();

    let events = server.events();
    timeline::check(framing, &seen, &events);
    // One connection per request, token requests included.
    assert_eq!(
        stack.connects.load(Ordering::SeqCst),
        events.len(),
        "{framing:?}"
    );
}

#[tokio::test]
async fn client_timeline_content_length() {
    timeline(Framing::ContentLength).await;
}

#[tokio::test]
async fn client_timeline_chunked() {
    timeline(Framing::Chunked).await;
}

#[tokio::test]
async fn client_timeline_close_delimited() {
    timeline(Framing::Close).await;
}

// ---------------------------------------------------------------------------------------------
// The transport against the demo server
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_answer_that_does_not_fit_is_buffer_too_small_never_a_truncation() {
    for framing in FRAMINGS {
        let server = start(ServerConfig {
            framing,
            ..ServerConfig::default()
        });
        let url = server.url();
        let authorization = format!("Bearer {}", server.issue_tokens().0);
        let stack = TokioStack::default();
        let mut rx = [0u8; 1024];
        let mut transport = transport(&stack, &url, &mut rx);
        // Exactly as large as the buffer fits, and the bytes after it are untouched.
        let mut exact = vec![b'#'; PROTECTED_BODY.len() + 1];
        let fits = &mut exact[..PROTECTED_BODY.len()];
        let response = transport.send(&bearer(&authorization), fits).await.unwrap();
        assert_eq!(
            (response.status, response.body_len),
            (200, PROTECTED_BODY.len()),
            "{framing:?}"
        );
        assert_eq!(&exact[..PROTECTED_BODY.len()], PROTECTED_BODY);
        assert_eq!(exact[PROTECTED_BODY.len()], b'#');
        // One byte more than the buffer is an error, whatever the framing, and what was
        // written is wiped.
        let mut short = vec![b'#'; PROTECTED_BODY.len() - 1];
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
            Framing::ContentLength => Some(PROTECTED_BODY.len()),
            // Found while reading.
            _ => None,
        };
        assert!(
            matches!(err, ReqwlessError::BufferTooSmall { needed, capacity }
                if needed == announced && capacity == PROTECTED_BODY.len() - 1),
            "{framing:?}: {err:?}"
        );
        if announced.is_none() {
            assert!(short.iter().all(|&b| b == 0), "{framing:?}: wiped");
        }
        // The head buffer is wiped after every request (the transport's borrow ended above).
        assert!(rx.iter().all(|&b| b == 0), "{framing:?}: rx wiped");
    }
}

#[tokio::test]
async fn a_token_answer_too_large_for_the_body_buffer_is_answer_too_large() {
    let server = start(ServerConfig {
        framing: Framing::Chunked,
        ..ServerConfig::default()
    });
    let url = server.url();
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let mut scratch = [0u8; 1024];
    let mut client: Client<'_, '_> = AsyncClient::new(
        Session::new(device(), no_jitter()),
        transport(&stack, &url, &mut rx),
        SystemClock::new(),
        TokioSleep,
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
    let url = server.url();
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let mut transport = transport(&stack, &url, &mut rx);
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
    let expired = format!("Bearer {}", server.mint_token("access", StdDuration::ZERO));
    let rejected = transport.send(&bearer(&expired), &mut body).await.unwrap();
    assert_eq!(rejected.status, 401);
    assert_eq!(rejected.bearer_error, Some(BearerError::None));
    assert_eq!(rejected.retry_after, None);
    let text = std::str::from_utf8(&body[..rejected.body_len]).unwrap();
    assert!(text.contains("token_not_valid"), "{text}");

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
async fn token_requests_reach_the_token_endpoint_with_their_headers() {
    // The API and the token endpoint on two servers: each request goes to its own.
    let api = start(ServerConfig::default());
    let auth = start(ServerConfig::default());
    let (api_url, auth_url) = (format!("{}/", api.url()), auth.url());
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let mut transport = ReqwlessTransport::new(
        HttpClient::new(&stack, &stack),
        &api_url,
        &auth_url,
        &mut rx,
    )
    .unwrap();
    assert_eq!(transport.base_url(Endpoint::Auth), auth_url);
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
    let authorization = format!("Bearer {}", tokens["access"].as_str().unwrap());
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
    assert_eq!(stack.connects.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_when_a_timeout_is_set() {
    let server = start(ServerConfig {
        faults: vec![Fault::every(
            PROTECTED_PATH,
            FaultAction::Delay(StdDuration::from_secs(3)),
        )],
        ..ServerConfig::default()
    });
    let url = server.url();
    let authorization = format!("Bearer {}", server.issue_tokens().0);
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let mut transport =
        transport(&stack, &url, &mut rx).with_timeout(TokioSleep, Duration::from_millis(300));
    assert_eq!(transport.timeout(), Some(Duration::from_millis(300)));
    let mut body = [0u8; 256];
    let started = std::time::Instant::now();
    let err = transport
        .send(&bearer(&authorization), &mut body)
        .await
        .unwrap_err();
    assert!(matches!(err, ReqwlessError::TimedOut), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::TimedOut);
    assert!(started.elapsed() < StdDuration::from_secs(2));
}

#[tokio::test]
async fn a_head_larger_than_rx_is_an_error_not_a_panic() {
    let server = start(ServerConfig::default());
    let url = server.url();
    let authorization = format!("Bearer {}", server.issue_tokens().0);
    let stack = TokioStack::default();
    let mut rx = [0u8; 16];
    let mut transport = transport(&stack, &url, &mut rx);
    let mut body = [0u8; 256];
    let err = transport
        .send(&bearer(&authorization), &mut body)
        .await
        .unwrap_err();
    assert!(matches!(err, ReqwlessError::HeadTooLarge), "{err:?}");
    assert_eq!(err.kind(), ErrorKind::Other);
}

#[tokio::test]
async fn unsendable_requests_and_urls_are_refused_without_connecting() {
    let stack = TokioStack::default();
    let mut rx = [0u8; 256];
    let mut transport = transport(&stack, "http://127.0.0.1:9", &mut rx);
    let mut body = [0u8; 64];
    let injected = bearer("Bearer a\r\nX-Evil: 1");
    let err = transport.send(&injected, &mut body).await.unwrap_err();
    assert!(
        matches!(err, ReqwlessError::InvalidRequest("Authorization")),
        "{err:?}"
    );
    let spaced = Request::get("/a b");
    let err = transport.send(&spaced, &mut body).await.unwrap_err();
    assert!(
        matches!(err, ReqwlessError::InvalidRequest("path")),
        "{err:?}"
    );
    assert_eq!(stack.connects.load(Ordering::SeqCst), 0);

    for url in [
        "ftp://h/",
        "http://",
        "http://user:pw@h",
        "http://h/?q",
        "http://h/#f",
        "http://h /",
        "h:80",
    ] {
        let mut rx = [0u8; 16];
        let err = ReqwlessTransport::new(HttpClient::new(&stack, &stack), url, "http://h", &mut rx)
            .unwrap_err();
        assert!(
            matches!(
                err,
                ReqwlessError::Url {
                    endpoint: Endpoint::Api,
                    ..
                }
            ),
            "{url}: {err:?}"
        );
    }
    let mut empty: [u8; 0] = [];
    assert!(matches!(
        ReqwlessTransport::new(
            HttpClient::new(&stack, &stack),
            "http://h",
            "http://h",
            &mut empty
        ),
        Err(ReqwlessError::HeadTooLarge)
    ));
}

#[tokio::test]
async fn debug_shows_no_secret() {
    let server = start(ServerConfig::default());
    let url = server.url();
    let stack = TokioStack::default();
    let mut rx = [0u8; 1024];
    let mut transport = transport(&stack, &url, &mut rx);
    let mut body = [0u8; 1024];
    let password = "device-password";
    let login = Request {
        endpoint: Endpoint::Auth,
        ..Request::post(
            TOKEN_PATH,
            "application/json",
            br#"{"username":"device","password":"device-password"}"#,
        )
    };
    let response = transport.send(&login, &mut body).await.unwrap();
    assert_eq!(response.status, 200);
    let shown = format!("{transport:?}");
    assert!(shown.contains(&url), "{shown}");
    assert!(!shown.contains(password), "{shown}");
    assert!(!shown.contains("access"), "{shown}");
}
