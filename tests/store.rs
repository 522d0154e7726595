//! The refresh token across restarts, through a store that misbehaves: what `restore` keeps,
//! what it clears, how failed saves and clears are reported, and what a reboot after a failed
//! save leads to. Timelines over the blocking `Client` and an in-memory "flash".

#[path = "support/fakes.rs"]
mod fakes;

use fakes::{Delay, FakeClock, Script, Step, Store};
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::{
    Client, ClientConfig, Clock, Duration, Error, Instant, LoginReason, Protocol, RefreshPolicy,
    Request, Session, TokenError, TokenKind, UnixTime,
};

const API: Request<'static> = Request::get("/api/data/");
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

fn tokens(access: &str, refresh: &str) -> Step {
    Step::Answer(
        200,
        format!(r#"{{"access":"{access}","refresh":"{refresh}"}}"#),
    )
}

fn api_ok() -> Step {
    Step::Answer(200, "{}".into())
}

/// A clock with a trusted wall time: session second 0 is Unix second `EPOCH`.
#[derive(Clone, Default)]
struct WallClock(FakeClock);

const EPOCH: u64 = 1_700_000_000;

impl Clock for WallClock {
    fn now(&self) -> Instant {
        self.0.now()
    }
    fn unix_time(&self) -> Option<UnixTime> {
        UnixTime::from_secs(EPOCH + self.0.now().as_millis() / 1000)
    }
}

/// A device: a client over `store` (its flash) with a fresh session, as after a boot.
struct Device {
    clock: WallClock,
    store: Store,
    scratch: Vec<u8>,
}

type DeviceClient<'s> = Client<'static, 's, Script, WallClock, Delay, Store>;

impl Device {
    fn new(store: &Store) -> Self {
        Device {
            clock: WallClock::default(),
            store: store.clone(),
            scratch: vec![0; 2048],
        }
    }

    /// A client over this device's parts, playing `steps`; `sent` receives the requests.
    fn boot(
        &mut self,
        protocol: Protocol<'static>,
        steps: Vec<Step>,
    ) -> (DeviceClient<'_>, Script) {
        let script = Script::new(&self.clock.0, steps);
        let session = Session::new(protocol, RefreshPolicy::default());
        let client = Client::new(
            session,
            script.clone(),
            self.clock.clone(),
            Delay(self.clock.0.clone()),
            self.store.clone(),
            &mut self.scratch,
        )
        .with_config(ClientConfig {
            max_wait: Duration::ZERO,
        });
        (client, script)
    }
}

fn jwt(kind: &str, exp: u64) -> String {
    use base64::Engine as _;
    let b64 = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    let header = b64(r#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = b64(&format!(r#"{{"token_type":"{kind}","exp":{exp}}}"#));
    format!("{header}.{payload}.c2lnbmF0dXJl")
}

#[test]
fn a_trailing_newline_in_the_store_is_trimmed_and_nothing_is_cleared() {
    // `echo rt0 > token` on the provisioning bench.
    let store = Store::holding("rt0\n");
    let mut device = Device::new(&store);
    let (mut client, script) = device.boot(provisioned_only(), vec![tokens("a1", "rt1"), api_ok()]);
    assert!(client.restore().unwrap());
    assert_eq!(store.get().as_deref(), Some("rt0\n"));
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(
        script.sent.borrow()[0],
        r#"/api/token/refresh/ {"refresh":"rt0"}"#
    );
    assert_eq!(store.get().as_deref(), Some("rt1"));
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
        let store = Store::holding(stored);
        let mut device = Device::new(&store);
        let (mut client, _) = device.boot(provisioned_only(), vec![]);
        match client.restore() {
            Err(Error::StoredToken(e)) => assert_eq!(e, want),
            other => panic!("{other:?}"),
        }
        assert_eq!(store.get().as_deref(), Some(stored), "nothing is deleted");
        assert!(!client.session().has_refresh_token());
    }
    // Blank content is no token, and is not deleted either.
    let store = Store::holding(" \n");
    let mut device = Device::new(&store);
    let (mut client, _) = device.boot(provisioned_only(), vec![]);
    assert!(!client.restore().unwrap());
    assert_eq!(store.get().as_deref(), Some(" \n"));
}

#[test]
fn a_token_past_its_own_exp_is_cleared() {
    // By the trusted wall clock the stored JWT expired an hour ago: it can never work again.
    let store = Store::holding(&jwt("refresh", EPOCH - 3600));
    let mut device = Device::new(&store);
    let (mut client, script) = device.boot(with_login(), vec![tokens("a1", "rt1"), api_ok()]);
    assert!(!client.restore().unwrap());
    assert_eq!(store.get(), None);
    // The device logs in instead of sending the dead token.
    client.send(&API, &mut [0; 256]).unwrap();
    assert!(script.sent.borrow()[0].starts_with("/api/token/ "));
}

#[test]
fn a_failed_clear_after_a_rejection_is_reported() {
    let store = Store::holding("rt0");
    store.fail_clears.set(true);
    let mut device = Device::new(&store);
    let (mut client, _) = device.boot(provisioned_only(), vec![Step::Answer(401, REJECTED.into())]);
    assert!(client.restore().unwrap());
    let err = client.send(&API, &mut [0; 256]).unwrap_err();
    assert!(
        matches!(err, Error::LoginRequired(LoginReason::RefreshTokenRejected)),
        "{err:?}"
    );
    assert_eq!(client.take_store_error(), Some("flash erase failed"));
    assert_eq!(client.session().stats().store_failures, 1);
    // The dead token is still in the store: the application knows, and decides.
    assert_eq!(store.get().as_deref(), Some("rt0"));
}

#[test]
fn a_failed_save_keeps_working_until_a_reboot_then_a_login_follows() {
    // The decision of `handle_persisted(false)`: the rotated tokens are used from RAM and the
    // failure is reported; the store keeps the old token, which the server has retired.
    let store = Store::holding("rt0");
    store.fail_saves.set(true);
    let mut device = Device::new(&store);
    let (mut client, _) = device.boot(with_login(), vec![tokens("a1", "rt1"), api_ok(), api_ok()]);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(client.take_store_error(), Some("flash write failed"));
    assert_eq!(client.session().stats().store_failures, 1);
    client.send(&API, &mut [0; 256]).unwrap(); // a1 from RAM
    assert_eq!(store.get().as_deref(), Some("rt0"));
    drop(client);

    // Reboot before any save worked: rt0 is offered, refused, cleared; a login follows.
    let (mut client, script) = device.boot(
        with_login(),
        vec![
            Step::Answer(401, REJECTED.into()),
            tokens("a2", "rt2"),
            api_ok(),
        ],
    );
    store.fail_saves.set(false);
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    let sent = script.sent.borrow();
    assert_eq!(sent[0], r#"/api/token/refresh/ {"refresh":"rt0"}"#);
    assert!(sent[1].starts_with("/api/token/ "));
    assert_eq!(store.get().as_deref(), Some("rt2"));
}

#[test]
fn without_a_login_the_device_saves_again_once_the_store_works() {
    // Provisioned only: a reboot on the old token would need the application. So the device
    // saves again as soon as its flash works (`save_again`), before the next request.
    let store = Store::holding("rt0");
    store.fail_saves.set(true);
    let mut device = Device::new(&store);
    let (mut client, _) = device.boot(
        provisioned_only(),
        vec![tokens("a1", "rt1"), api_ok(), api_ok()],
    );
    assert!(client.restore().unwrap());
    client.send(&API, &mut [0; 256]).unwrap();
    assert!(client.take_store_error().is_some());
    store.fail_saves.set(false);
    client.session_mut().save_again();
    client.send(&API, &mut [0; 256]).unwrap();
    assert_eq!(store.get().as_deref(), Some("rt1"));
    assert_eq!(client.take_store_error(), None);
    drop(client);

    // And had it rebooted on rt0 instead, it would have needed the application.
    let store = Store::holding("rt0");
    let mut device = Device::new(&store);
    let (mut client, _) = device.boot(provisioned_only(), vec![Step::Answer(401, REJECTED.into())]);
    assert!(client.restore().unwrap());
    let err = client.send(&API, &mut [0; 256]).unwrap_err();
    assert!(
        matches!(err, Error::LoginRequired(LoginReason::RefreshTokenRejected)),
        "{err:?}"
    );
    assert_eq!(store.get(), None);
}
