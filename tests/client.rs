//! The blocking and async drivers against scripted transports, a fake clock and
//! `embedded-hal-mock`'s `CheckedDelay`, which checks every backoff sleep exactly.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction};
use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::session::LoginReason;
use jwt_refresh::transport::{Endpoint, ErrorKind, ErrorType, Method, Response};
use jwt_refresh::{
    AsyncClient, AsyncTransport, Client, ClientConfig, Clock, Duration, EndpointError, Error,
    Instant, NoStore, Protocol, RefreshError, RefreshPolicy, Request, Session, TokenStore,
    Transport,
};

const EPOCH: u64 = 1_700_000_000;

fn mint(kind: &str, at_secs: u64, lifetime: u64) -> String {
    #[derive(serde::Serialize)]
    struct C<'a> {
        token_type: &'a str,
        exp: u64,
        iat: u64,
        jti: String,
    }
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let jti = format!(
        "{:032x}",
        N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
    );
    let c = C {
        token_type: kind,
        exp: EPOCH + at_secs + lifetime,
        iat: EPOCH + at_secs,
        jti,
    };
    encode(&Header::default(), &c, &EncodingKey::from_secret(b"k")).unwrap()
}

/// Monotonic milliseconds shared by the clock, the delay and the transport.
#[derive(Clone, Default)]
struct FakeClock(Rc<Cell<u64>>);

impl FakeClock {
    fn advance(&self, ms: u64) {
        self.0.set(self.0.get() + ms);
    }
    fn ms(&self) -> u64 {
        self.0.get()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.get())
    }
}

/// Checks each sleep against the expectations, then advances the fake clock by it.
struct Delay {
    checked: CheckedDelay,
    clock: FakeClock,
}

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        embedded_hal::delay::DelayNs::delay_ns(&mut self.checked, ns);
        self.clock.advance(u64::from(ns) / 1_000_000);
    }
    fn delay_ms(&mut self, ms: u32) {
        embedded_hal::delay::DelayNs::delay_ms(&mut self.checked, ms);
        self.clock.advance(u64::from(ms));
    }
}

impl embedded_hal_async::delay::DelayNs for Delay {
    async fn delay_ns(&mut self, ns: u32) {
        embedded_hal_async::delay::DelayNs::delay_ns(&mut self.checked, ns).await;
        self.clock.advance(u64::from(ns) / 1_000_000);
    }
    async fn delay_ms(&mut self, ms: u32) {
        embedded_hal_async::delay::DelayNs::delay_ms(&mut self.checked, ms).await;
        self.clock.advance(u64::from(ms));
    }
}

/// One scripted answer: status and body, or a transport failure of this kind.
enum Answer {
    Http {
        status: u16,
        body: String,
        retry_after: Option<u64>,
    },
    Fail(ErrorKind),
}

fn http(status: u16, body: impl Into<String>) -> Answer {
    Answer::Http {
        status,
        body: body.into(),
        retry_after: None,
    }
}

/// What the transport was asked.
#[derive(Debug, Clone, PartialEq)]
struct Sent {
    at_ms: u64,
    endpoint: Endpoint,
    path: String,
    authorization: Option<String>,
    body: String,
}

/// A transport that plays a script, each answer taking `latency_ms` of fake time.
#[derive(Clone)]
struct Scripted {
    answers: Rc<RefCell<VecDeque<Answer>>>,
    sent: Rc<RefCell<Vec<Sent>>>,
    clock: FakeClock,
    latency_ms: u64,
}

impl Scripted {
    fn new(clock: &FakeClock, answers: Vec<Answer>) -> Self {
        Scripted {
            answers: Rc::new(RefCell::new(answers.into())),
            sent: Rc::default(),
            clock: clock.clone(),
            latency_ms: 10,
        }
    }

    fn exchange(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        self.sent.borrow_mut().push(Sent {
            at_ms: self.clock.ms(),
            endpoint: request.endpoint,
            path: request.path.to_owned(),
            authorization: request.authorization.map(str::to_owned),
            body: String::from_utf8(request.body.to_vec()).unwrap(),
        });
        self.clock.advance(self.latency_ms);
        let answer = self
            .answers
            .borrow_mut()
            .pop_front()
            .expect("script ran out");
        match answer {
            Answer::Fail(kind) => Err(kind),
            Answer::Http {
                status,
                body: text,
                retry_after,
            } => {
                let dst = body
                    .get_mut(..text.len())
                    .ok_or(ErrorKind::BufferTooSmall)?;
                dst.copy_from_slice(text.as_bytes());
                let mut response = Response::new(status, text.len());
                response.retry_after = retry_after.map(Duration::from_secs);
                Ok(response)
            }
        }
    }

    fn sent(&self) -> Vec<Sent> {
        self.sent.borrow().clone()
    }
}

impl ErrorType for Scripted {
    type Error = ErrorKind;
}

impl Transport for Scripted {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}

impl AsyncTransport for Scripted {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}

/// A store in memory that can be told to fail.
#[derive(Default)]
struct MemStore {
    token: Option<String>,
    fail_saves: bool,
    saves: u32,
}

impl TokenStore for MemStore {
    type Error = &'static str;
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, &'static str> {
        let Some(token) = &self.token else {
            return Ok(None);
        };
        let dst = buf.get_mut(..token.len()).ok_or("too long")?;
        dst.copy_from_slice(token.as_bytes());
        Ok(Some(std::str::from_utf8(dst).unwrap()))
    }
    fn save(&mut self, refresh_token: &str) -> Result<(), &'static str> {
        if self.fail_saves {
            return Err("flash write failed");
        }
        self.saves += 1;
        self.token = Some(refresh_token.to_owned());
        Ok(())
    }
    fn clear(&mut self) -> Result<(), &'static str> {
        self.token = None;
        Ok(())
    }
}

fn protocol() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "pw",
        }),
        ..SimpleJwt::default()
    })
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

fn pair(access: &str, refresh: &str) -> String {
    format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#)
}

const API: Request<'static> = Request::get("/api/protected/");

#[test]
fn login_send_refresh_rotate_and_persist() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let (a2, r2) = (mint("access", 270, 300), mint("refresh", 270, 86_400));
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, pair(&a1, &r1)),
            http(200, r#"{"ok":true}"#),
            http(200, pair(&a2, &r2)),
            http(200, r#"{"ok":true}"#),
        ],
    );
    let mut store = MemStore::default();
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    let mut body = [0u8; 2048];

    let response = client.send(&API, &mut body).unwrap();
    assert_eq!(
        (response.status, &body[..response.body_len]),
        (200, &br#"{"ok":true}"#[..])
    );
    clock.advance(270_000);
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    delay.checked.done();

    let sent = transport.sent();
    let paths: Vec<_> = sent.iter().map(|s| (s.endpoint, s.path.as_str())).collect();
    assert_eq!(
        paths,
        [
            (Endpoint::Auth, "/api/token/"),
            (Endpoint::Api, "/api/protected/"),
            (Endpoint::Auth, "/api/token/refresh/"),
            (Endpoint::Api, "/api/protected/"),
        ]
    );
    assert_eq!(
        sent[1].authorization.as_deref(),
        Some(format!("Bearer {a1}").as_str())
    );
    assert_eq!(sent[2].body, format!(r#"{{"refresh":"{r1}"}}"#));
    assert_eq!(
        sent[3].authorization.as_deref(),
        Some(format!("Bearer {a2}").as_str())
    );
    // The rotated refresh token was saved before the new access token was used.
    assert_eq!(
        (store.saves, store.token.as_deref()),
        (2, Some(r2.as_str()))
    );
}

#[test]
fn expired_token_and_failing_refresh_sleep_through_exact_backoffs() {
    // The token has expired; the token endpoint answers 503 twice, then succeeds. The client
    // sleeps 1 s (the first backoff with no usable token is exactly backoff_base), then the
    // second backoff (about one refresh interval of the 5-minute token: 254 to 284 s, drawn
    // from the session's seeded generator, checked exactly), and sends.
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let a2 = mint("access", 400, 300);
    let script = || {
        vec![
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
            http(503, "busy"),
            http(503, "busy"),
            http(200, format!(r#"{{"access":"{a2}"}}"#)),
            http(200, "{}"),
        ]
    };
    // First learn the second backoff from an identical, unchecked run of the session alone.
    let second_backoff = {
        let mut s: Session<'_> = Session::new(protocol(), policy());
        let mut buf = [0u8; 1024];
        let now = Instant::from_millis(400_000);
        let _ = s.poll(Instant::ZERO, &mut buf);
        s.handle_token_response(
            Instant::ZERO,
            None,
            &jwt_refresh::TokenResponse {
                status: 200,
                body: pair(&a1, &r1).as_bytes(),
                retry_after: None,
            },
        )
        .unwrap();
        let _ = s.poll(Instant::ZERO, &mut buf);
        s.handle_persisted(true);
        let _ = s.poll(now, &mut buf);
        s.handle_no_answer(now).unwrap();
        let _ = s.poll(Instant::from_millis(401_000), &mut buf);
        s.handle_no_answer(Instant::from_millis(401_000)).unwrap();
        match s.poll(Instant::from_millis(401_000), &mut buf) {
            jwt_refresh::Output::Timeout(at) => at
                .saturating_duration_since(Instant::from_millis(401_000))
                .as_millis(),
            other => panic!("{other:?}"),
        }
    };
    assert!(
        (254_150..=284_050).contains(&second_backoff),
        "{second_backoff}"
    );

    let mut transport = Scripted::new(&clock, script());
    transport.latency_ms = 0;
    let mut delay = Delay {
        checked: CheckedDelay::new(&[
            Transaction::delay_ms(1000),
            Transaction::delay_ms(second_backoff as u32),
        ]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    )
    .with_config(ClientConfig {
        max_wait: Duration::from_secs(300),
    });
    let mut body = [0u8; 2048];
    client.send(&API, &mut body).unwrap();
    clock.advance(400_000);
    let response = client.send(&API, &mut body).unwrap();
    assert_eq!(response.status, 200);
    drop(client);
    delay.checked.done();
    let sent = transport.sent();
    assert_eq!(
        sent.last().unwrap().authorization.as_deref(),
        Some(format!("Bearer {a2}").as_str())
    );
    // Never an API request with the expired token.
    assert!(sent
        .iter()
        .filter(|s| s.endpoint == Endpoint::Api)
        .all(|s| s.at_ms < 299_000
            || s.authorization.as_deref() != Some(format!("Bearer {a1}").as_str())));
}

#[test]
fn failing_refresh_ahead_of_expiry_does_not_fail_the_request() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
            http(503, ""),
            http(200, "{}"),
        ],
    );
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    clock.advance(280_000); // inside the refresh margin, before expiry
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    delay.checked.done();
    let sent = transport.sent();
    // login, API; then (at 280 s) refresh -> 503, and the API request with the still-valid
    // token, without sleeping.
    assert_eq!(sent.len(), 4);
    assert_eq!(
        (sent[2].endpoint, sent[3].endpoint),
        (Endpoint::Auth, Endpoint::Api)
    );
    assert_eq!(
        sent[3].authorization.as_deref(),
        Some(format!("Bearer {a1}").as_str())
    );
}

#[test]
fn one_401_one_refresh_one_retry_then_unauthorized() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let a2 = mint("access", 1, 300);
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
            http(401, r#"{"code":"token_not_valid"}"#),
            http(200, format!(r#"{{"access":"{a2}"}}"#)),
            http(401, r#"{"code":"token_not_valid"}"#),
        ],
    );
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    client.send(&API, &mut body).unwrap();
    match client.send(&API, &mut body) {
        Err(Error::Unauthorized(r)) => assert_eq!(r.status, 401),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    delay.checked.done();
    assert_eq!(transport.answers.borrow().len(), 0);
}

#[test]
fn transport_failure_mid_answer_is_a_transient_failure() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(
        &clock,
        vec![
            Answer::Fail(ErrorKind::Other), // the login's connection breaks mid-answer
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
        ],
    );
    transport.latency_ms = 0;
    let mut delay = Delay {
        checked: CheckedDelay::new(&[Transaction::delay_ms(1000)]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    delay.checked.done();
}

#[test]
fn gives_up_after_max_wait_with_the_last_failure() {
    let clock = FakeClock::default();
    let answers = (0..20)
        .map(|_| Answer::Http {
            status: 503,
            body: String::new(),
            retry_after: Some(30),
        })
        .collect();
    let mut transport = Scripted::new(&clock, answers);
    transport.latency_ms = 0;
    let mut delay = Delay {
        checked: CheckedDelay::new(&[Transaction::delay_ms(30_000), Transaction::delay_ms(30_000)]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    )
    .with_config(ClientConfig {
        max_wait: Duration::from_secs(75),
    });
    let mut body = [0u8; 512];
    match client.send(&API, &mut body) {
        Err(Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable { status: 503, .. })),
        }) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    delay.checked.done();
    assert_eq!(transport.sent().len(), 3); // tries at 0 s, 30 s and 60 s; the next would be at 90 s
}

#[test]
fn failed_save_is_reported_and_the_tokens_stay_usable() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(&clock, vec![http(200, pair(&a1, &r1)), http(200, "{}")]);
    let mut store = MemStore {
        fail_saves: true,
        ..MemStore::default()
    };
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    assert_eq!(client.take_store_error(), Some("flash write failed"));
    assert_eq!(client.take_store_error(), None);
    drop(client);
    delay.checked.done();
}

#[test]
fn restore_continues_without_a_login_and_rejection_clears_the_store() {
    let clock = FakeClock::default();
    let r0 = mint("refresh", 0, 86_400);
    let a1 = mint("access", 0, 300);
    let mut store = MemStore {
        token: Some(r0.clone()),
        ..MemStore::default()
    };
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, format!(r#"{{"access":"{a1}"}}"#)),
            http(200, "{}"),
        ],
    );
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(Protocol::SimpleJwt(SimpleJwt::default()), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    assert!(client.restore().unwrap());
    let mut body = [0u8; 512];
    client.send(&API, &mut body).unwrap();
    drop(client);
    assert_eq!(transport.sent()[0].body, format!(r#"{{"refresh":"{r0}"}}"#));

    // A stored token the server rejects is cleared: a restart will not offer it again.
    let mut transport = Scripted::new(
        &clock,
        vec![http(
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#,
        )],
    );
    let session: Session<'_> = Session::new(Protocol::SimpleJwt(SimpleJwt::default()), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    assert!(client.restore().unwrap());
    match client.send(&API, &mut body) {
        Err(Error::LoginRequired(LoginReason::RefreshTokenRejected)) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    delay.checked.done();
    assert_eq!(store.token, None);
}

#[test]
fn token_answer_too_large_for_the_body_buffer_is_an_error_not_a_loop() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(&clock, vec![http(200, pair(&a1, &r1))]);
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = Client::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut small = [0u8; 64];
    // Not `Transport`, which would say the token was fine; and not worth retrying.
    let err = client.send(&API, &mut small).unwrap_err();
    assert!(matches!(
        err,
        Error::AnswerTooLarge(ErrorKind::BufferTooSmall)
    ));
    assert!(!err.is_retryable());
    drop(client);
    delay.checked.done();
}

#[test]
fn a_clock_that_never_advances_still_ends() {
    // A broken clock and a no-op delay: the loop is bounded all the same.
    struct Frozen;
    impl Clock for Frozen {
        fn now(&self) -> Instant {
            Instant::from_secs(5)
        }
    }
    let clock = FakeClock::default();
    let answers = (0..100).map(|_| http(503, "")).collect();
    let mut transport = Scripted::new(&clock, answers);
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let noop = embedded_hal_mock::eh1::delay::NoopDelay::new();
    let mut client = Client::new(session, &mut transport, Frozen, noop, NoStore, &mut scratch);
    let mut body = [0u8; 512];
    assert!(matches!(
        client.send(&API, &mut body),
        Err(Error::RetryLater { .. })
    ));
    drop(client);
    assert!(transport.sent().len() <= 64);
}

#[test]
fn async_client_does_the_same_with_checked_async_delays() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let a2 = mint("access", 400, 300);
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
            Answer::Http {
                status: 429,
                body: String::new(),
                retry_after: Some(7),
            },
            http(200, format!(r#"{{"access":"{a2}"}}"#)),
            http(200, "{}"),
        ],
    );
    transport.latency_ms = 0;
    let mut delay = Delay {
        checked: CheckedDelay::new(&[Transaction::delay_ms(7000)]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let mut store = MemStore::default();
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    let mut body = [0u8; 2048];
    pollster::block_on(async {
        assert_eq!(client.send(&API, &mut body).await.unwrap().status, 200);
        clock.advance(400_000);
        assert_eq!(client.send(&API, &mut body).await.unwrap().status, 200);
    });
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    delay.checked.done();
    let sent = transport.sent();
    assert_eq!(sent.len(), 5);
    assert_eq!(
        sent[4].authorization.as_deref(),
        Some(format!("Bearer {a2}").as_str())
    );
    assert_eq!(sent[3].at_ms - sent[2].at_ms, 7000); // Retry-After honoured exactly
    assert_eq!(store.token.as_deref(), Some(r1.as_str()));
    let _ = Method::Get;
}

// The async driver runs its own loop around the same step: the paths above, once more with it.

#[test]
fn async_client_gives_up_after_max_wait_with_checked_sleeps() {
    let clock = FakeClock::default();
    let answers = (0..20)
        .map(|_| Answer::Http {
            status: 503,
            body: String::new(),
            retry_after: Some(30),
        })
        .collect();
    let mut transport = Scripted::new(&clock, answers);
    transport.latency_ms = 0;
    let mut delay = Delay {
        checked: CheckedDelay::new(&[Transaction::delay_ms(30_000), Transaction::delay_ms(30_000)]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    )
    .with_config(ClientConfig {
        max_wait: Duration::from_secs(75),
    });
    let mut body = [0u8; 512];
    match pollster::block_on(client.send(&API, &mut body)) {
        Err(Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable { status: 503, .. })),
        }) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    delay.checked.done();
    assert_eq!(transport.sent().len(), 3);
}

#[test]
fn async_client_one_401_one_refresh_one_retry_then_unauthorized() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let a2 = mint("access", 1, 300);
    let mut transport = Scripted::new(
        &clock,
        vec![
            http(200, pair(&a1, &r1)),
            http(200, "{}"),
            http(401, r#"{"code":"token_not_valid"}"#),
            http(200, format!(r#"{{"access":"{a2}"}}"#)),
            http(401, r#"{"code":"token_not_valid"}"#),
        ],
    );
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    pollster::block_on(async {
        client.send(&API, &mut body).await.unwrap();
        match client.send(&API, &mut body).await {
            Err(Error::Unauthorized(r)) => assert_eq!(r.status, 401),
            other => panic!("{other:?}"),
        }
    });
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    delay.checked.done();
    assert_eq!(transport.answers.borrow().len(), 0);
}

#[test]
fn async_client_reports_a_failed_save_and_clears_the_store_on_rejection() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(&clock, vec![http(200, pair(&a1, &r1)), http(200, "{}")]);
    let mut store = MemStore {
        fail_saves: true,
        ..MemStore::default()
    };
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    let mut body = [0u8; 512];
    let sent = pollster::block_on(client.send(&API, &mut body));
    assert_eq!(sent.unwrap().status, 200);
    assert_eq!(client.take_store_error(), Some("flash write failed"));
    drop(client);

    // A stored token that the server rejects is cleared.
    let r0 = mint("refresh", 0, 86_400);
    store = MemStore {
        token: Some(r0),
        ..MemStore::default()
    };
    let mut transport = Scripted::new(
        &clock,
        vec![http(
            401,
            r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#,
        )],
    );
    let session: Session<'_> = Session::new(Protocol::SimpleJwt(SimpleJwt::default()), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        &mut store,
        &mut scratch,
    );
    assert!(client.restore().unwrap());
    match pollster::block_on(client.send(&API, &mut body)) {
        Err(Error::LoginRequired(LoginReason::RefreshTokenRejected)) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    delay.checked.done();
    assert_eq!(store.token, None);
}

#[test]
fn async_client_token_answer_too_large_for_the_body_buffer_is_an_error() {
    let clock = FakeClock::default();
    let (a1, r1) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    let mut transport = Scripted::new(&clock, vec![http(200, pair(&a1, &r1))]);
    let mut delay = Delay {
        checked: CheckedDelay::new(&[]),
        clock: clock.clone(),
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let mut client = AsyncClient::new(
        session,
        &mut transport,
        &clock,
        &mut delay,
        NoStore,
        &mut scratch,
    );
    let mut small = [0u8; 64];
    let err = pollster::block_on(client.send(&API, &mut small)).unwrap_err();
    assert!(matches!(
        err,
        Error::AnswerTooLarge(ErrorKind::BufferTooSmall)
    ));
    assert!(!err.is_retryable());
    drop(client);
    delay.checked.done();
}
