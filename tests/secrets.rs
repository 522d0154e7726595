//! SECURITY.md's promise about buffers, checked byte by byte: after every driver call (`send`,
//! `restore`, `logout`), on every path (success, each failure class, timeout, overflow,
//! transport error, a request that does not fit, restore and logout), neither the scratch
//! buffer nor the body buffer holds any 6-byte run of a refresh token, an access token, the
//! password, the client secret or the HTTP Basic header.
//!
//! The transport here writes a token answer into the body before it fails, as a real one does
//! when the connection breaks mid-answer or the answer overflows the buffer.

use std::cell::RefCell;
use std::rc::Rc;

use base64::Engine as _;
use jwt_refresh::mock::{MemStore, MockClock, MockTransport, Transaction};
use jwt_refresh::protocol::{ClientAuth, Credentials, OAuth2, OAuth2Login, SimpleJwt};
use jwt_refresh::transport::ErrorKind;
use jwt_refresh::{
    AsyncClient, Client, ClientConfig, Duration, Instant, Protocol, RefreshPolicy, Request, Session,
};

const PASSWORD: &str = "hunter2-PASSWORD-secret";
const CLIENT_ID: &str = "device-client";
const CLIENT_SECRET: &str = "CLIENT-SECRET-0123456789";
const API: Request<'static> = Request::get("/api/data/");
/// The API's own answer: the application's data, never a secret.
const API_BODY: &str = r#"{"temperature":21}"#;

fn basic_header() -> String {
    let pair = format!("{CLIENT_ID}:{CLIENT_SECRET}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(pair)
    )
}

/// Every secret a scenario handed out or configured, to look for in the buffers.
#[derive(Default, Clone)]
struct Secrets(Rc<RefCell<Vec<String>>>);

impl Secrets {
    fn with_credentials() -> Self {
        let s = Secrets::default();
        for secret in [
            PASSWORD.to_owned(),
            CLIENT_SECRET.to_owned(),
            basic_header(),
        ] {
            s.add(secret);
        }
        s
    }

    fn add(&self, secret: String) {
        self.0.borrow_mut().push(secret);
    }

    /// A new token with a unique text, remembered as a secret.
    fn token(&self, kind: &str) -> String {
        let n = self.0.borrow().len();
        let token = format!("{kind}-{n:04}-TOKEN-SECRET-abcdefghijklmnop");
        self.add(token.clone());
        token
    }

    /// Panics when `buf` holds 6 bytes in a row of any secret.
    fn assert_absent(&self, what: &str, label: &str, buf: &[u8]) {
        for secret in self.0.borrow().iter() {
            for run in secret.as_bytes().windows(6) {
                if let Some(at) = buf.windows(6).position(|w| w == run) {
                    panic!(
                        "{label}: the {what} buffer holds {:?} (part of a secret) at byte {at}: {:?}",
                        String::from_utf8_lossy(run),
                        String::from_utf8_lossy(buf)
                    );
                }
            }
        }
    }
}

fn simplejwt() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: PASSWORD,
        }),
        ..SimpleJwt::default()
    })
}

fn oauth2(client_auth: ClientAuth) -> Protocol<'static> {
    Protocol::OAuth2(OAuth2 {
        client_id: Some(CLIENT_ID),
        client_secret: Some(CLIENT_SECRET),
        client_auth,
        login: OAuth2Login::ClientCredentials,
        ..OAuth2::default()
    })
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        seed: 7,
        ..RefreshPolicy::default()
    }
}

/// What a driver call is made of, lent by a scenario.
struct Parts<'a> {
    session: Session<'static>,
    transport: MockTransport,
    clock: MockClock,
    store: MemStore,
    scratch: &'a mut [u8],
    body: &'a mut [u8],
}

/// A `send` ends at its first backoff: one token request per failure, as scripted.
const NO_WAIT: ClientConfig = ClientConfig {
    max_wait: Duration::ZERO,
};

/// A scenario: a session that lives across driver calls, each on a new client over the same
/// buffers, which are checked after every call.
struct Run {
    label: &'static str,
    secrets: Secrets,
    clock: MockClock,
    store: MemStore,
    session: Option<Session<'static>>,
    scratch: Vec<u8>,
    body: Vec<u8>,
}

impl Run {
    fn new(label: &'static str, protocol: Protocol<'static>, scratch: usize) -> Self {
        Run {
            label,
            secrets: Secrets::with_credentials(),
            clock: MockClock::new(),
            store: MemStore::new(),
            session: Some(Session::new(protocol, policy())),
            scratch: vec![0; scratch],
            body: vec![0; 1024],
        }
    }

    /// A SimpleJWT answer with new tokens, remembered as secrets.
    fn tokens(&self) -> String {
        let (access, refresh) = (self.secrets.token("access"), self.secrets.token("refresh"));
        format!(r#"{{"access":"{access}","refresh":"{refresh}"}}"#)
    }

    /// An OAuth 2.0 answer with new tokens.
    fn oauth_tokens(&self) -> String {
        let (access, refresh) = (self.secrets.token("access"), self.secrets.token("refresh"));
        format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":300,"refresh_token":"{refresh}"}}"#
        )
    }

    fn check(&self, call: &str) {
        let label = format!("{}, {call}", self.label);
        self.secrets.assert_absent("scratch", &label, &self.scratch);
        self.secrets.assert_absent("body", &label, &self.body);
    }

    /// Runs one driver call (`call`, given this scenario's parts, gives the session back and
    /// the call's result), then checks the buffers, and that the script was used up.
    fn call(
        &mut self,
        what: &str,
        steps: Vec<Transaction>,
        call: impl FnOnce(Parts<'_>) -> (Session<'static>, String),
    ) -> String {
        let transport = MockTransport::new(&steps);
        let mut left = transport.clone();
        let parts = Parts {
            session: self.session.take().expect("a session"),
            transport,
            clock: self.clock.clone(),
            store: self.store.clone(),
            scratch: &mut self.scratch,
            body: &mut self.body,
        };
        let (session, result) = call(parts);
        self.session = Some(session);
        left.done();
        self.check(what);
        result
    }

    /// One blocking `send` with this script; returns its result's debug text.
    fn send(&mut self, steps: Vec<Transaction>) -> String {
        self.call("send", steps, |p| {
            let mut client = Client::new(
                p.session,
                p.transport,
                p.clock.clone(),
                p.clock,
                p.store,
                p.scratch,
            )
            .with_config(NO_WAIT);
            let result = format!("{:?}", client.send(&API, p.body));
            (client.into_session(), result)
        })
    }

    /// The same `send` through the async client.
    fn send_async(&mut self, steps: Vec<Transaction>) -> String {
        self.call("async send", steps, |p| {
            let mut client = AsyncClient::new(
                p.session,
                p.transport,
                p.clock.clone(),
                p.clock,
                p.store,
                p.scratch,
            )
            .with_config(NO_WAIT);
            let result = format!("{:?}", pollster::block_on(client.send(&API, p.body)));
            (client.into_session(), result)
        })
    }

    /// `restore`, or `logout` when `logout`.
    fn store_call(&mut self, logout: bool) -> String {
        let what = if logout { "logout" } else { "restore" };
        self.call(what, vec![], |p| {
            let mut client = Client::new(
                p.session,
                p.transport,
                p.clock.clone(),
                p.clock,
                p.store,
                p.scratch,
            );
            let result = if logout {
                format!("{:?}", client.logout())
            } else {
                format!("{:?}", client.restore())
            };
            (client.into_session(), result)
        })
    }

    fn restore(&mut self) -> String {
        self.store_call(false)
    }

    fn logout(&mut self) {
        assert_eq!(self.store_call(true), "Ok(())");
    }

    fn advance_secs(&self, secs: u64) {
        self.clock.advance_secs(secs);
    }
}

/// Any request, answered with `status` and `body`: what fits is written, then `BufferTooSmall`.
fn reply(status: u16, body: impl AsRef<[u8]>) -> Transaction {
    Transaction::any().respond(status, body)
}

/// Any request: the transport writes `partial`, then fails with `kind`.
fn fail_after(partial: impl AsRef<[u8]>, kind: ErrorKind) -> Transaction {
    Transaction::any().fail_after(partial, kind)
}

fn api_ok() -> Transaction {
    reply(200, API_BODY)
}

fn ok(result: &str) {
    assert!(result.starts_with("Ok(Response { status: 200"), "{result}");
}

#[test]
fn success_rotation_and_logout_leave_no_secret() {
    let mut run = Run::new("simplejwt success", simplejwt(), 512);
    let login = run.tokens();
    ok(&run.send(vec![reply(200, login), api_ok()]));
    ok(&run.send(vec![api_ok()]));
    // A token without claims lives until a 401: that 401, a refresh with rotation, a retry.
    let rotated = run.tokens();
    ok(&run.send(vec![
        reply(401, String::new()),
        reply(200, rotated),
        api_ok(),
    ]));
    run.logout();
}

/// A session logged in, whose token the API has accepted once.
fn logged_in(label: &'static str) -> Run {
    let mut run = Run::new(label, simplejwt(), 512);
    let login = run.tokens();
    ok(&run.send(vec![reply(200, login), api_ok()]));
    run
}

#[test]
fn every_failure_class_leaves_no_secret() {
    // The API's 401, then each failure class from the token endpoint, each answer carrying a
    // token-looking body where it can.
    let unavailable = |run: &Run| reply(503, run.tokens());
    let unreadable = |run: &Run| reply(200, format!("{{\"access\":{}", run.tokens()));
    let configuration = |run: &Run| reply(404, run.tokens());
    for answer in [unavailable, unreadable, configuration] {
        let mut run = logged_in("failure class");
        let step = answer(&run);
        let result = run.send(vec![reply(401, String::new()), step]);
        assert!(result.starts_with("Err("), "{result}");
    }
    // The refresh token rejected: a login follows, and works.
    let mut run = logged_in("refresh token rejected");
    let rejected = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
    let login = run.tokens();
    ok(&run.send(vec![
        reply(401, String::new()),
        reply(401, rejected),
        reply(200, login),
        api_ok(),
    ]));
    // Credentials rejected.
    run.logout();
    run.session.as_mut().unwrap().reset();
    let result = run.send(vec![reply(401, run.tokens())]);
    assert!(result.contains("LoginRequired"), "{result}");
}

#[test]
fn transport_failures_mid_answer_leave_no_secret() {
    for kind in [ErrorKind::TimedOut, ErrorKind::Other] {
        let mut run = Run::new("simplejwt transport failure", simplejwt(), 512);
        // The transport wrote the whole answer, then failed: a timeout, a reset.
        let answer = run.tokens();
        let result = run.send(vec![fail_after(answer, kind)]);
        assert!(result.contains("RetryLater"), "{result}");
        // And part of one.
        run.session.as_mut().unwrap().reset();
        let answer = run.tokens();
        let half = answer[..answer.len() / 2].to_owned();
        let result = run.send(vec![fail_after(half, kind)]);
        assert!(result.contains("RetryLater"), "{result}");
    }
    // The answer overflows the body buffer: what fits was written.
    let mut run = Run::new("simplejwt overflow", simplejwt(), 512);
    run.body = vec![0; 64];
    let answer = run.tokens();
    let result = run.send(vec![reply(200, answer)]);
    assert!(result.contains("AnswerTooLarge"), "{result}");
}

#[test]
fn the_async_client_leaves_no_secret_either() {
    let mut run = Run::new("async", simplejwt(), 512);
    let answer = run.tokens();
    let result = run.send_async(vec![fail_after(answer, ErrorKind::TimedOut)]);
    assert!(result.contains("RetryLater"), "{result}");
    run.session.as_mut().unwrap().reset();
    let login = run.tokens();
    ok(&run.send_async(vec![reply(200, login), api_ok()]));
    run.body = vec![0; 64];
    run.session.as_mut().unwrap().logout();
    run.session.as_mut().unwrap().reset();
    let answer = run.tokens();
    let result = run.send_async(vec![reply(200, answer)]);
    assert!(result.contains("AnswerTooLarge"), "{result}");
}

#[test]
fn oauth2_client_secrets_leave_no_trace() {
    for auth in [ClientAuth::Basic, ClientAuth::Body] {
        let mut run = Run::new("oauth2", oauth2(auth), 512);
        let answer = run.oauth_tokens();
        ok(&run.send(vec![reply(200, answer), api_ok()]));
        let answer = run.oauth_tokens();
        let result = run.send(vec![
            reply(401, String::new()),
            fail_after(answer, ErrorKind::Other),
        ]);
        assert!(result.starts_with("Err("), "{result}");
    }
}

#[test]
fn requests_that_do_not_fit_the_scratch_leave_no_secret() {
    // The writers fill the buffer before they find it too small.
    let mut run = Run::new("simplejwt login, 40-byte scratch", simplejwt(), 40);
    let result = run.send(vec![]);
    assert!(result.contains("BufferTooSmall"), "{result}");

    let mut run = Run::new(
        "oauth2 basic, 60-byte scratch",
        oauth2(ClientAuth::Basic),
        60,
    );
    let result = run.send(vec![]);
    assert!(result.contains("BufferTooSmall"), "{result}");

    let mut run = Run::new("oauth2 post, 60-byte scratch", oauth2(ClientAuth::Body), 60);
    let result = run.send(vec![]);
    assert!(result.contains("BufferTooSmall"), "{result}");

    let mut run = Run::new("simplejwt refresh, 30-byte scratch", simplejwt(), 30);
    let refresh = run.secrets.token("opaque.SCRATCHREFRESH");
    let session = run.session.as_mut().unwrap();
    session
        .set_refresh_token(Instant::ZERO, &refresh, None)
        .unwrap();
    let result = run.send(vec![]);
    assert!(result.contains("BufferTooSmall"), "{result}");
}

#[test]
fn restore_leaves_no_secret_whatever_it_finds() {
    // A usable token, one with a trailing newline, and one the session refuses.
    let mut run = Run::new("restore", simplejwt(), 512);
    let stored = run.secrets.token("refresh");
    run.store.set_token(Some(&stored));
    assert_eq!(run.restore(), "Ok(true)");
    run.store.set_token(Some(&format!("{stored}\n")));
    assert_eq!(run.restore(), "Ok(true)");
    let bad = format!("{}\u{7}bell", run.secrets.token("refresh"));
    run.store.set_token(Some(&bad));
    assert!(run.restore().contains("StoredToken"));
    run.advance_secs(1);
    let login = run.tokens();
    ok(&run.send(vec![reply(200, login), api_ok()]));
    run.logout();
}
