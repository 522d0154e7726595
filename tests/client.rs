//! The blocking and async drivers against the mock kit: a scripted server (`MockTransport`),
//! a clock the test moves, and `embedded-hal-mock`'s `CheckedDelay` in front of it, which checks
//! every backoff sleep exactly.

use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Sleep};
use jwt_refresh::mock::{
    simplejwt, AdvancingDelay, MemStore, MockClock, MockTransport, StoreError, TokenBuilder,
    Transaction,
};
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::session::LoginReason;
use jwt_refresh::transport::ErrorKind;
use jwt_refresh::{
    AsyncClient, Client, ClientConfig, Clock, Duration, EndpointError, Error, Instant, Protocol,
    RefreshError, RefreshPolicy, Request, Session,
};

fn protocol() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "pw",
        }),
        ..SimpleJwt::default()
    })
}

/// No login configured: a provisioned refresh token only.
fn provisioned() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt::default())
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

/// An access token (5 minutes) and a refresh token (1 day) issued at second `at`.
fn tokens(at: u64) -> (String, String) {
    (
        TokenBuilder::access(at, 300).build(),
        TokenBuilder::refresh(at, 86_400).build(),
    )
}

const API: Request<'static> = Request::get("/api/protected/");

/// The API request with `access`, answered `status`.
fn api(access: &str, status: u16) -> Transaction {
    Transaction::get(API.path)
        .bearer(access)
        .respond(status, "{}")
}

/// A server, a clock, a store and the sleeps expected, shared with the client under test.
struct Rig {
    server: MockTransport,
    clock: MockClock,
    store: MemStore,
    sleeps: CheckedDelay,
    config: ClientConfig,
}

type Blocking<'b> =
    Client<'static, 'b, MockTransport, MockClock, AdvancingDelay<CheckedDelay>, MemStore>;
type Async<'b> =
    AsyncClient<'static, 'b, MockTransport, MockClock, AdvancingDelay<CheckedDelay>, MemStore>;

impl Rig {
    fn new(script: &[Transaction], sleeps: &[Sleep]) -> Self {
        Rig::with_store(MemStore::new(), script, sleeps)
    }

    /// A rig around `store`, which the script may name (`store_holds`).
    fn with_store(store: MemStore, script: &[Transaction], sleeps: &[Sleep]) -> Self {
        Rig {
            server: MockTransport::new(script),
            clock: MockClock::new(),
            store,
            sleeps: CheckedDelay::new(sleeps),
            config: ClientConfig::default(),
        }
    }

    /// What a client is made of: a session speaking `protocol`, and clones of the rig's parts.
    fn parts(
        &self,
        protocol: Protocol<'static>,
    ) -> (
        Session<'static>,
        MockTransport,
        MockClock,
        AdvancingDelay<CheckedDelay>,
        MemStore,
    ) {
        let delay = self.clock.delay_with(self.sleeps.clone());
        let session = Session::new(protocol, policy());
        let (server, clock, store) = (self.server.clone(), self.clock.clone(), self.store.clone());
        (session, server, clock, delay, store)
    }

    fn client<'b>(&self, protocol: Protocol<'static>, scratch: &'b mut [u8]) -> Blocking<'b> {
        let (session, server, clock, delay, store) = self.parts(protocol);
        Client::new(session, server, clock, delay, store, scratch).with_config(self.config)
    }

    fn async_client<'b>(&self, protocol: Protocol<'static>, scratch: &'b mut [u8]) -> Async<'b> {
        let (session, server, clock, delay, store) = self.parts(protocol);
        AsyncClient::new(session, server, clock, delay, store, scratch).with_config(self.config)
    }

    /// Every transaction was used and every sleep expected came.
    fn done(mut self) {
        self.server.done();
        self.sleeps.done();
    }
}

/// Three answers `503` with `Retry-After: 30`.
fn busy() -> Vec<Transaction> {
    vec![Transaction::any().respond(503, "").retry_after(30); 3]
}

fn retry_later_503(result: Result<jwt_refresh::transport::Response, Error<ErrorKind, StoreError>>) {
    match result {
        Err(Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable { status: 503, .. })),
        }) => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn login_send_refresh_rotate_and_persist() {
    let ((a1, r1), (a2, r2)) = (tokens(0), tokens(270));
    let store = MemStore::new();
    let script = [
        simplejwt::login(&a1, &r1).body(r#"{"username":"device","password":"pw"}"#),
        api(&a1, 200).respond(200, r#"{"ok":true}"#),
        simplejwt::rotation(&r1, &a2, &r2),
        // The rotated refresh token was saved before the new access token was used.
        api(&a2, 200).store_holds(&store, Some(&r2)),
    ];
    let rig = Rig::with_store(store, &script, &[]);
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 2048];

    let response = client.send(&API, &mut body).unwrap();
    assert_eq!(
        (response.status, &body[..response.body_len]),
        (200, &br#"{"ok":true}"#[..])
    );
    rig.clock.advance_secs(270);
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    assert_eq!(client.session().stats().refreshes, 1);
    assert_eq!((rig.store.saves(), rig.store.token()), (2, Some(r2)));
    drop(client);
    rig.done();
}

#[test]
fn expired_token_and_failing_refresh_sleep_through_exact_backoffs() {
    // The token has expired; the token endpoint answers 503 twice, then succeeds. The client
    // sleeps 1 s (the first backoff with no usable token is exactly backoff_base), then the
    // second backoff (about one refresh interval of the 5-minute token: 254 to 284 s, drawn
    // from the session's seeded generator, checked exactly), and sends.
    let (a1, r1) = tokens(0);
    let a2 = TokenBuilder::access(400, 300).build();
    // First learn the second backoff from an identical, unchecked run of the session alone.
    let second_backoff = {
        let mut s: Session<'_> = Session::new(protocol(), policy());
        let mut buf = [0u8; 1024];
        let now = Instant::from_millis(400_000);
        let _ = s.poll(Instant::ZERO, &mut buf);
        let body = simplejwt::pair(&a1, &r1);
        let answer = jwt_refresh::TokenResponse {
            status: 200,
            body: body.as_bytes(),
            retry_after: None,
        };
        s.handle_token_response(Instant::ZERO, None, &answer)
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

    let mut rig = Rig::new(
        &[
            simplejwt::login(&a1, &r1),
            api(&a1, 200),
            simplejwt::unavailable(&r1, None),
            simplejwt::unavailable(&r1, None),
            simplejwt::refresh(&r1, &a2),
            // Never an API request with the expired token: the next one carries the new one.
            api(&a2, 200),
        ],
        &[
            Sleep::delay_ms(1000),
            Sleep::delay_ms(second_backoff as u32),
        ],
    );
    rig.config.max_wait = Duration::from_secs(300);
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 2048];
    client.send(&API, &mut body).unwrap();
    rig.clock.advance_secs(400);
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    rig.done();
}

#[test]
fn failing_refresh_ahead_of_expiry_does_not_fail_the_request() {
    let (a1, r1) = tokens(0);
    // Login, API; then (at 280 s) refresh -> 503, and the API request with the still-valid
    // token, without sleeping.
    let rig = Rig::new(
        &[
            simplejwt::login(&a1, &r1),
            api(&a1, 200),
            simplejwt::unavailable(&r1, None),
            api(&a1, 200),
        ],
        &[],
    );
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    rig.clock.advance_secs(280); // inside the refresh margin, before expiry
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    rig.done();
}

/// Login and a request; then a 401, one refresh, one retry that gets 401 again.
fn unauthorized_twice() -> Vec<Transaction> {
    let ((a1, r1), (a2, _)) = (tokens(0), tokens(1));
    vec![
        simplejwt::login(&a1, &r1),
        api(&a1, 200),
        api(&a1, 401).respond(401, r#"{"code":"token_not_valid"}"#),
        simplejwt::refresh(&r1, &a2),
        api(&a2, 401).respond(401, r#"{"code":"token_not_valid"}"#),
    ]
}

#[test]
fn one_401_one_refresh_one_retry_then_unauthorized() {
    let rig = Rig::new(&unauthorized_twice(), &[]);
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 512];
    client.send(&API, &mut body).unwrap();
    match client.send(&API, &mut body) {
        Err(Error::Unauthorized(r)) => assert_eq!(r.status, 401),
        other => panic!("{other:?}"),
    }
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    rig.done();
}

#[test]
fn transport_failure_mid_answer_is_a_transient_failure() {
    let (a1, r1) = tokens(0);
    let rig = Rig::new(
        &[
            // The login's connection breaks mid-answer.
            simplejwt::login(&a1, &r1).fail(ErrorKind::Other),
            simplejwt::login(&a1, &r1),
            api(&a1, 200),
        ],
        &[Sleep::delay_ms(1000)],
    );
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    rig.done();
}

#[test]
fn gives_up_after_max_wait_with_the_last_failure() {
    // Tries at 0 s, 30 s and 60 s; the next would be at 90 s, past max_wait.
    let sleeps = [Sleep::delay_ms(30_000), Sleep::delay_ms(30_000)];
    let mut rig = Rig::new(&busy(), &sleeps);
    rig.config.max_wait = Duration::from_secs(75);
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    retry_later_503(client.send(&API, &mut [0u8; 512]));
    drop(client);
    rig.done();
}

#[test]
fn failed_save_is_reported_and_the_tokens_stay_usable() {
    let (a1, r1) = tokens(0);
    let rig = Rig::new(&[simplejwt::login(&a1, &r1), api(&a1, 200)], &[]);
    rig.store.fail_next_save();
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    let mut body = [0u8; 512];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    assert_eq!(client.take_store_error(), Some(StoreError::Save));
    assert_eq!(client.take_store_error(), None);
    drop(client);
    assert_eq!(rig.store.token(), None);
    rig.done();
}

#[test]
fn restore_continues_without_a_login_and_rejection_clears_the_store() {
    let ((a1, r0), mut scratch) = (tokens(0), [0u8; 1024]);
    let rig = Rig::with_store(
        MemStore::with_token(&r0),
        &[simplejwt::refresh(&r0, &a1), api(&a1, 200)],
        &[],
    );
    let mut client = rig.client(provisioned(), &mut scratch);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0u8; 512]).unwrap();
    drop(client);

    // A stored token the server rejects is cleared: a restart will not offer it again.
    let mut rig = rig;
    rig.server
        .update_expectations(&[simplejwt::blacklisted(&r0)]);
    let mut client = rig.client(provisioned(), &mut scratch);
    assert!(client.restore().unwrap());
    match client.send(&API, &mut [0u8; 512]) {
        Err(Error::LoginRequired(LoginReason::RefreshTokenRejected)) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    assert_eq!(rig.store.token(), None);
    rig.done();
}

#[test]
fn token_answer_too_large_for_the_body_buffer_is_an_error_not_a_loop() {
    let (a1, r1) = tokens(0);
    let rig = Rig::new(&[simplejwt::login(&a1, &r1)], &[]);
    let mut scratch = [0u8; 1024];
    let mut client = rig.client(protocol(), &mut scratch);
    // Not `Transport`, which would say the token was fine; and not worth retrying.
    let err = client.send(&API, &mut [0u8; 64]).unwrap_err();
    assert!(matches!(
        err,
        Error::AnswerTooLarge(ErrorKind::BufferTooSmall)
    ));
    assert!(!err.is_retryable());
    drop(client);
    rig.done();
}

#[test]
fn a_clock_that_never_advances_still_ends() {
    // A broken clock and a no-op delay: the loop is bounded all the same, by the step bound,
    // after one request (every later poll answers the same sleep).
    struct Frozen;
    impl Clock for Frozen {
        fn now(&self) -> Instant {
            Instant::from_secs(5)
        }
    }
    let mut server = MockTransport::new(&[Transaction::any().respond(503, "")]);
    let mut scratch = [0u8; 1024];
    let session: Session<'_> = Session::new(protocol(), policy());
    let noop = embedded_hal_mock::eh1::delay::NoopDelay::new();
    let store = MemStore::new();
    let mut client = Client::new(session, server.clone(), Frozen, noop, store, &mut scratch);
    assert!(matches!(
        client.send(&API, &mut [0u8; 512]),
        Err(Error::RetryLater { .. })
    ));
    drop(client);
    server.done();
}

// The async driver runs its own loop around the same step: the paths above, once more with it.

#[test]
fn async_client_does_the_same_with_checked_async_delays() {
    let ((a1, r1), a2) = (tokens(0), TokenBuilder::access(400, 300).build());
    let rig = Rig::new(
        &[
            simplejwt::login(&a1, &r1),
            api(&a1, 200),
            // Retry-After honoured exactly: the sleep is checked.
            simplejwt::refresh_request(&r1)
                .respond(429, "")
                .retry_after(7),
            simplejwt::refresh(&r1, &a2),
            api(&a2, 200),
        ],
        &[Sleep::delay_ms(7000)],
    );
    let mut scratch = [0u8; 1024];
    let mut client = rig.async_client(protocol(), &mut scratch);
    let mut body = [0u8; 2048];
    pollster::block_on(async {
        assert_eq!(client.send(&API, &mut body).await.unwrap().status, 200);
        rig.clock.advance_secs(400);
        assert_eq!(client.send(&API, &mut body).await.unwrap().status, 200);
    });
    assert_eq!(client.session().stats().refreshes, 1);
    drop(client);
    assert_eq!(rig.store.token(), Some(r1));
    rig.done();
}

#[test]
fn async_client_gives_up_after_max_wait_with_checked_sleeps() {
    let sleeps = [Sleep::delay_ms(30_000), Sleep::delay_ms(30_000)];
    let mut rig = Rig::new(&busy(), &sleeps);
    rig.config.max_wait = Duration::from_secs(75);
    let mut scratch = [0u8; 1024];
    let mut client = rig.async_client(protocol(), &mut scratch);
    retry_later_503(pollster::block_on(client.send(&API, &mut [0u8; 512])));
    drop(client);
    rig.done();
}

#[test]
fn async_client_one_401_one_refresh_one_retry_then_unauthorized() {
    let rig = Rig::new(&unauthorized_twice(), &[]);
    let mut scratch = [0u8; 1024];
    let mut client = rig.async_client(protocol(), &mut scratch);
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
    rig.done();
}

#[test]
fn async_client_reports_a_failed_save_and_clears_the_store_on_rejection() {
    let (a1, r1) = tokens(0);
    let rig = Rig::new(&[simplejwt::login(&a1, &r1), api(&a1, 200)], &[]);
    rig.store.fail_next_save();
    let mut scratch = [0u8; 1024];
    let mut client = rig.async_client(protocol(), &mut scratch);
    let sent = pollster::block_on(client.send(&API, &mut [0u8; 512]));
    assert_eq!(sent.unwrap().status, 200);
    assert_eq!(client.take_store_error(), Some(StoreError::Save));
    drop(client);
    rig.done();

    // A stored token that the server rejects is cleared.
    let r0 = tokens(0).1;
    let rig = Rig::with_store(
        MemStore::with_token(&r0),
        &[simplejwt::blacklisted(&r0)],
        &[],
    );
    let mut client = rig.async_client(provisioned(), &mut scratch);
    assert!(client.restore().unwrap());
    match pollster::block_on(client.send(&API, &mut [0u8; 512])) {
        Err(Error::LoginRequired(LoginReason::RefreshTokenRejected)) => {}
        other => panic!("{other:?}"),
    }
    drop(client);
    assert_eq!(rig.store.token(), None);
    rig.done();
}

#[test]
fn async_client_token_answer_too_large_for_the_body_buffer_is_an_error() {
    let (a1, r1) = tokens(0);
    let rig = Rig::new(&[simplejwt::login(&a1, &r1)], &[]);
    let mut scratch = [0u8; 1024];
    let mut client = rig.async_client(protocol(), &mut scratch);
    let err = pollster::block_on(client.send(&API, &mut [0u8; 64])).unwrap_err();
    assert!(matches!(
        err,
        Error::AnswerTooLarge(ErrorKind::BufferTooSmall)
    ));
    assert!(!err.is_retryable());
    drop(client);
    rig.done();
}
