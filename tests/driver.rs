//! The driver step alone, as timelines: no transport, no clock, no delay, no store. Each test
//! reads as what the step asks for at each instant and what the world answers; the test is the
//! I/O loop.

use jwt_refresh::driver::{Action, SendStep};
use jwt_refresh::mock::TokenBuilder;
use jwt_refresh::protocol::{Credentials, Grant, SimpleJwt};
use jwt_refresh::session::LoginReason;
use jwt_refresh::store::Never;
use jwt_refresh::transport::{BearerError, Endpoint, ErrorKind, Response};
use jwt_refresh::{
    ClientConfig, Duration, EndpointError, Error, Instant, Protocol, RefreshError, RefreshPolicy,
    Request, Session,
};

const API: Request<'static> = Request::get("/api/protected/");

fn pair(access: &str, refresh: &str) -> String {
    format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#)
}

fn access_only(access: &str) -> String {
    format!(r#"{{"access":"{access}"}}"#)
}

const LOGIN_BODY: &str = r#"{"username":"device","password":"pw"}"#;

fn with_login() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "pw",
        }),
        ..SimpleJwt::default()
    })
}

fn no_jitter() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

/// What the step asked for, owned, so that a test can compare it and answer.
#[derive(Debug, Clone, PartialEq)]
enum Seen {
    /// Send the API request with this `Authorization` value.
    SendApi(String),
    /// Send this token request, with this body.
    SendToken(Grant, String),
    Save(String),
    ClearStore,
    Sleep {
        until: Instant,
        ms: u32,
    },
    Done,
}

fn login() -> Seen {
    Seen::SendToken(Grant::Login, LOGIN_BODY.into())
}

fn refresh_with(refresh: &str) -> Seen {
    Seen::SendToken(Grant::Refresh, format!(r#"{{"refresh":"{refresh}"}}"#))
}

fn bearer(access: &str) -> Seen {
    Seen::SendApi(format!("Bearer {access}"))
}

fn save(refresh: &str) -> Seen {
    Seen::Save(refresh.into())
}

fn sleep(until_ms: u64, ms: u32) -> Seen {
    Seen::Sleep {
        until: Instant::from_millis(until_ms),
        ms,
    }
}

type Outcome = Result<Response, Error<ErrorKind, Never>>;

/// The world around one session: the time, the buffers, and the step of the current call.
struct Timeline {
    session: Session<'static>,
    config: ClientConfig,
    now: Instant,
    step: Option<SendStep<'static, ErrorKind>>,
    scratch: [u8; 1024],
    body: [u8; 2048],
    /// Polls of the current step that answered something else than `Done`.
    actions: u32,
}

impl Timeline {
    fn new(protocol: Protocol<'static>, policy: RefreshPolicy) -> Self {
        Timeline {
            session: Session::new(protocol, policy),
            config: ClientConfig::default(),
            now: Instant::ZERO,
            step: None,
            scratch: [0; 1024],
            body: [0; 2048],
            actions: 0,
        }
    }

    /// At `ms` milliseconds, the application sends [`API`]: a new step begins.
    fn send_at_ms(&mut self, ms: u64) {
        assert!(self.now <= Instant::from_millis(ms), "time goes forward");
        self.now = Instant::from_millis(ms);
        self.step = Some(SendStep::new(self.now, API, self.config));
        self.actions = 0;
    }

    fn send_at(&mut self, secs: u64) {
        self.send_at_ms(secs * 1000);
    }

    /// Polls the step at the current time.
    fn next(&mut self) -> Seen {
        let step = self.step.as_mut().expect("no call in progress");
        let seen = match step.poll(&mut self.session, self.now, &mut self.scratch) {
            Action::SendApi(request) => {
                assert_eq!(
                    (request.endpoint, request.path),
                    (Endpoint::Api, API.path),
                    "the application's request"
                );
                Seen::SendApi(request.authorization.unwrap().to_owned())
            }
            Action::SendToken { grant, request } => {
                assert_eq!(request.endpoint, Endpoint::Auth);
                Seen::SendToken(grant, String::from_utf8(request.body.to_vec()).unwrap())
            }
            Action::Save(token) => Seen::Save(token.expose().to_owned()),
            Action::ClearStore => Seen::ClearStore,
            Action::Sleep { until, ms } => Seen::Sleep { until, ms },
            Action::Done => Seen::Done,
        };
        if seen != Seen::Done {
            self.actions += 1;
        }
        seen
    }

    /// The API answers with `status`.
    fn api(&mut self, status: u16) {
        self.api_response(Response::new(status, 0));
    }

    fn api_response(&mut self, response: Response) {
        let (now, step) = (self.now, self.step.as_mut().unwrap());
        step.handle_api_response(&mut self.session, now, response);
    }

    /// The token endpoint answers with `status` and `body`.
    fn token(&mut self, status: u16, body: &str) {
        self.token_response(Response::new(status, body.len()), body);
    }

    fn token_response(&mut self, response: Response, body: &str) {
        self.body[..body.len()].copy_from_slice(body.as_bytes());
        let (now, step) = (self.now, self.step.as_mut().unwrap());
        step.handle_token_response(&mut self.session, now, None, response, &self.body);
    }

    /// The token request got no answer.
    fn token_fails(&mut self, kind: ErrorKind) {
        let (now, step) = (self.now, self.step.as_mut().unwrap());
        step.handle_token_error(&mut self.session, now, kind);
    }

    /// The API request failed in the transport.
    fn api_fails(&mut self, kind: ErrorKind) {
        let step = self.step.as_mut().unwrap();
        step.handle_api_error(&mut self.session, kind);
    }

    /// The store was cleared, or not.
    fn cleared(&mut self, ok: bool) {
        let step = self.step.as_mut().unwrap();
        step.handle_cleared(&mut self.session, ok);
    }

    fn saved(&mut self, ok: bool) {
        let step = self.step.as_mut().unwrap();
        step.handle_saved(&mut self.session, ok);
    }

    /// Sleeps until the instant of the last `Sleep`.
    fn sleep_until(&mut self, until: Instant) {
        self.now = until;
    }

    fn finish(&mut self) -> Outcome {
        self.step.take().expect("no call in progress").finish()
    }

    /// Logs in and sends at `at` seconds, with `lifetime`-second access tokens.
    fn logged_in(&mut self, at: u64, lifetime: u64) -> (String, String) {
        let (access, refresh) = (
            TokenBuilder::access(at, lifetime).build(),
            TokenBuilder::refresh(at, 86_400).build(),
        );
        self.send_at(at);
        assert_eq!(self.next(), login());
        self.token(200, &pair(&access, &refresh));
        assert_eq!(self.next(), save(&refresh));
        self.saved(true);
        assert_eq!(self.next(), bearer(&access));
        self.api(200);
        assert_eq!(self.next(), Seen::Done);
        assert_eq!(self.finish().unwrap().status, 200);
        (access, refresh)
    }
}

fn status(outcome: Outcome) -> u16 {
    outcome.expect("a response").status
}

#[test]
fn login_then_send() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, r1) = (
        TokenBuilder::access(0, 300).build(),
        TokenBuilder::refresh(0, 86_400).build(),
    );

    // At 0 s, no tokens: log in, save the refresh token, then send with the new access token.
    t.send_at(0);
    assert_eq!(t.next(), login());
    t.token(200, &pair(&a1, &r1));
    assert_eq!(t.next(), save(&r1));
    t.saved(true);
    assert_eq!(t.next(), bearer(&a1));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(t.next(), Seen::Done, "a finished step stays finished");
    assert_eq!(status(t.finish()), 200);

    // At 100 s the token is fresh: send at once.
    t.send_at(100);
    assert_eq!(t.next(), bearer(&a1));
    t.api(204);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 204);
    assert_eq!(t.actions, 1);
}

#[test]
fn refresh_ahead_of_expiry_rotates_and_saves_first() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (_, r1) = t.logged_in(0, 300);
    let (a2, r2) = (
        TokenBuilder::access(270, 300).build(),
        TokenBuilder::refresh(270, 86_400).build(),
    );

    // At 270 s, 30 s before expiry, the refresh is due (299 s floored lifetime, 29.9 s margin).
    t.send_at(270);
    assert_eq!(t.next(), refresh_with(&r1));
    t.token(200, &pair(&a2, &r2));
    // The rotated refresh token is saved before the new access token is used.
    assert_eq!(t.next(), save(&r2));
    t.saved(true);
    assert_eq!(t.next(), bearer(&a2));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 200);

    // At 540.2 s the next refresh fails with a 503, ahead of expiry: the request goes out
    // with the still-valid token, without sleeping.
    t.send_at_ms(540_200);
    assert_eq!(t.next(), refresh_with(&r2));
    t.token(503, "");
    assert_eq!(t.next(), bearer(&a2));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 200);
}

#[test]
fn a_401_leads_to_one_refresh_and_one_retry() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, r1) = t.logged_in(0, 300);
    let (a2, a3) = (
        TokenBuilder::access(10, 300).build(),
        TokenBuilder::access(20, 300).build(),
    );

    // At 10 s the API revokes the token: 401, one refresh, one retry that succeeds.
    t.send_at(10);
    assert_eq!(t.next(), bearer(&a1));
    t.api(401);
    assert_eq!(t.next(), refresh_with(&r1));
    t.token(200, &access_only(&a2));
    assert_eq!(t.next(), bearer(&a2));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 200);

    // At 20 s: 401, one refresh, one retry that gets 401 again: unauthorized, no third try.
    t.send_at(20);
    assert_eq!(t.next(), bearer(&a2));
    t.api(401);
    assert_eq!(t.next(), refresh_with(&r1));
    t.token(200, &access_only(&a3));
    assert_eq!(t.next(), bearer(&a3));
    t.api(401);
    assert_eq!(t.next(), Seen::Done);
    assert!(matches!(t.finish(), Err(Error::Unauthorized(r)) if r.status == 401));
    let stats = t.session.stats();
    assert_eq!(stats.refreshes, 2);
    // The login's request, then two calls of two requests each; three 401s, two retries.
    assert_eq!(
        (stats.api_requests, stats.unauthorized, stats.retries),
        (5, 3, 2)
    );
}

#[test]
fn a_401_for_insufficient_scope_is_unauthorized_at_once() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, _) = t.logged_in(0, 300);

    // At 10 s: a 401 with `error="insufficient_scope"`: a new token would not help.
    t.send_at(10);
    assert_eq!(t.next(), bearer(&a1));
    let mut response = Response::new(401, 0);
    response.bearer_error = Some(BearerError::InsufficientScope);
    t.api_response(response);
    assert_eq!(t.next(), Seen::Done);
    assert!(matches!(t.finish(), Err(Error::Unauthorized(_))));
    assert_eq!(t.session.stats().refreshes, 0);
}

#[test]
fn backoff_sleeps_then_retry_later_past_max_wait() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (_, r1) = t.logged_in(0, 300);
    t.config = ClientConfig {
        max_wait: Duration::from_secs(75),
    };
    let busy = |t: &mut Timeline| {
        let mut response = Response::new(503, 0);
        response.retry_after = Some(Duration::from_secs(30));
        t.token_response(response, "");
    };

    // At 400 s the token has expired. The token endpoint answers 503 with Retry-After: 30.
    t.send_at(400);
    assert_eq!(t.next(), refresh_with(&r1));
    busy(&mut t);
    assert_eq!(t.next(), sleep(430_000, 30_000));
    t.sleep_until(Instant::from_secs(430));
    assert_eq!(t.next(), refresh_with(&r1));
    busy(&mut t);
    // A second failure in a row waits about one refresh interval (254 to 284 s for these
    // 5-minute tokens): past max_wait (75 s from the start), so the call ends now.
    assert_eq!(t.next(), Seen::Done);
    match t.finish() {
        Err(Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable { status: 503, .. })),
        }) => {}
        other => panic!("{other:?}"),
    }
    // The tokens are kept for the next call.
    assert!(t.session.has_refresh_token());
    let stats = t.session.stats();
    assert_eq!(
        (stats.sleeps, stats.slept_ms, stats.failures),
        (1, 30_000, 2)
    );
}

#[test]
fn the_step_bound_ends_a_call_whose_clock_does_not_advance() {
    // A clock stuck at 0 s and a delay that does not sleep: every poll answers the same sleep.
    let policy = no_jitter();
    let mut t = Timeline::new(with_login(), policy);
    let bound = t.config.max_steps(&policy);
    assert_eq!(bound, 16 + 3 * (60 + 1), "the documented default");

    t.send_at(0);
    assert_eq!(t.next(), login());
    t.token(503, "");
    loop {
        match t.next() {
            Seen::Sleep { until, ms: 1000 } if until == Instant::from_secs(1) => {}
            Seen::Done => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(t.actions, bound);
    assert!(matches!(
        t.finish(),
        Err(Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable {
                status: 503,
                ..
            }))
        })
    ));
}

#[test]
fn with_a_working_clock_max_wait_ends_the_call_before_the_step_bound() {
    // A 10 ms backoff and a 1 s max_wait: 101 tries, far more than the 32 that the old fixed
    // bound of 64 steps allowed, and still under the derived bound.
    let policy = RefreshPolicy {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(10),
        ..no_jitter()
    };
    let mut t = Timeline::new(with_login(), policy);
    t.config = ClientConfig {
        max_wait: Duration::from_secs(1),
    };
    let bound = t.config.max_steps(&policy);
    assert_eq!(bound, 16 + 3 * (100 + 1));

    t.send_at(0);
    let mut tries = 0;
    loop {
        match t.next() {
            Seen::SendToken(Grant::Login, _) => {
                tries += 1;
                t.token(503, "");
            }
            Seen::Sleep { until, ms: 10 } => t.sleep_until(until),
            Seen::Done => break,
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(tries, 101, "at 0, 10, ..., 1000 ms");
    assert_eq!(t.now, Instant::from_millis(1000));
    assert!(t.actions < bound, "{} steps", t.actions);
    assert!(matches!(t.finish(), Err(Error::RetryLater { .. })));
}

#[test]
fn the_step_bound_follows_max_wait_and_the_backoff_base() {
    let config = |secs| ClientConfig {
        max_wait: Duration::from_secs(secs),
    };
    let base = |ms| RefreshPolicy {
        backoff_base: Duration::from_millis(ms),
        ..RefreshPolicy::default()
    };
    assert_eq!(config(60).max_steps(&base(1000)), 199);
    assert_eq!(config(0).max_steps(&base(1000)), 19);
    assert_eq!(config(600).max_steps(&base(1000)), 16 + 3 * 601);
    assert_eq!(config(60).max_steps(&base(5000)), 16 + 3 * 13);
    // A zero backoff counts as 1 ms; nothing overflows.
    assert_eq!(config(1).max_steps(&base(0)), 16 + 3 * 1001);
    let forever = ClientConfig {
        max_wait: Duration::MAX,
    };
    assert_eq!(forever.max_steps(&base(0)), u32::MAX);
}

#[test]
fn a_definitive_rejection_clears_the_store() {
    // No login configured: a restored refresh token that the server has blacklisted.
    let mut t = Timeline::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    let r0 = TokenBuilder::refresh(0, 86_400).build();
    t.session
        .set_refresh_token(Instant::ZERO, &r0, None)
        .unwrap();

    t.send_at(0);
    assert_eq!(t.next(), refresh_with(&r0));
    t.token(
        401,
        r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#,
    );
    assert_eq!(t.next(), Seen::ClearStore);
    t.cleared(false); // the flash erase failed: counted, and the call goes on
    assert_eq!(t.next(), Seen::Done);
    assert!(matches!(
        t.finish(),
        Err(Error::LoginRequired(LoginReason::RefreshTokenRejected))
    ));
    assert_eq!(t.session.stats().store_failures, 1);
}

#[test]
fn a_definitive_rejection_clears_the_store_then_logs_in() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let r0 = TokenBuilder::refresh(0, 86_400).build();
    let (a1, r1) = (
        TokenBuilder::access(5, 300).build(),
        TokenBuilder::refresh(5, 86_400).build(),
    );
    t.session
        .set_refresh_token(Instant::ZERO, &r0, None)
        .unwrap();

    t.send_at(5);
    assert_eq!(t.next(), refresh_with(&r0));
    t.token(401, r#"{"code":"token_not_valid"}"#);
    assert_eq!(t.next(), Seen::ClearStore);
    assert_eq!(t.next(), login());
    t.token(200, &pair(&a1, &r1));
    assert_eq!(t.next(), save(&r1));
    t.saved(true);
    assert_eq!(t.next(), bearer(&a1));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 200);
}

#[test]
fn a_failed_save_keeps_the_tokens_usable() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, r1) = (
        TokenBuilder::access(0, 300).build(),
        TokenBuilder::refresh(0, 86_400).build(),
    );

    t.send_at(0);
    assert_eq!(t.next(), login());
    t.token(200, &pair(&a1, &r1));
    assert_eq!(t.next(), save(&r1));
    t.saved(false); // the flash write failed
    assert_eq!(t.next(), bearer(&a1));
    t.api(200);
    assert_eq!(t.next(), Seen::Done);
    assert_eq!(status(t.finish()), 200);
    assert!(t.session.has_refresh_token());
    assert_eq!(t.session.stats().store_failures, 1);
}

#[test]
fn transport_failures() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, r1) = (
        TokenBuilder::access(0, 300).build(),
        TokenBuilder::refresh(0, 86_400).build(),
    );

    // The login's connection breaks: a transient failure, backed off for backoff_base (1 s).
    t.send_at(0);
    assert_eq!(t.next(), login());
    t.token_fails(ErrorKind::Other);
    assert_eq!(t.next(), sleep(1000, 1000));
    t.sleep_until(Instant::from_secs(1));
    // The answer does not fit the body buffer: waiting will not help, the call ends.
    assert_eq!(t.next(), login());
    t.token_fails(ErrorKind::BufferTooSmall);
    assert_eq!(t.next(), Seen::Done);
    let err = t.finish().unwrap_err();
    assert!(matches!(
        err,
        Error::AnswerTooLarge(ErrorKind::BufferTooSmall)
    ));
    assert!(!err.is_retryable());

    // The API request itself fails in the transport: the call ends with that error.
    t.send_at(10);
    assert_eq!(t.next(), login());
    t.token(200, &pair(&a1, &r1));
    assert_eq!(t.next(), save(&r1));
    t.saved(true);
    assert_eq!(t.next(), bearer(&a1));
    t.api_fails(ErrorKind::TimedOut);
    assert_eq!(t.next(), Seen::Done);
    let err = t.finish().unwrap_err();
    assert!(matches!(err, Error::Transport(ErrorKind::TimedOut)));
    assert!(err.is_retryable());
    // A request that failed in the transport was still sent.
    assert_eq!(t.session.stats().api_requests, 1);

    // The API's answer does not fit the body buffer: the token was fine, but retrying the
    // same request into the same buffer will not help.
    t.send_at(11);
    assert_eq!(t.next(), bearer(&a1));
    t.api_fails(ErrorKind::BufferTooSmall);
    assert_eq!(t.next(), Seen::Done);
    let err = t.finish().unwrap_err();
    assert!(matches!(err, Error::Transport(ErrorKind::BufferTooSmall)));
    assert!(!err.is_retryable());
    assert!(t.session.has_refresh_token());
}

#[test]
fn answers_nobody_asked_for_are_ignored_and_an_abandoned_call_is_retry_later() {
    let mut t = Timeline::new(with_login(), no_jitter());
    t.send_at(0);
    // An API answer and an API failure before any API request was asked for.
    t.api(500);
    t.api_fails(ErrorKind::Other);
    assert_eq!(t.session.stats().api_requests, 0);
    assert_eq!(t.next(), login());
    // The application gives up before the step is done.
    assert!(matches!(t.finish(), Err(Error::RetryLater { last: None })));
}

#[test]
fn actions_show_no_secret() {
    let mut t = Timeline::new(with_login(), no_jitter());
    let (a1, r1) = (
        "opaque.SECRETACCESSSECRETACCESS.tail",
        "opaque.SECRETREFRESHSECRETREFRESH.tail",
    );
    let mut shown = String::new();
    t.send_at(0);
    let step = t.step.as_mut().unwrap();
    shown += &format!("{:?}", step.poll(&mut t.session, t.now, &mut t.scratch));
    t.token(200, &pair(a1, r1));
    let step = t.step.as_mut().unwrap();
    shown += &format!("{:?}", step.poll(&mut t.session, t.now, &mut t.scratch));
    t.saved(true);
    let step = t.step.as_mut().unwrap();
    shown += &format!("{:?}", step.poll(&mut t.session, t.now, &mut t.scratch));
    shown += &format!("{:?}", t.step);
    for secret in ["SECRETACCESS", "SECRETREFRESH", "pw\""] {
        assert!(!shown.contains(secret), "{secret} shown in: {shown}");
    }
    assert!(shown.contains("SendToken") && shown.contains("Save") && shown.contains("SendApi"));
}
