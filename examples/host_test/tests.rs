//! The uploader's unit tests, written with `jwt_refresh::mock`: a scripted server
//! (`MockTransport`), a clock the test moves (`MockClock`, also the delay, so backoffs take no
//! real time), flash in memory (`MemStore`) and minted JWTs (`TokenBuilder`).

use jwt_refresh::mock::{simplejwt, MemStore, MockClock, MockTransport, TokenBuilder, Transaction};
use jwt_refresh::protocol::Credentials;
use jwt_refresh::RefreshPolicy;

use crate::uploader::{Config, UploadError, Uploader, TELEMETRY_PATH};

type Device = Uploader<'static, 'static, MockTransport, MockClock, MockClock, MemStore>;

const LOGIN: Credentials<'static> = Credentials {
    username: "sensor-7",
    password: "hunter2",
};

/// The device's flash and clock, which outlive a reboot.
#[derive(Default)]
struct Kit {
    clock: MockClock,
    store: MemStore,
}

impl Kit {
    /// A device with a login, talking to a server that plays `script`.
    fn device(&self, script: &[Transaction]) -> (MockTransport, Device) {
        self.device_with(Some(LOGIN), script)
    }

    /// A device provisioned with a refresh token only (no login).
    fn provisioned(&self, script: &[Transaction]) -> (MockTransport, Device) {
        self.device_with(None, script)
    }

    fn device_with(
        &self,
        credentials: Option<Credentials<'static>>,
        script: &[Transaction],
    ) -> (MockTransport, Device) {
        // No jitter: the tests know when a refresh is due (a real device keeps the default).
        let policy = RefreshPolicy {
            jitter_permille: 0,
            first_jitter_permille: 0,
            ..RefreshPolicy::default()
        };
        let server = MockTransport::new(&broken(script));
        // The device's static scratch buffer.
        let scratch = Box::leak(Box::new([0u8; 512]));
        let config = Config {
            credentials,
            policy,
        };
        let c = self.clock.clone();
        let device = Uploader::new(
            config,
            server.clone(),
            c.clone(),
            c,
            self.store.clone(),
            scratch,
        );
        (server, device)
    }
}

/// CI checks that these tests can fail: `HOST_TEST_BREAK=unused` adds a transaction nobody
/// sends (each test must fail in `done()`), `HOST_TEST_BREAK=token` expects another access
/// token in every request (each test must fail at its first request). Unset, the script as is.
fn broken(script: &[Transaction]) -> Vec<Transaction> {
    let mut script = script.to_vec();
    match std::env::var("HOST_TEST_BREAK").as_deref() {
        Ok("unused") => script.push(Transaction::any()),
        Ok("token") => script = script.into_iter().map(|t| t.bearer("another")).collect(),
        _ => {}
    }
    script
}

/// An access token (5 minutes) and a refresh token (1 day) issued at second `at`.
fn tokens(at: u64) -> (String, String) {
    (
        TokenBuilder::access(at, 300).build(),
        TokenBuilder::refresh(at, 86_400).build(),
    )
}

/// A reading posted with `access`, answered 201.
fn telemetry(access: &str) -> Transaction {
    Transaction::post(TELEMETRY_PATH)
        .bearer(access)
        .respond(201, "")
}

#[test]
fn logs_in_then_sends() {
    let kit = Kit::default();
    let (a1, r1) = tokens(0);
    let (mut server, mut device) = kit.device(&[
        simplejwt::login(&a1, &r1).body(r#"{"username":"sensor-7","password":"hunter2"}"#),
        telemetry(&a1).body(r#"{"temp_mc":21500}"#),
    ]);
    assert_eq!(device.upload(21_500), Ok(()));
    assert_eq!(kit.store.token(), Some(r1));
    server.done();
}

#[test]
fn refreshes_ahead_of_expiry() {
    let kit = Kit::default();
    let ((a1, r1), (a2, _)) = (tokens(0), tokens(270));
    let (mut server, mut device) = kit.device(&[
        simplejwt::login(&a1, &r1),
        telemetry(&a1),
        simplejwt::refresh(&r1, &a2), // at 270 s, 30 s before the token expires
        telemetry(&a2),
    ]);
    device.upload(21_500).unwrap();
    kit.clock.advance_secs(270);
    device.upload(21_600).unwrap();
    assert!(kit.clock.sleeps_ms().is_empty());
    server.done();
}

#[test]
fn a_401_leads_to_one_refresh_and_one_retry() {
    let kit = Kit::default();
    let ((a1, r1), (a2, _)) = (tokens(0), tokens(10));
    let (mut server, mut device) = kit.device(&[
        simplejwt::login(&a1, &r1),
        telemetry(&a1),
        simplejwt::api_rejects(telemetry(&a1)), // at 10 s the server revokes the token
        simplejwt::refresh(&r1, &a2),
        telemetry(&a2),
    ]);
    device.upload(21_500).unwrap();
    kit.clock.advance_secs(10);
    assert_eq!(device.upload(21_600), Ok(()));
    server.done();
}

/// Exactly these sleeps, in no real time, and the refresh token survives the outage, in flash
/// too.
#[test]
fn an_outage_backs_off_exactly_and_keeps_the_refresh_token() {
    let (kit, (a1, r1), (a2, _)) = (Kit::default(), tokens(0), tokens(701));
    let (mut server, mut device) = kit.device(&[
        simplejwt::login(&a1, &r1),
        telemetry(&a1),
        simplejwt::unavailable(&r1, None), // at 400 s, the token expired: sleep backoff_base
        simplejwt::unavailable(&r1, Some(300)), // then the server's Retry-After
        simplejwt::refresh(&r1, &a2),
        telemetry(&a2),
    ]);
    device.upload(21_500).unwrap();
    kit.clock.advance_secs(400);
    assert_eq!(device.upload(21_600), Ok(()));
    assert_eq!(kit.clock.sleeps_ms(), [1_000, 300_000]);
    assert_eq!(kit.store.token(), Some(r1));
    server.done();
}

#[test]
fn a_rotated_refresh_token_is_saved_before_it_is_used() {
    let kit = Kit::default();
    let ((a1, r1), (a2, r2)) = (tokens(0), tokens(270));
    let (mut server, mut device) = kit.device(&[
        simplejwt::login(&a1, &r1),
        telemetry(&a1),
        simplejwt::rotation(&r1, &a2, &r2),
        telemetry(&a2).store_holds(&kit.store, Some(&r2)),
    ]);
    device.upload(21_500).unwrap();
    kit.clock.advance_secs(270);
    device.upload(21_600).unwrap();
    server.done();
}

#[test]
fn a_reboot_restores_the_refresh_token_from_flash() {
    let kit = Kit::default();
    let ((a1, r1), (a2, _)) = (tokens(0), tokens(60));
    let (mut server, mut device) = kit.device(&[simplejwt::login(&a1, &r1), telemetry(&a1)]);
    device.upload(21_500).unwrap();
    server.done();
    kit.clock.advance_secs(60); // power cycle: RAM is gone, flash and time go on
    let (mut server, mut device) = kit.device(&[simplejwt::refresh(&r1, &a2), telemetry(&a2)]);
    assert_eq!(device.boot(), Ok(true));
    device.upload(21_600).unwrap();
    server.done();
}

#[test]
fn a_rejected_refresh_token_needs_provisioning() {
    let kit = Kit {
        store: MemStore::with_token(&tokens(0).1),
        ..Kit::default()
    };
    let r0 = kit.store.token().unwrap();
    let (mut server, mut device) = kit.provisioned(&[simplejwt::blacklisted(&r0)]);
    assert_eq!(device.boot(), Ok(true));
    assert_eq!(device.upload(21_500), Err(UploadError::NeedsProvisioning));
    assert_eq!(
        kit.store.token(),
        None,
        "the dead token is erased from flash"
    );
    server.done();
}
