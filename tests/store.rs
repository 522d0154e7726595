//! The refresh token across restarts, through a store that misbehaves: what `restore` keeps,
//! what it clears, how failed saves and clears are reported, and what a reboot after a failed
//! save leads to. Timelines over the blocking `Client`, the mock kit's transport (which checks
//! each request) and its in-memory "flash".

use jwt_refresh::mock::{MemStore, MockClock, MockTransport, TokenBuilder, Transaction, EPOCH};
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::{
    Client, ClientConfig, Duration, Error, LoginReason, Protocol, RefreshPolicy, Request, Session,
    TokenError, TokenKind, UnixTime,
};

const API: Request<'static> = Request::get("/api/data/");
const REFRESH: &str = "/api/token/refresh/";
const LOGIN: &str = "/api/token/";
const REJECTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;

fn with_login() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "hunter2",
        }),
        ..SimpleJwt::default()
    })
}

fn provisioned_only() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt::default())
}

/// A refresh with `refresh_token`, answered with `status` and `body`.
fn refresh(refresh_token: &str, status: u16, body: &str) -> Transaction {
    Transaction::token(REFRESH)
        .body(format!(r#"{{"refresh":"{refresh_token}"}}"#))
        .respond(status, body)
}

fn tokens(access: &str, refresh: &str) -> String {
    format!(r#"{{"access":"{access}","refresh":"{refresh}"}}"#)
}

fn api(access: &str) -> Transaction {
    Transaction::get(API.path).bearer(access).respond(200, "{}")
}

type DeviceClient<'s> = Client<'static, 's, MockTransport, MockClock, MockClock, MemStore>;

/// A device booting over `store` (its flash), with a trusted wall clock; the transport expects
/// `expected`, which `done()` checks at the end.
fn boot<'s>(
    scratch: &'s mut [u8],
    store: &MemStore,
    protocol: Protocol<'static>,
    expected: &[Transaction],
) -> (DeviceClient<'s>, MockTransport) {
    let clock = MockClock::with_wall(UnixTime::from_secs(EPOCH).unwrap());
    let transport = MockTransport::new(expected);
    let session = Session::new(protocol, RefreshPolicy::default());
    let client = Client::new(
        session,
        transport.clone(),
        clock.clone(),
        clock,
        store.clone(),
        scratch,
    )
    .with_config(ClientConfig {
        max_wait: Duration::ZERO,
    });
    (client, transport)
}

#[test]
fn a_trailing_newline_in_the_store_is_trimmed_and_nothing_is_cleared() {
    // `echo rt0 > token` on the provisioning bench.
    let store = MemStore::with_token("rt0\n");
    let mut scratch = [0u8; 512];
    let expected = [refresh("rt0", 200, &tokens("a1", "rt1")), api("a1")];
    let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &expected);
    assert!(client.restore().unwrap());
    assert_eq!(store.token().as_deref(), Some("rt0\n"));
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(store.token().as_deref(), Some("rt1"));
    transport.done();
}

#[test]
fn content_the_session_cannot_use_is_reported_and_left_in_the_store() {
    let too_long = "r".repeat(1100);
    for (stored, want) in [
        (
            "bad\u{1}token",
            TokenError::Invalid {
                token: TokenKind::Refresh,
            },
        ),
        (
            too_long.as_str(),
            TokenError::TooLong {
                token: TokenKind::Refresh,
                capacity: 1024,
            },
        ),
    ] {
        let store = MemStore::with_token(stored);
        let mut scratch = [0u8; 2048];
        let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &[]);
        match client.restore() {
            Err(Error::StoredToken(e)) => assert_eq!(e, want),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.token().as_deref(), Some(stored), "nothing is deleted");
        assert!(!client.session().has_refresh_token());
        transport.done();
    }
    // Blank content is no token, and is not deleted either.
    let store = MemStore::with_token(" \n");
    let mut scratch = [0u8; 512];
    let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &[]);
    assert!(!client.restore().unwrap());
    assert_eq!(store.token().as_deref(), Some(" \n"));
    transport.done();
}

#[test]
fn a_token_past_its_own_exp_is_cleared() {
    // By the trusted wall clock the stored JWT expired an hour ago: it can never work again.
    let dead = TokenBuilder::new().exp(EPOCH - 3600).build();
    let store = MemStore::with_token(&dead);
    let mut scratch = [0u8; 512];
    // The device logs in instead of sending the dead token.
    let login = Transaction::token(LOGIN).respond(200, tokens("a1", "rt1"));
    let expected = [login, api("a1")];
    let (mut client, mut transport) = boot(&mut scratch, &store, with_login(), &expected);
    assert!(!client.restore().unwrap());
    assert_eq!(store.token(), None);
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(store.token().as_deref(), Some("rt1"));
    transport.done();
}

#[test]
fn a_failed_clear_after_a_rejection_is_reported() {
    let store = MemStore::with_token("rt0");
    store.fail_next_clear();
    let mut scratch = [0u8; 512];
    let expected = [refresh("rt0", 401, REJECTED)];
    let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &expected);
    assert!(client.restore().unwrap());
    let err = client.send(&API, &mut [0; 256]).unwrap_err();
    assert!(
        matches!(err, Error::LoginRequired(LoginReason::RefreshTokenRejected)),
        "{err:?}"
    );
    assert!(client.take_store_error().is_some());
    assert_eq!(client.session().stats().store_failures, 1);
    // The dead token is still in the store: the application knows, and decides.
    assert_eq!(store.token().as_deref(), Some("rt0"));
    transport.done();
}

#[test]
fn a_failed_save_keeps_working_until_a_reboot_then_a_login_follows() {
    // The decision of `handle_persisted(false)`: the rotated tokens are used from RAM and the
    // failure is reported; the store keeps the old token, which the server has retired.
    let store = MemStore::with_token("rt0");
    store.fail_next_save();
    let mut scratch = [0u8; 512];
    let expected = [
        refresh("rt0", 200, &tokens("a1", "rt1")),
        api("a1"),
        api("a1"), // from RAM
    ];
    let (mut client, mut transport) = boot(&mut scratch, &store, with_login(), &expected);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    assert!(client.take_store_error().is_some());
    assert_eq!(client.session().stats().store_failures, 1);
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(store.token().as_deref(), Some("rt0"));
    transport.done();
    drop(client);

    // Reboot before any save worked: rt0 is offered, refused, cleared; a login follows.
    let expected = [
        refresh("rt0", 401, REJECTED),
        Transaction::token(LOGIN).respond(200, tokens("a2", "rt2")),
        api("a2"),
    ];
    let (mut client, mut transport) = boot(&mut scratch, &store, with_login(), &expected);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(store.token().as_deref(), Some("rt2"));
    transport.done();
}

#[test]
fn without_a_login_the_device_saves_again_once_the_store_works() {
    // Provisioned only: a reboot on the old token would need the application. So the device
    // saves again as soon as its flash works (`save_again`), before the next request.
    let store = MemStore::with_token("rt0");
    store.fail_next_save();
    let mut scratch = [0u8; 512];
    let expected = [
        refresh("rt0", 200, &tokens("a1", "rt1")),
        api("a1"),
        Transaction::get(API.path)
            .bearer("a1")
            .store_holds(&store, Some("rt1")),
    ];
    let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &expected);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    assert!(client.take_store_error().is_some());
    client.session_mut().save_again();
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(client.take_store_error(), None);
    transport.done();
    drop(client);

    // Had it rebooted on rt0 instead, it would have needed the application.
    let store = MemStore::with_token("rt0");
    let expected = [refresh("rt0", 401, REJECTED)];
    let (mut client, mut transport) = boot(&mut scratch, &store, provisioned_only(), &expected);
    assert!(client.restore().unwrap());
    let err = client.send(&API, &mut [0; 256]).unwrap_err();
    assert!(
        matches!(err, Error::LoginRequired(LoginReason::RefreshTokenRejected)),
        "{err:?}"
    );
    assert_eq!(store.token(), None);
    transport.done();
}
