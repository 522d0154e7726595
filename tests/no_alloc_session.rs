//! The per-request decision path allocates nothing: a counting global allocator wraps the
//! system one and counts, on the measuring thread only, every allocation made while a closure
//! runs. Tokens, answer bodies and sessions are built before the measured regions; inside them
//! only the session's API is called.
//!
//! A sanity test checks that a `Box::new` in a measured region is counted, so that these tests
//! can fail.

use std::hint::black_box;

use jwt_refresh::mock::TokenBuilder;
use jwt_refresh::policy::{RefreshPolicy, TokenFacts};
use jwt_refresh::protocol::{
    ClientAuth, Credentials, Grant, OAuth2, OAuth2Login, Protocol, SimpleJwt, TokenResponse,
};
use jwt_refresh::session::{ApiVerdict, Output, Session};
use jwt_refresh::{Duration, Instant};

#[path = "support/counting.rs"]
mod counting;

use counting::assert_no_allocation;

// ---------------------------------------------------------------------------------------------
// Fixtures, all built outside the measured regions
// ---------------------------------------------------------------------------------------------

/// A token issued at session second `at` that lives `lifetime` seconds, its `jti` from `n`.
fn mint(kind: &'static str, at: u64, lifetime: u64, n: usize) -> String {
    let token = match kind {
        "access" => TokenBuilder::access(at, lifetime),
        _ => TokenBuilder::refresh(at, lifetime),
    };
    token.jti(&format!("{n:032x}")).signed().build()
}

fn no_jitter() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

fn ok(body: &str) -> TokenResponse<'_> {
    TokenResponse {
        status: 200,
        body: body.as_bytes(),
        retry_after: None,
    }
}

const CREDS: Credentials<'static> = Credentials {
    username: "device",
    password: "hunter2",
};

fn simplejwt() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(CREDS),
        ..SimpleJwt::default()
    })
}

fn oauth2(login: OAuth2Login) -> Protocol<'static> {
    Protocol::OAuth2(OAuth2 {
        client_id: Some("device-7"),
        client_secret: Some("s3cret"),
        client_auth: ClientAuth::Basic,
        scope: Some("telemetry read"),
        login,
        ..OAuth2::default()
    })
}

/// How many refresh cycles a measured region runs.
const CYCLES: usize = 20;
/// Token lifetime in the cycles, seconds.
const LIFETIME: u64 = 300;

/// What a measured poll said, without borrowing the session.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Send,
    Refresh,
    Login,
    Persist,
    Timeout,
    Other,
}

/// Polls and classifies, checking the request or header on the way (without allocating).
fn poll_kind(s: &mut Session<'static>, now: Instant, buf: &mut [u8]) -> Kind {
    match s.poll(now, buf) {
        Output::Send { authorization, .. } => {
            assert!(authorization.starts_with("Bearer ey"));
            Kind::Send
        }
        Output::Refresh(r) => {
            assert!(!r.body.is_empty());
            Kind::Refresh
        }
        Output::Login(r) => {
            assert!(!r.body.is_empty());
            Kind::Login
        }
        Output::Persist(secret) => {
            assert!(!secret.expose().is_empty());
            Kind::Persist
        }
        Output::Timeout(_) => Kind::Timeout,
        _ => Kind::Other,
    }
}

/// Polls for a `Send` and reports `status` for it.
fn send(s: &mut Session<'static>, now: Instant, buf: &mut [u8], status: u16) -> ApiVerdict {
    let token = match s.poll(now, buf) {
        Output::Send {
            authorization,
            token,
        } => {
            assert!(authorization.starts_with("Bearer "));
            token
        }
        _ => panic!("expected Send"),
    };
    s.handle_api_status(now, token, status)
}

/// A session holding a fresh access token (issued at 0 s, living [`LIFETIME`]) and a refresh
/// token.
fn provisioned(protocol: Protocol<'static>) -> Session<'static> {
    let mut s = Session::new(protocol, no_jitter());
    let access = mint("access", 0, LIFETIME, 0);
    let refresh = mint("refresh", 0, 86_400, 0);
    s.set_tokens(
        Instant::ZERO,
        Instant::ZERO,
        &access,
        Some(&refresh),
        TokenFacts::default(),
    )
    .expect("provisioning");
    s
}

// ---------------------------------------------------------------------------------------------
// The Send path
// ---------------------------------------------------------------------------------------------

fn send_path(protocol: Protocol<'static>) {
    let mut s = provisioned(protocol);
    let mut buf = [0u8; 2048];
    let refresh_at = s.lease().expect("a lease").refresh_at;
    assert_no_allocation("poll -> Send and handle_api_status, 10 000 times", || {
        for i in 0..10_000u64 {
            // Spread over the token's usable life, before its refresh is due.
            let now = Instant::from_millis(i * (refresh_at.as_millis() - 1) / 10_000);
            let status = [200, 204, 403, 500, 404][i as usize % 5];
            assert_eq!(send(&mut s, now, &mut buf, status), ApiVerdict::Done);
        }
        // A 401 on an accepted token asks for a retry, and the session refreshes.
        let now = Instant::from_millis(refresh_at.as_millis() - 1);
        let token = match s.poll(now, &mut buf) {
            Output::Send { token, .. } => token,
            _ => panic!("expected Send"),
        };
        assert_eq!(s.handle_api_status(now, token, 401), ApiVerdict::Retry);
        assert_eq!(poll_kind(&mut s, now, &mut buf), Kind::Refresh);
        // The refresh is in flight: more polls wait (the token was rejected) without a
        // second request, and the session's queries allocate nothing either.
        for ms in 0..100 {
            let later = now.saturating_add(Duration::from_millis(ms));
            assert_eq!(poll_kind(&mut s, later, &mut buf), Kind::Timeout);
        }
        assert!(s.is_refreshing() && s.has_refresh_token());
        black_box((s.lease(), s.poll_timeout(), s.stats(), s.policy()));
    });
}

#[test]
fn simplejwt_send_path_allocates_nothing() {
    send_path(simplejwt());
}

#[test]
fn oauth2_send_path_allocates_nothing() {
    send_path(oauth2(OAuth2Login::None));
}

// ---------------------------------------------------------------------------------------------
// Whole refresh cycles
// ---------------------------------------------------------------------------------------------

/// The answers of [`CYCLES`] refreshes, the `i`-th issued at `(i + 1) * 1000` s: a rotated
/// refresh token every other time.
fn refresh_answers(oauth: bool) -> Vec<String> {
    (0..CYCLES)
        .map(|i| {
            let at = (i as u64 + 1) * 1000;
            let access = mint("access", at, LIFETIME, i + 1);
            let refresh = (i % 2 == 0).then(|| mint("refresh", at, 86_400, i + 1));
            match (oauth, refresh) {
                // An unknown member with a surrogate pair and a lenient literal: skipped.
                (false, Some(r)) => format!(
                    r#"{{"access":"{access}","refresh":"{r}","note":"\ud83d\ude00","x":tru}}"#
                ),
                (false, None) => format!(r#"{{"access":"{access}"}}"#),
                (true, Some(r)) => format!(
                    r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{LIFETIME},"refresh_token":"{r}","scope":"telemetry read"}}"#
                ),
                (true, None) => format!(
                    r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{LIFETIME}}}"#
                ),
            }
        })
        .collect()
}

/// Hostile and failing answers fed before each successful one.
fn bad_answers() -> Vec<(u16, String)> {
    vec![
        (503, "<html>busy</html>".into()),
        (200, r#"{"access":"x.y.z""#.into()),
        (200, format!(r#"{{"x":{}}}"#, "[".repeat(2000))),
        (200, format!(r#"{{"access":"{}"}}"#, "a".repeat(4000))),
        (
            200,
            r#"{"access_token":"a\r\nX: 1","token_type":"Bearer"}"#.into(),
        ),
        // serde-json-core's limits (README): valid JSON nested 17 levels, a surrogate pair in a
        // token, a fractional `expires_in` without `float-dates`.
        (
            200,
            format!(r#"{{"x":{}{}}}"#, "[".repeat(16), "]".repeat(16)),
        ),
        (
            200,
            r#"{"access":"\ud83d\ude00","access_token":"\ud83d\ude00"}"#.into(),
        ),
        #[cfg(not(feature = "float-dates"))]
        (
            200,
            r#"{"access_token":"a.b.c","token_type":"Bearer","expires_in":1.5}"#.into(),
        ),
    ]
}

/// [`CYCLES`] times: at `i * 1000 + 999` s (the token has expired) poll -> Refresh, a failing
/// answer, the backoff, poll -> Refresh again, the good answer, Persist (when rotated),
/// handle_persisted, Send and its status; then a clock that goes back and a late answer.
fn refresh_cycles(protocol: Protocol<'static>, oauth: bool) {
    let mut s = provisioned(protocol);
    let mut buf = [0u8; 2048];
    let answers = refresh_answers(oauth);
    let bad = bad_answers();
    let (stats, kinds) = assert_no_allocation("whole refresh cycles", || {
        let mut kinds = [0usize; 6];
        for (i, body) in answers.iter().enumerate() {
            let at = Instant::from_secs((i as u64 + 1) * 1000);
            assert_eq!(poll_kind(&mut s, at, &mut buf), Kind::Refresh);
            kinds[Kind::Refresh as usize] += 1;
            // A failing answer: the tokens are kept, a backoff follows.
            let (status, bad_body) = &bad[i % bad.len()];
            let failing = TokenResponse {
                status: *status,
                body: bad_body.as_bytes(),
                retry_after: Some(Duration::from_secs(2)),
            };
            assert!(s.handle_token_response(at, None, &failing).is_err());
            assert!(s.has_refresh_token());
            assert_eq!(poll_kind(&mut s, at, &mut buf), Kind::Timeout);
            // After the backoff: refresh again, and this time it works.
            let at = at.saturating_add(Duration::from_secs(5));
            assert_eq!(poll_kind(&mut s, at, &mut buf), Kind::Refresh);
            assert_eq!(
                s.handle_token_response(at, None, &ok(body)),
                Ok(Grant::Refresh)
            );
            let kind = poll_kind(&mut s, at, &mut buf);
            kinds[kind as usize] += 1;
            if kind == Kind::Persist {
                s.handle_persisted(true);
            }
            assert_eq!(send(&mut s, at, &mut buf, 200), ApiVerdict::Done);
            // The clock goes back a little; a duplicated answer is refused.
            let back = at.saturating_sub(Duration::from_secs(3));
            assert_eq!(send(&mut s, back, &mut buf, 204), ApiVerdict::Done);
            assert!(s.handle_token_response(back, None, &ok(body)).is_err());
            assert!(s.handle_no_answer(back).is_err());
        }
        (s.stats(), kinds)
    });
    assert_eq!(stats.refreshes as usize, CYCLES);
    assert_eq!(kinds[Kind::Refresh as usize], CYCLES);
    assert_eq!(kinds[Kind::Persist as usize], CYCLES / 2);
}

#[test]
fn simplejwt_refresh_cycle_allocates_nothing() {
    refresh_cycles(simplejwt(), false);
}

#[test]
fn oauth2_refresh_cycle_allocates_nothing() {
    refresh_cycles(oauth2(OAuth2Login::None), true);
}

// ---------------------------------------------------------------------------------------------
// Logins
// ---------------------------------------------------------------------------------------------

/// From nothing: poll -> Login, the answer, Persist (SimpleJWT), Send; then the refresh token
/// is rejected and the session logs in again at once.
fn login_cycle(protocol: Protocol<'static>, oauth: bool) {
    let mut s = Session::new(protocol, no_jitter());
    let mut buf = [0u8; 2048];
    let access = mint("access", 0, LIFETIME, 100);
    let refresh = mint("refresh", 0, 86_400, 100);
    let (login_body, rejection) = if oauth {
        (
            format!(
                r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{LIFETIME},"refresh_token":"{refresh}"}}"#
            ),
            (400, r#"{"error":"invalid_grant"}"#),
        )
    } else {
        (
            format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#),
            (
                401,
                r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#,
            ),
        )
    };
    assert_no_allocation("login cycles", || {
        for round in 0..CYCLES as u64 {
            let at = Instant::from_secs(round * 1000);
            let expected = if round == 0 {
                Kind::Login
            } else {
                Kind::Refresh
            };
            assert_eq!(poll_kind(&mut s, at, &mut buf), expected);
            if round > 0 {
                // The refresh token is rejected: log in again, straight away.
                let rejected = TokenResponse {
                    status: rejection.0,
                    body: rejection.1.as_bytes(),
                    retry_after: None,
                };
                assert!(s.handle_token_response(at, None, &rejected).is_err());
                assert!(!s.has_refresh_token());
                assert_eq!(poll_kind(&mut s, at, &mut buf), Kind::Login);
            }
            assert_eq!(
                s.handle_token_response(at, None, &ok(&login_body)),
                Ok(Grant::Login)
            );
            assert_eq!(poll_kind(&mut s, at, &mut buf), Kind::Persist);
            s.handle_persisted(round % 2 == 0);
            assert_eq!(send(&mut s, at, &mut buf, 200), ApiVerdict::Done);
        }
        s.logout();
        s.reset();
        assert_eq!(
            poll_kind(&mut s, Instant::from_secs(CYCLES as u64 * 1000), &mut buf),
            Kind::Login
        );
    });
}

#[test]
fn simplejwt_login_cycle_allocates_nothing() {
    login_cycle(simplejwt(), false);
}

#[test]
fn oauth2_client_credentials_cycle_allocates_nothing() {
    login_cycle(oauth2(OAuth2Login::ClientCredentials), true);
}
