//! The host test kit itself (feature `mock`): broken expectations fail, with messages that name
//! the field and never show a secret; unmet expectations panic in `done()`.

use std::panic::{catch_unwind, AssertUnwindSafe};

use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction as Sleep};
use jwt_refresh::mock::{
    simplejwt, AdvancingDelay, MemStore, MockClock, MockTransport, TokenBuilder, Transaction,
};
use jwt_refresh::protocol::SimpleJwt;
use jwt_refresh::transport::{Endpoint, ErrorKind, Method, Request, Transport};
use jwt_refresh::{Client, Clock, Error, Protocol, RefreshPolicy, Session};

const SECRET: &str = "SECRET-ACCESS-TOKEN";

/// The panic message of `f`, which must panic.
fn panic_message(f: impl FnOnce()) -> String {
    let payload = catch_unwind(AssertUnwindSafe(f)).expect_err("it did not panic");
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
        .unwrap_or_default()
}

fn api(authorization: &str) -> Request<'_> {
    Request {
        authorization: Some(authorization),
        ..Request::get("/api/data/")
    }
}

#[test]
fn an_unmet_expectation_panics_in_done() {
    let mut mock = MockTransport::new(&[
        Transaction::get("/api/data/"),
        simplejwt::refresh("r-1", SECRET),
    ]);
    mock.clone().send(&api("Bearer a"), &mut [0u8; 8]).unwrap();
    let message = panic_message(|| mock.done());
    assert!(
        message.contains("1 of 2 transactions were not used at `done()`"),
        "{message}"
    );
    assert!(
        message.contains(
            r#"transaction 2: expected POST auth /api/token/refresh/, Authorization: *, body {"refresh":<redacted 3 bytes>}"#
        ),
        "{message}"
    );
    // The answer it would have given is shown without the token in it.
    assert!(
        message.contains(r#"{"access":<redacted 19 bytes>}"#),
        "{message}"
    );
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn a_mismatch_names_the_field_and_hides_the_token() {
    let mut mock = MockTransport::new(&[Transaction::get("/api/data/").bearer(SECRET)]);
    let other = "Bearer SECRET-ACCESS-TOKEX";
    let message = panic_message(|| {
        let _ = mock.clone().send(&api(other), &mut [0u8; 8]);
    });
    assert!(
        message.contains("request 1 does not match transaction 1"),
        "{message}"
    );
    assert!(
        message.contains(
            "Authorization: expected Bearer <redacted 19 bytes>, got Bearer <redacted 19 bytes> \
             (expected 26 bytes, got 26; they first differ at byte 25)"
        ),
        "{message}"
    );
    assert!(!message.contains("SECRET"), "{message}");
    // A failure that was caught is still reported by `done()`.
    let message = panic_message(|| mock.done());
    assert!(message.contains("does not match"), "{message}");
    assert!(!message.contains("SECRET"), "{message}");
}

#[test]
fn every_field_is_checked() {
    let expected = Transaction::request(Endpoint::Auth, Method::Post, "/token")
        .authorization(None)
        .body("grant_type=refresh_token&refresh_token=SECRET");
    let sent = Request {
        method: Method::Put,
        endpoint: Endpoint::Api,
        path: "/other",
        content_type: None,
        authorization: Some("Basic SECRETSECRET"),
        body: b"grant_type=refresh_token&refresh_token=SECRET2",
    };
    let mut mock = MockTransport::new(&[expected]);
    let message = panic_message(|| {
        let _ = mock.clone().send(&sent, &mut [0u8; 8]);
    });
    for line in [
        "endpoint: expected auth, got api",
        "method: expected POST, got PUT",
        r#"path: expected "/token", got "/other""#,
        "Authorization: expected (none), got Basic <redacted 12 bytes>",
        "body: expected grant_type=refresh_token&refresh_token=<redacted 6 bytes>, \
         got grant_type=refresh_token&refresh_token=<redacted 7 bytes>",
    ] {
        assert!(message.contains(line), "{line:?} not in {message}");
    }
    assert!(!message.contains("SECRET"), "{message}");
    let _ = panic_message(|| mock.done());
}

#[test]
fn a_request_nobody_expected_panics_and_fails_done() {
    let mut mock = MockTransport::new(&[]);
    let message = panic_message(|| {
        let _ = mock
            .clone()
            .send(&api(&format!("Bearer {SECRET}")), &mut [0u8; 8]);
    });
    assert!(
        message.contains("request 1 was not expected (all 0 transactions were used)"),
        "{message}"
    );
    assert!(
        message.contains("actual:   GET api /api/data/, Authorization: Bearer <redacted 19 bytes>"),
        "{message}"
    );
    let message = panic_message(|| mock.done());
    assert!(message.contains("was not expected"), "{message}");
    assert!(!message.contains(SECRET), "{message}");
}

#[test]
fn answers_and_failures_are_played_in_order() {
    let mut mock = MockTransport::new(&[
        Transaction::any()
            .respond(401, simplejwt::API_TOKEN_NOT_VALID)
            .www_authenticate(r#"Bearer error="invalid_token""#)
            .retry_after(3),
        Transaction::any().fail(ErrorKind::Other),
        Transaction::any().respond(200, "too long for the buffer"),
    ]);
    let mut t = mock.clone();
    let mut body = [0u8; 512];
    let r = t.send(&api("x"), &mut body).unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.retry_after.map(|d| d.as_secs()), Some(3));
    assert_eq!(r.bearer_error, Some(jwt_refresh::BearerError::InvalidToken));
    assert_eq!(
        &body[..r.body_len],
        simplejwt::API_TOKEN_NOT_VALID.as_bytes()
    );
    assert_eq!(t.send(&api("x"), &mut body), Err(ErrorKind::Other));
    assert_eq!(
        t.send(&api("x"), &mut [0u8; 4]),
        Err(ErrorKind::BufferTooSmall)
    );
    assert_eq!(mock.requests().len(), 3);
    mock.done();
}

#[test]
fn store_holds_checks_the_store_when_the_request_is_sent() {
    let store = MemStore::with_token("r-1");
    let mut mock = MockTransport::new(&[Transaction::any().store_holds(&store, Some("r-2"))]);
    let message = panic_message(|| {
        let _ = mock.clone().send(&api("x"), &mut [0u8; 8]);
    });
    assert!(
        message.contains(
            "stored refresh token: expected <redacted 3 bytes>, the store holds <redacted 3 bytes>"
        ),
        "{message}"
    );
    let _ = panic_message(|| mock.done());
}

#[test]
fn update_expectations_checks_the_previous_ones() {
    let mut mock = MockTransport::new(&[Transaction::any()]);
    let message = panic_message(|| mock.update_expectations(&[Transaction::any()]));
    assert!(
        message.contains("were not used at `update_expectations()`"),
        "{message}"
    );
}

#[test]
fn the_store_fails_once_when_told() {
    use jwt_refresh::mock::StoreError;
    use jwt_refresh::TokenStore;
    let store = MemStore::new();
    let mut s = store.clone();
    let mut buf = [0u8; 8];
    store.fail_next_load();
    assert_eq!(s.load(&mut buf), Err(StoreError::Load));
    assert_eq!(s.load(&mut buf), Ok(None));
    s.save("r-1").unwrap();
    store.fail_next_clear();
    assert_eq!(s.clear(), Err(StoreError::Clear));
    assert_eq!(store.token().as_deref(), Some("r-1"));
    s.clear().unwrap();
    assert_eq!((store.token(), store.clears(), store.loads()), (None, 1, 1));
    s.save("a-longer-token").unwrap();
    assert_eq!(s.load(&mut buf), Err(StoreError::TooLong));
    assert!(!format!("{store:?}").contains("longer"));
}

#[test]
fn tokens_carry_the_claims_asked_for() {
    let token = TokenBuilder::access(5, 300).claim("user_id", "1").build();
    let claims = jwt_refresh::Claims::decode(&token).unwrap();
    assert_eq!(claims.exp.map(|t| t.as_secs()), Some(1_700_000_305));
    assert_eq!(claims.jti.map(|j| j.len()), Some(32));
    assert!(token.ends_with('.'), "unsigned: an empty signature");
    let (a, b) = (
        TokenBuilder::access(0, 1).build(),
        TokenBuilder::access(0, 1).build(),
    );
    assert_ne!(a, b, "a unique jti each");
    let signed = TokenBuilder::new().exp(2).signed().build();
    assert!(!signed.ends_with('.'));
}

type Checked<'b> =
    Client<'static, 'b, MockTransport, MockClock, AdvancingDelay<CheckedDelay>, MemStore>;

/// A client with the refresh token `refresh`, whose sleeps go to `sleeps` and then the clock.
fn checked_client<'b>(
    server: &MockTransport,
    clock: &MockClock,
    sleeps: &CheckedDelay,
    refresh: &str,
    scratch: &'b mut [u8],
) -> Checked<'b> {
    let protocol = Protocol::SimpleJwt(SimpleJwt::default());
    let mut session = Session::new(protocol, RefreshPolicy::default());
    session
        .set_refresh_token(clock.now(), refresh, None)
        .unwrap();
    let delay = clock.delay_with(sleeps.clone());
    Client::new(
        session,
        server.clone(),
        clock.clone(),
        delay,
        MemStore::new(),
        scratch,
    )
}

/// Every sleep of a client asserted exactly with `embedded-hal-mock`'s `CheckedDelay`, while the
/// mock clock moves by each one.
#[test]
fn checked_delay_asserts_every_sleep_exactly() {
    let (a1, r1) = (
        TokenBuilder::access(0, 300).build(),
        TokenBuilder::refresh(0, 86_400).build(),
    );
    let mut transport = MockTransport::new(&[
        simplejwt::unavailable(&r1, Some(7)),
        simplejwt::refresh(&r1, &a1),
        Transaction::get("/api/data/").bearer(&a1),
    ]);
    let (clock, mut sleeps) = (
        MockClock::new(),
        CheckedDelay::new(&[Sleep::delay_ms(7000)]),
    );
    let mut scratch = [0u8; 512];
    let mut client = checked_client(&transport, &clock, &sleeps, &r1, &mut scratch);
    let sent = client.send(&Request::get("/api/data/"), &mut [0u8; 1024]);
    assert_eq!(sent.map(|r| r.status).ok(), Some(200));
    assert_eq!(clock.sleeps_ms(), [7000]);
    sleeps.done();
    transport.done();
}

/// A `CheckedDelay` that expects another sleep fails the test.
#[test]
fn checked_delay_fails_on_a_wrong_sleep() {
    let r1 = TokenBuilder::refresh(0, 86_400).build();
    let mut transport = MockTransport::new(&[simplejwt::unavailable(&r1, Some(7))]);
    let (clock, mut sleeps) = (
        MockClock::new(),
        CheckedDelay::new(&[Sleep::delay_ms(5000)]),
    );
    let mut scratch = [0u8; 512];
    let mut client = checked_client(&transport, &clock, &sleeps, &r1, &mut scratch);
    let message = panic_message(|| {
        let _: Result<_, Error<_, _>> = client.send(&Request::get("/api/data/"), &mut [0u8; 1024]);
    });
    assert!(message.contains("wrong delay value"), "{message}");
    // The clock did not move: the sleep failed before it.
    assert_eq!(clock.sleeps_ms(), [] as [u64; 0]);
    sleeps.done();
    transport.done();
}
