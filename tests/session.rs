//! Session timelines: each test reads as a script of inputs at given times and the outputs the
//! session must answer, with tokens minted by the mock kit.

use jwt_refresh::mock::{TokenBuilder, EPOCH};
use jwt_refresh::policy::{LeaseError, RefreshPolicy, TokenFacts};
use jwt_refresh::protocol::{
    ClientAuth, Credentials, FailureClass, Method, OAuth2, OAuth2Login, OAuthErrorCode, Protocol,
    SimpleJwt, TokenResponse,
};
use jwt_refresh::session::{ApiVerdict, LoginReason, Output, Session, SessionError};
use jwt_refresh::{
    Duration, EndpointError, Instant, RefreshError, TokenError, TokenKind, UnixTime,
};

/// A token issued at session second `at` that lives `lifetime` seconds, with a claim the crate
/// does not read.
fn mint(kind: &str, at: u64, lifetime: u64) -> String {
    mint_with(kind, at, lifetime).build()
}

fn mint_with(kind: &str, at: u64, lifetime: u64) -> TokenBuilder {
    let token = match kind {
        "access" => TokenBuilder::access(at, lifetime),
        _ => TokenBuilder::refresh(at, lifetime),
    };
    token.claim("user_id", "1").signed()
}

fn mint_nbf(kind: &str, at: u64, lifetime: u64, nbf: Option<u64>) -> String {
    let token = mint_with(kind, at, lifetime);
    match nbf {
        Some(nbf) => token.nbf(EPOCH + nbf).build(),
        None => token.build(),
    }
}

fn t(secs: u64) -> Instant {
    Instant::from_secs(secs)
}

fn ms(millis: u64) -> Instant {
    Instant::from_millis(millis)
}

fn no_jitter() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        ..RefreshPolicy::default()
    }
}

const CREDS: Credentials<'static> = Credentials {
    username: "device",
    password: "hunter2",
};

fn simplejwt_login() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(CREDS),
        ..SimpleJwt::default()
    })
}

fn ok(body: &str) -> TokenResponse<'_> {
    TokenResponse {
        status: 200,
        body: body.as_bytes(),
        retry_after: None,
    }
}

fn status(status: u16, body: &str) -> TokenResponse<'_> {
    TokenResponse {
        status,
        body: body.as_bytes(),
        retry_after: None,
    }
}

fn login_answer(access: &str, refresh: &str) -> String {
    format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#)
}

type S = Session<'static>;

/// What a poll said, owned, so that tests can compare and keep going.
#[derive(Debug, Clone, PartialEq)]
enum Said {
    Send(String),
    Refresh(String),
    Login(String),
    Persist(String),
    Timeout(Instant),
    LoginRequired(LoginReason),
    Failed(SessionError),
}

fn poll(s: &mut S, now: Instant) -> Said {
    let mut buf = [0u8; 4096];
    match s.poll(now, &mut buf) {
        Output::Send { authorization, .. } => Said::Send(authorization.to_owned()),
        Output::Refresh(r) => {
            assert_eq!(r.method, Method::Post);
            Said::Refresh(String::from_utf8(r.body.to_vec()).unwrap())
        }
        Output::Login(r) => Said::Login(String::from_utf8(r.body.to_vec()).unwrap()),
        Output::Persist(secret) => Said::Persist(secret.expose().to_owned()),
        Output::Timeout(at) => Said::Timeout(at),
        Output::LoginRequired(reason) => Said::LoginRequired(reason),
        Output::Failed(e) => Said::Failed(e),
    }
}

/// Polls and returns the token id of a Send with `bearer`.
fn send_id(s: &mut S, now: Instant, bearer: &str) -> jwt_refresh::TokenId {
    let mut buf = [0u8; 4096];
    match s.poll(now, &mut buf) {
        Output::Send {
            authorization,
            token,
        } => {
            assert_eq!(authorization, format!("Bearer {bearer}"));
            token
        }
        other => panic!("expected Send at {now}, got {other:?}"),
    }
}

fn bearer(token: &str) -> Said {
    Said::Send(format!("Bearer {token}"))
}

/// Logs in at `at` with a `lifetime`-second access token; returns (access, refresh).
fn logged_in(s: &mut S, at: u64, lifetime: u64) -> (String, String) {
    assert_eq!(
        poll(s, t(at)),
        Said::Login(r#"{"username":"device","password":"hunter2"}"#.into())
    );
    let access = mint("access", at, lifetime);
    let refresh = mint("refresh", at, 86_400);
    s.handle_token_response(t(at), None, &ok(&login_answer(&access, &refresh)))
        .unwrap();
    assert_eq!(poll(s, t(at)), Said::Persist(refresh.clone()));
    s.handle_persisted(true);
    (access, refresh)
}

#[test]
fn simplejwt_five_minute_token_timeline() {
    // at 0 s login, 5-minute tokens; at 240 s Send; at 271 s Refresh; the answer rotates the
    // refresh token; it is persisted first; at 272 s Send with the new access token.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    assert_eq!(poll(&mut s, t(0)), bearer(&access));
    assert_eq!(poll(&mut s, t(240)), bearer(&access));
    assert_eq!(poll(&mut s, t(268)), bearer(&access));
    assert_eq!(
        poll(&mut s, t(271)),
        Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#))
    );
    let access2 = mint("access", 271, 300);
    let refresh2 = mint("refresh", 271, 86_400);
    s.handle_token_response(t(271), None, &ok(&login_answer(&access2, &refresh2)))
        .unwrap();
    assert_eq!(poll(&mut s, t(272)), Said::Persist(refresh2.clone()));
    s.handle_persisted(true);
    assert_eq!(poll(&mut s, t(272)), bearer(&access2));
    // The next refresh is scheduled from the new token: 271 + 299 - 29.9 s.
    assert_eq!(poll(&mut s, ms(540_000)), bearer(&access2));
    assert_eq!(
        poll(&mut s, ms(540_200)),
        Said::Refresh(format!(r#"{{"refresh":"{refresh2}"}}"#))
    );
    assert_eq!(s.stats().refreshes, 1);
    assert_eq!(s.stats().logins, 1);
}

#[test]
fn refresh_without_rotation_keeps_the_refresh_token() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (_, refresh) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(280)), Said::Refresh(_)));
    let access2 = mint("access", 280, 300);
    s.handle_token_response(t(280), None, &ok(&format!(r#"{{"access":"{access2}"}}"#)))
        .unwrap();
    // No rotation: nothing to persist, straight to Send.
    assert_eq!(poll(&mut s, t(281)), bearer(&access2));
    assert_eq!(
        poll(&mut s, t(560)),
        Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#))
    );
}

#[test]
fn failed_refresh_before_expiry_keeps_sending_the_valid_token() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let err = s
        .handle_token_response(t(271), None, &status(503, "<html>busy</html>"))
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::RetryLater);
    // The first retry comes a quarter to half of the 28 s the token has left later, before it
    // expires; meanwhile the token (valid until 299 s) is sent.
    let retry = s.poll_timeout().unwrap();
    assert!(retry >= t(278) && retry <= t(285), "{retry}");
    assert_eq!(poll(&mut s, ms(271_500)), bearer(&access));
    assert_eq!(
        poll(&mut s, retry.saturating_sub(Duration::from_millis(1))),
        bearer(&access)
    );
    assert_eq!(
        poll(&mut s, retry),
        Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#))
    );
    s.handle_no_answer(retry).unwrap();
    // The second failure: the next retry about one refresh interval later (the 299 s lifetime
    // less its 29.9 s margin, give or take half of it).
    let until = s.poll_timeout().unwrap();
    let wait = until.saturating_duration_since(retry).as_millis();
    assert!((254_150..=284_050).contains(&wait), "{wait}");
    assert_eq!(
        poll(&mut s, retry.saturating_add(Duration::from_millis(100))),
        bearer(&access)
    );
    // The token expires at 299 s: from then on the session waits, never sends it.
    assert_eq!(poll(&mut s, t(299)), Said::Timeout(until));
    assert!(matches!(poll(&mut s, until), Said::Refresh(_)));
}

#[test]
fn never_sends_an_expired_token() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    // 300 s lifetime minus the second lost to flooring: expires at 299 s. The refresh fails, so
    // the old token is used to the last millisecond and not one past it.
    assert!(matches!(poll(&mut s, ms(298_990)), Said::Refresh(_)));
    s.handle_no_answer(ms(298_990)).unwrap();
    assert_eq!(poll(&mut s, ms(298_999)), bearer(&access));
    assert_eq!(poll(&mut s, ms(299_000)), Said::Timeout(ms(299_990)));
}

#[test]
fn single_flight_and_a_stuck_refresh_times_out() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    assert!(s.is_refreshing());
    // A second caller while the refresh is in flight uses the still-valid token...
    assert_eq!(poll(&mut s, t(275)), bearer(&access));
    // ...and, once it has expired, waits for the refresh instead of starting another.
    assert_eq!(poll(&mut s, t(299)), Said::Timeout(t(271 + 30)));
    // No answer within 30 s: a transient failure, then a new refresh after the backoff.
    let Said::Timeout(until) = poll(&mut s, t(301)) else {
        panic!()
    };
    assert!(until >= t(302), "{until}");
    assert!(!s.is_refreshing());
    assert_eq!(s.stats().failures, 1);
    assert!(matches!(poll(&mut s, until), Said::Refresh(_)));
}

#[test]
fn a_late_answer_to_a_timed_out_refresh_is_still_taken() {
    // With rotation the server has already retired the old refresh token: dropping the late
    // answer would lose the only valid one.
    let mut s = S::new(simplejwt_login(), no_jitter());
    logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let Said::Timeout(_) = poll(&mut s, t(301)) else {
        panic!()
    };
    let access2 = mint("access", 271, 300);
    let refresh2 = mint("refresh", 271, 86_400);
    s.handle_token_response(t(302), None, &ok(&login_answer(&access2, &refresh2)))
        .unwrap();
    assert_eq!(poll(&mut s, t(302)), Said::Persist(refresh2));
    s.handle_persisted(true);
    assert_eq!(poll(&mut s, t(302)), bearer(&access2));
    // Its transport error, reported late, changes nothing.
    s.handle_no_answer(t(303)).unwrap_err();
    assert_eq!(poll(&mut s, t(303)), bearer(&access2));
}

/// Polls until the session sends a refresh (through its backoff), from `from`; returns the
/// refresh request's body and when it went out.
fn refresh_after_backoff(s: &mut S, from: Instant) -> (String, Instant) {
    let mut now = from;
    for _ in 0..100 {
        match poll(s, now) {
            Said::Refresh(body) => return (body, now),
            Said::Timeout(at) => now = at,
            Said::Send(_) => now = Instant::from_millis(now.as_millis() + 1000),
            other => panic!("waiting for a refresh at {now}: {other:?}"),
        }
    }
    panic!("no refresh after 100 polls")
}

#[test]
fn a_late_answer_is_taken_after_a_second_request_was_rejected() {
    // No login configured: losing the rotated token would need the application.
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    let (a0, rt0) = (mint("access", 0, 300), mint("refresh", 0, 86_400));
    s.set_tokens(t(0), t(0), &a0, Some(&rt0), TokenFacts::default())
        .unwrap();
    // R1 goes out with rt0 and gets no answer within 30 s.
    assert_eq!(
        poll(&mut s, t(271)),
        Said::Refresh(format!(r#"{{"refresh":"{rt0}"}}"#))
    );
    let Said::Timeout(_) = poll(&mut s, t(301)) else {
        panic!()
    };
    // R2 goes out, again with rt0. The server had rotated rt0 for R1, so R2 is refused and
    // rt0 is dropped.
    let (body, _) = refresh_after_backoff(&mut s, t(301));
    assert!(body.contains(&rt0));
    let rejected = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
    let err = s
        .handle_token_response(t(303), None, &status(401, rejected))
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Endpoint(EndpointError::RefreshTokenRejected)
    );
    assert!(!s.has_refresh_token());
    // R1's late 200 carries rt1, the only valid refresh token: it is taken.
    let (a1, rt1) = (mint("access", 271, 300), mint("refresh", 271, 86_400));
    let grant = s
        .handle_token_response(t(304), None, &ok(&login_answer(&a1, &rt1)))
        .unwrap();
    assert_eq!(grant, jwt_refresh::Grant::Refresh);
    assert_eq!(poll(&mut s, t(304)), Said::Persist(rt1.clone()));
    s.handle_persisted(true);
    assert_eq!(poll(&mut s, t(304)), bearer(&a1));
    // A success supersedes every older request: one more late answer is unexpected.
    let stale = mint("access", 271, 300);
    let late = s.handle_token_response(t(305), None, &ok(&format!(r#"{{"access":"{stale}"}}"#)));
    assert_eq!(late, Err(RefreshError::Unexpected));
    assert_eq!(poll(&mut s, t(305)), bearer(&a1));
}

#[test]
fn a_late_rejection_of_a_replaced_refresh_token_keeps_its_successor() {
    // R1 carries rt0 and times out; R2 carries rt0 too, and its answer (an access token the
    // session refuses) rotates rt0 into rt1, which is kept. R1's late rejection of rt0 is true
    // of rt0, not of rt1: rt1 stays, and is sent next.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (_, rt0) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let Said::Timeout(_) = poll(&mut s, t(301)) else {
        panic!()
    };
    let (body, at) = refresh_after_backoff(&mut s, t(301));
    assert!(body.contains(&rt0));
    let rt1 = mint("refresh", 301, 86_400);
    let refused = login_answer(&"x".repeat(2000), &rt1);
    assert!(matches!(
        s.handle_token_response(at, None, &ok(&refused)),
        Err(RefreshError::Refused(_))
    ));
    assert_eq!(poll(&mut s, at), Said::Persist(rt1.clone()));
    s.handle_persisted(true);
    let rejected = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
    assert_eq!(
        s.handle_token_response(at, None, &status(401, rejected)),
        Err(RefreshError::Superseded)
    );
    assert!(s.has_refresh_token());
    let (body, _) = refresh_after_backoff(&mut s, at);
    assert_eq!(body, format!(r#"{{"refresh":"{rt1}"}}"#));
}

#[test]
fn a_rejection_of_a_refresh_token_that_expired_in_flight_is_the_servers_verdict() {
    // 0 s: login, a 5-minute access token and a refresh token living 280 s. 271 s: the refresh
    // goes out carrying it, and hangs. 280 s: the refresh token is past its own exp, so the
    // session drops it. 285 s: the server's rejection of it arrives. Nothing replaced the token:
    // the rejection is RefreshTokenRejected (not Superseded, a transient failure) and the
    // session logs in at once, with no backoff, while the access token still lasts.
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let (access, rt0) = (mint("access", 0, 300), mint("refresh", 0, 280));
    s.handle_token_response(t(0), None, &ok(&login_answer(&access, &rt0)))
        .unwrap();
    assert_eq!(poll(&mut s, t(0)), Said::Persist(rt0.clone()));
    s.handle_persisted(true);
    let Said::Refresh(body) = poll(&mut s, t(271)) else {
        panic!("no refresh at 271 s")
    };
    assert!(body.contains(&rt0));
    assert_eq!(poll(&mut s, t(280)), bearer(&access));
    assert!(!s.has_refresh_token());
    let expired = r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;
    assert_eq!(
        s.handle_token_response(t(285), None, &status(401, expired)),
        Err(RefreshError::Endpoint(EndpointError::RefreshTokenRejected))
    );
    assert!(matches!(poll(&mut s, t(285)), Said::Login(_)));
}

#[test]
fn a_kept_refresh_token_is_not_moved_back_twice_by_a_clock_that_went_back() {
    // 0 s: login, a 5-minute access token and a refresh token living 600 s (dead at 599 s with
    // its floored iat). 271 s: refresh R1 carrying it, no answer; abandoned at 301 s. Then the
    // clock goes back 301 s, to 0: R1's send instant cannot go below 0, so 30 s are owed to the
    // next answer's deadlines. The refresh token's expiry moved back with the clock, to 298 s.
    // R2's answer brings an access token only: the 30 s come off its lease, not again off the
    // refresh token, which lives until reading 298 s (it was dropped at 268 s: a login at 280 s).
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let (access, rt0) = (mint("access", 0, 300), mint("refresh", 0, 600));
    s.handle_token_response(t(0), None, &ok(&login_answer(&access, &rt0)))
        .unwrap();
    assert_eq!(poll(&mut s, t(0)), Said::Persist(rt0.clone()));
    s.handle_persisted(true);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    assert!(!matches!(poll(&mut s, t(301)), Said::Refresh(_)));
    let (body, at) = refresh_after_backoff(&mut s, t(0));
    assert!(body.contains(&rt0));
    let a2 = mint("access", 301, 300);
    s.handle_token_response(at, None, &ok(&format!(r#"{{"access":"{a2}"}}"#)))
        .unwrap();
    // 280 s: R2's access token is due (anchored at R1's send), and the refresh carries rt0.
    match poll(&mut s, t(280)) {
        Said::Refresh(body) => assert!(body.contains(&rt0)),
        other => panic!("at 280 s, with the refresh token alive until 298 s: {other:?}"),
    }
}

#[test]
fn a_late_login_rejection_keeps_the_refresh_token_a_newer_answer_left() {
    // L1 gets no answer within 30 s; L2 goes out after the backoff. L2's answer carries an
    // access token the session refuses and a refresh token rt1, which is kept. Then L1's late
    // 401 arrives: it speaks of L1's credentials, and rt1 still decides. No LoginRequired.
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let Said::Timeout(mut now) = poll(&mut s, t(30)) else {
        panic!()
    };
    let at = loop {
        match poll(&mut s, now) {
            Said::Login(_) => break now,
            Said::Timeout(next) => now = next,
            other => panic!("waiting for the second login at {now}: {other:?}"),
        }
    };
    let rt1 = mint("refresh", 31, 86_400);
    assert!(matches!(
        s.handle_token_response(at, None, &ok(&login_answer(&"x".repeat(2000), &rt1))),
        Err(RefreshError::Refused(_))
    ));
    assert_eq!(poll(&mut s, at), Said::Persist(rt1.clone()));
    s.handle_persisted(true);
    let bad = r#"{"detail":"No active account found with the given credentials"}"#;
    assert_eq!(
        s.handle_token_response(at, None, &status(401, bad)),
        Err(RefreshError::Superseded)
    );
    assert!(s.has_refresh_token());
    let (body, _) = refresh_after_backoff(&mut s, at);
    assert_eq!(body, format!(r#"{{"refresh":"{rt1}"}}"#));
}

#[test]
fn an_answer_while_a_newer_request_is_in_flight_is_anchored_at_the_older_send() {
    // R1 goes out at 271 s and times out; R2 goes out later. The answer that comes now may be
    // R1's (issued soon after 271 s): its token is scheduled from 271 s, never from R2's send.
    let mut s = S::new(simplejwt_login(), no_jitter());
    logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let Said::Timeout(_) = poll(&mut s, t(301)) else {
        panic!()
    };
    let (_, at) = refresh_after_backoff(&mut s, t(301));
    assert!(at > t(301));
    let a1 = mint("access", 271, 300);
    s.handle_token_response(at, None, &ok(&format!(r#"{{"access":"{a1}"}}"#)))
        .unwrap();
    // 300 s less the floored second, from 271 s.
    assert_eq!(s.lease().unwrap().expires_at, t(570));
}

#[test]
fn a_refused_answer_keeps_its_rotated_refresh_token() {
    // The server rotated: rt0 died when it answered. An access token the session cannot use
    // (too long for its buffer; a lifetime of one whole second) must not cost the new rt1.
    let too_long = "x".repeat(2000);
    let one_second = mint("access", 271, 1);
    for (access, want) in [
        (
            too_long.as_str(),
            TokenError::TooLong {
                token: TokenKind::Access,
                capacity: 1529,
            },
        ),
        (
            one_second.as_str(),
            TokenError::Unschedulable(LeaseError::NonPositiveLifetime),
        ),
    ] {
        let mut s = S::new(simplejwt_login(), no_jitter());
        let (a0, rt0) = logged_in(&mut s, 0, 300);
        let (body, at) = refresh_after_backoff(&mut s, t(271));
        assert!(body.contains(&rt0));
        let rt1 = mint("refresh", 271, 86_400);
        let err = s
            .handle_token_response(at, None, &ok(&login_answer(access, &rt1)))
            .unwrap_err();
        assert_eq!(err, RefreshError::Refused(want));
        // rt1 is saved before anything else, the old access token is still used while valid,
        // and the next refresh sends rt1.
        assert_eq!(poll(&mut s, at), Said::Persist(rt1.clone()));
        s.handle_persisted(true);
        assert_eq!(poll(&mut s, at), bearer(&a0));
        let (body, _) = refresh_after_backoff(&mut s, at);
        assert_eq!(body, format!(r#"{{"refresh":"{rt1}"}}"#));
    }
}

#[test]
fn one_forged_answer_does_not_stop_the_device_for_good() {
    // What a captive portal or a misconfigured proxy sends to a refresh: each is a
    // configuration-class answer, reported, then retried after a long backoff.
    for (code, body) in [
        (404, "<html><body>Not Found</body></html>"),
        (301, ""),
        (400, r#"{"refresh":["This field is required."]}"#),
        (
            401,
            r#"{"detail":"Authentication credentials were not provided."}"#,
        ),
    ] {
        let mut s = S::new(simplejwt_login(), no_jitter());
        let (a0, rt0) = logged_in(&mut s, 0, 300);
        assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
        let err = s
            .handle_token_response(t(271), None, &status(code, body))
            .unwrap_err();
        assert_eq!(
            err,
            RefreshError::Endpoint(EndpointError::Configuration {
                status: code,
                code: None
            })
        );
        // The valid token is still used; once it has expired, the failure is reported.
        assert_eq!(poll(&mut s, t(280)), bearer(&a0));
        let reported = Said::Failed(SessionError::Configuration(EndpointError::Configuration {
            status: code,
            code: None,
        }));
        assert_eq!(poll(&mut s, t(300)), reported);
        // The session asks to be polled again within backoff_max (5 min, at least half of it),
        // and then refreshes with the same refresh token, without reset().
        let until = s.poll_timeout().unwrap();
        let wait = until.as_millis() - 271_000;
        assert!((150_000..=300_000).contains(&wait), "{code}: {wait} ms");
        assert_eq!(
            poll(&mut s, Instant::from_millis(until.as_millis() - 1)),
            reported
        );
        assert_eq!(
            poll(&mut s, until),
            Said::Refresh(format!(r#"{{"refresh":"{rt0}"}}"#)),
            "{code}"
        );
        let a1 = mint("access", 600, 300);
        s.handle_token_response(until, None, &ok(&format!(r#"{{"access":"{a1}"}}"#)))
            .unwrap();
        assert_eq!(poll(&mut s, until), bearer(&a1));
    }
}

#[test]
fn answer_with_nothing_in_flight_is_ignored() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    let other = mint("access", 5, 300);
    let err = s
        .handle_token_response(t(5), None, &ok(&format!(r#"{{"access":"{other}"}}"#)))
        .unwrap_err();
    assert_eq!(err, RefreshError::Unexpected);
    assert_eq!(poll(&mut s, t(6)), bearer(&access));
    assert_eq!(s.handle_no_answer(t(6)), Err(RefreshError::Unexpected));
}

#[test]
fn one_401_means_one_refresh_and_one_retry() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    let id = send_id(&mut s, t(10), &access);
    assert_eq!(s.handle_api_status(t(10), id, 200), ApiVerdict::Done);
    // Later the API rejects the (accepted before) token: refresh, then retry once.
    let id = send_id(&mut s, t(20), &access);
    assert_eq!(s.handle_api_status(t(20), id, 401), ApiVerdict::Retry);
    assert!(matches!(poll(&mut s, t(20)), Said::Refresh(_)));
    let access2 = mint("access", 20, 300);
    s.handle_token_response(t(20), None, &ok(&format!(r#"{{"access":"{access2}"}}"#)))
        .unwrap();
    let id2 = send_id(&mut s, t(20), &access2);
    // A 401 on the fresh token: give up on this request, no second refresh.
    assert_eq!(
        s.handle_api_status(t(20), id2, 401),
        ApiVerdict::Unauthorized
    );
    assert_eq!(poll(&mut s, t(21)), bearer(&access2));
    assert_eq!(s.stats().refreshes, 1);
}

#[test]
fn a_401_on_a_token_fresh_from_login_is_unauthorized() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    let id = send_id(&mut s, t(1), &access);
    assert_eq!(s.handle_api_status(t(1), id, 401), ApiVerdict::Unauthorized);
    assert_eq!(poll(&mut s, t(2)), bearer(&access));
}

#[test]
fn a_late_401_for_a_replaced_token_does_not_reject_its_successor() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    let old = send_id(&mut s, t(260), &access);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let access2 = mint("access", 271, 300);
    s.handle_token_response(t(271), None, &ok(&format!(r#"{{"access":"{access2}"}}"#)))
        .unwrap();
    assert_eq!(s.handle_api_status(t(272), old, 401), ApiVerdict::Retry);
    assert_eq!(poll(&mut s, t(272)), bearer(&access2));
}

#[test]
fn rejected_refresh_token_leads_to_login() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let blacklisted = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
    let err = s
        .handle_token_response(t(271), None, &status(401, blacklisted))
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Endpoint(EndpointError::RefreshTokenRejected)
    );
    assert!(!s.has_refresh_token());
    // Credentials are configured: log in at once, without a backoff.
    assert!(matches!(poll(&mut s, t(271)), Said::Login(_)));
}

#[test]
fn a_duplicated_error_code_keeps_the_refresh_token_in_either_order() {
    // A 401 that names `code` twice proves nothing about the refresh token, whichever copy says
    // `token_not_valid`: the last copy used to win, so one order dropped the token and logged
    // in while the other kept it. Now neither copy is read, escaped names included.
    for body in [
        r#"{"code":"x","code":"token_not_valid"}"#,
        r#"{"code":"token_not_valid","code":"x"}"#,
        r#"{"detail":"d","code":"x","c\u006fde":"token_not_valid"}"#,
    ] {
        let mut s = S::new(simplejwt_login(), no_jitter());
        let (access, refresh) = logged_in(&mut s, 0, 300);
        assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
        let err = s
            .handle_token_response(t(271), None, &status(401, body))
            .unwrap_err();
        assert_eq!(
            err,
            RefreshError::Endpoint(EndpointError::Configuration {
                status: 401,
                code: None
            }),
            "{body}"
        );
        assert!(s.has_refresh_token(), "{body}");
        // The access token is still sent while it lasts, and after the application's reset
        // the same refresh token is offered again: no login.
        assert_eq!(poll(&mut s, t(272)), bearer(&access), "{body}");
        s.reset();
        assert_eq!(
            poll(&mut s, t(273)),
            Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#)),
            "{body}"
        );
        assert_eq!(s.stats().logins, 1, "{body}");
    }
}

#[test]
fn rejected_refresh_token_without_credentials_needs_the_application() {
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    let access = mint("access", 0, 300);
    let refresh = mint("refresh", 0, 86_400);
    s.set_tokens(t(0), t(0), &access, Some(&refresh), TokenFacts::default())
        .unwrap();
    // Provisioned tokens are not handed back for persisting.
    assert_eq!(poll(&mut s, t(1)), bearer(&access));
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let expired = r#"{"detail":"Token is expired","code":"token_not_valid"}"#;
    s.handle_token_response(t(271), None, &status(401, expired))
        .unwrap_err();
    // The access token is still valid: keep using it, then ask for a login.
    assert_eq!(poll(&mut s, t(280)), bearer(&access));
    assert_eq!(
        poll(&mut s, t(299)),
        Said::LoginRequired(LoginReason::RefreshTokenRejected)
    );
}

#[test]
fn wrong_credentials_need_new_ones() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let bad = r#"{"detail":"No active account found with the given credentials"}"#;
    let err = s
        .handle_token_response(t(0), None, &status(401, bad))
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Endpoint(EndpointError::CredentialsRejected)
    );
    assert_eq!(
        poll(&mut s, t(1)),
        Said::LoginRequired(LoginReason::CredentialsRejected)
    );
    assert_eq!(
        poll(&mut s, t(100)),
        Said::LoginRequired(LoginReason::CredentialsRejected)
    );
    s.reset();
    assert!(matches!(poll(&mut s, t(101)), Said::Login(_)));
}

#[test]
fn expired_refresh_jwt_goes_straight_to_login() {
    // A stored refresh token already past its exp by the trusted wall clock is refused...
    let mut s = S::new(simplejwt_login(), no_jitter());
    let stale = mint("refresh", 0, 100);
    let wall = UnixTime::from_secs(EPOCH + 200);
    assert_eq!(
        s.set_refresh_token(t(0), &stale, wall),
        Err(TokenError::Unschedulable(LeaseError::Expired))
    );
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));

    // ...and one whose own lifetime has run out is dropped without a network call.
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let access = mint("access", 0, 300);
    let refresh = mint("refresh", 0, 600);
    s.handle_token_response(t(0), None, &ok(&login_answer(&access, &refresh)))
        .unwrap();
    let _ = poll(&mut s, t(0));
    s.handle_persisted(true);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let access2 = mint("access", 271, 300);
    s.handle_token_response(t(271), None, &ok(&format!(r#"{{"access":"{access2}"}}"#)))
        .unwrap();
    // The refresh token dies at 599 s; the access token is due at ~540 s: log in instead.
    assert!(matches!(poll(&mut s, t(541)), Said::Refresh(_)));
    s.handle_no_answer(t(541)).unwrap();
    assert!(matches!(poll(&mut s, t(600)), Said::Login(_)));
}

#[test]
fn token_without_expiry_is_used_until_the_api_rejects_it() {
    // OAuth 2.0 with an opaque access token and no expires_in: reactive only, no refresh loop.
    let mut s = S::new(
        Protocol::OAuth2(OAuth2::default()),
        RefreshPolicy::default(),
    );
    s.set_refresh_token(t(0), "opaque-refresh", None).unwrap();
    assert!(matches!(poll(&mut s, t(0)), Said::Refresh(_)));
    s.handle_token_response(
        t(0),
        None,
        &ok(r#"{"access_token":"opaque-1","token_type":"Bearer"}"#),
    )
    .unwrap();
    for second in [1, 1000, 100_000, 10_000_000] {
        assert_eq!(poll(&mut s, t(second)), bearer("opaque-1"));
    }
    assert_eq!(s.poll_timeout(), None);
    let id = send_id(&mut s, t(10_000_001), "opaque-1");
    assert_eq!(
        s.handle_api_status(t(10_000_001), id, 200),
        ApiVerdict::Done
    );
    let id = send_id(&mut s, t(10_000_002), "opaque-1");
    assert_eq!(
        s.handle_api_status(t(10_000_002), id, 401),
        ApiVerdict::Retry
    );
    assert!(matches!(poll(&mut s, t(10_000_002)), Said::Refresh(_)));
}

#[test]
fn not_before_in_the_future_waits() {
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    let access = mint_nbf("access", 0, 300, Some(10));
    s.set_tokens(t(0), t(0), &access, Some("r"), TokenFacts::default())
        .unwrap();
    assert_eq!(poll(&mut s, t(3)), Said::Timeout(t(10)));
    assert_eq!(poll(&mut s, t(10)), bearer(&access));
}

#[test]
fn not_before_is_counted_from_the_answers_arrival() {
    // at 0 s the login is sent; the server issues the token at 2 s with `nbf` 10 s after its
    // `iat`; the answer arrives at 3 s. The server accepts it from 12 s on. Counted from the
    // send, the session would use it at 10 s, before its `nbf`; counted from the arrival it
    // waits until 13 s. The expiry stays anchored at the send: 0 + 300 - 1 s.
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let access = mint_nbf("access", 2, 300, Some(12));
    let refresh = mint("refresh", 2, 86_400);
    s.handle_token_response(t(3), None, &ok(&login_answer(&access, &refresh)))
        .unwrap();
    assert_eq!(poll(&mut s, t(3)), Said::Persist(refresh));
    s.handle_persisted(true);
    assert_eq!(poll(&mut s, t(10)), Said::Timeout(t(13)));
    assert_eq!(poll(&mut s, ms(12_999)), Said::Timeout(t(13)));
    assert_eq!(poll(&mut s, t(13)), bearer(&access));
    let lease = s.lease().unwrap();
    assert_eq!(
        (lease.fetched_at, lease.usable_at, lease.expires_at),
        (t(0), t(13), t(299))
    );
    // With a trusted wall clock and no `iat`, `nbf - wall` is the wait from the arrival too.
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let access = {
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        use base64::Engine as _;
        let payload = format!(r#"{{"exp":{},"nbf":{}}}"#, EPOCH + 300, EPOCH + 12);
        format!("e30.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
    };
    s.handle_token_response(
        t(3),
        UnixTime::from_secs(EPOCH + 5),
        &ok(&format!(r#"{{"access":"{access}"}}"#)),
    )
    .unwrap();
    // Arrived at 3 s when the wall clock said 5 s: `nbf` is 7 s later, at 10 s.
    assert_eq!(poll(&mut s, ms(9_999)), Said::Timeout(t(10)));
    assert_eq!(poll(&mut s, t(10)), bearer(&access));
}

#[test]
fn a_replayed_stale_answer_is_capped_by_the_trusted_wall_clock() {
    // at 0 s login, 5-minute tokens; at 271 s the refresh goes out and a caching proxy answers
    // with the login's answer again: the token issued at 0 s, which dies at 300 s. Counted from
    // the new request, `exp - iat` would keep it until 570 s. The trusted wall clock (271 s)
    // caps the lease at `exp - wall` less the floored second: 271 + 28 = 299 s.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    s.handle_token_response(
        t(271),
        UnixTime::from_secs(EPOCH + 271),
        &ok(&format!(r#"{{"access":"{access}"}}"#)),
    )
    .unwrap();
    let lease = s.lease().unwrap();
    assert_eq!(lease.expires_at, t(299));
    assert_eq!(lease.source, jwt_refresh::policy::LifetimeSource::WallClock);
    assert_eq!(poll(&mut s, ms(290_000)), bearer(&access));
    // Never sent at or after its `exp`: the session refreshes instead.
    assert_eq!(
        poll(&mut s, t(299)),
        Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#))
    );
    assert!(s.has_refresh_token());
}

#[test]
fn a_replayed_answer_already_expired_by_the_wall_clock_is_refused() {
    // The proxy replays an older answer still: its token died at 200 s by its own `exp`, and
    // the wall clock says 271 s. That is a typed error, the current token (valid until 299 s)
    // is kept and sent, and the refresh token too.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let stale = mint("access", 0, 200);
    // It carries its own (older, long retired) refresh token: not kept either.
    let old_refresh = mint("refresh", 0, 86_400);
    let err = s
        .handle_token_response(
            t(271),
            UnixTime::from_secs(EPOCH + 271),
            &ok(&login_answer(&stale, &old_refresh)),
        )
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Refused(TokenError::Unschedulable(LeaseError::Expired))
    );
    assert_eq!(err.class(), FailureClass::RetryLater);
    assert_eq!(poll(&mut s, t(272)), bearer(&access));
    let (body, _) = refresh_after_backoff(&mut s, t(272));
    assert_eq!(body, format!(r#"{{"refresh":"{refresh}"}}"#));
    // The same answer with `expires_in` (OAuth-style): `exp` by the wall clock still decides.
    let mut s = S::new(Protocol::OAuth2(OAuth2::default()), no_jitter());
    s.set_refresh_token(t(0), "opaque-refresh", None).unwrap();
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let body = format!(r#"{{"access_token":"{stale}","token_type":"Bearer","expires_in":300}}"#);
    assert_eq!(
        s.handle_token_response(t(271), UnixTime::from_secs(EPOCH + 271), &ok(&body)),
        Err(RefreshError::Refused(TokenError::Unschedulable(
            LeaseError::Expired
        )))
    );
    // `expires_in` longer than what the wall clock leaves: capped to `exp - wall`.
    let fresh = mint("access", 260, 60);
    let body = format!(r#"{{"access_token":"{fresh}","token_type":"Bearer","expires_in":3600}}"#);
    s.reset();
    assert!(matches!(poll(&mut s, t(272)), Said::Refresh(_)));
    s.handle_token_response(t(272), UnixTime::from_secs(EPOCH + 272), &ok(&body))
        .unwrap();
    // 320 - 272 = 48 s, one off: 272 + 47.
    assert_eq!(s.lease().unwrap().expires_at, t(319));
}

#[test]
fn hostile_answers_keep_the_tokens() {
    let long = "a".repeat(2000);
    let bodies: Vec<(u16, String)> = vec![
        (200, String::new()),
        (200, r#"{"access":"x.y.z""#.into()),
        (200, "<html><body>proxy</body></html>".into()),
        (200, r#"{"refresh":"only"}"#.into()),
        (200, format!(r#"{{"access":"{long}"}}"#)),
        (200, r#"{"access":"a\r\nX-Injected: 1"}"#.into()),
        (200, r#"{"access":""}"#.into()),
        (200, r#"{"access":"a b"}"#.into()),
        (200, r#"{"access":"ok","refresh":"\u0000"}"#.into()),
        (200, r#"{"access":"ok","access":"twice"}"#.into()),
        (200, "\u{0}\u{1}\u{2}".into()),
        (200, format!(r#"{{"x":{}}}"#, "[".repeat(1000))),
        (500, "boom".into()),
        (401, "<html>not the auth server</html>".into()),
        (302, String::new()),
    ];
    for (code, body) in &bodies {
        let mut s = S::new(simplejwt_login(), no_jitter());
        let (access, refresh) = logged_in(&mut s, 0, 300);
        assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
        let err = s
            .handle_token_response(t(271), None, &status(*code, body))
            .unwrap_err();
        assert_ne!(err.class(), FailureClass::LoginAgain, "{code} {body:.60}");
        // The old access token is still sent while valid, the refresh token still offered.
        assert_eq!(
            poll(&mut s, ms(271_500)),
            bearer(&access),
            "{code} {body:.60}"
        );
        assert!(s.has_refresh_token());
        s.reset();
        assert_eq!(
            poll(&mut s, t(290)),
            Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#)),
            "{code} {body:.60}"
        );
    }
}

#[test]
fn retry_after_is_honoured() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let answer = TokenResponse {
        status: 429,
        body: b"",
        retry_after: Some(Duration::from_secs(60)),
    };
    s.handle_token_response(t(271), None, &answer).unwrap_err();
    assert_eq!(poll(&mut s, t(298)), bearer(&access));
    assert_eq!(poll(&mut s, t(300)), Said::Timeout(t(331)));
    assert!(matches!(poll(&mut s, t(331)), Said::Refresh(_)));
}

/// The waits between the next `n` attempts of a session whose token endpoint never answers,
/// from `now` on, when no usable token is left (every poll waits for the backoff).
fn waits_without_answers(s: &mut S, mut now: Instant, n: usize) -> Vec<u64> {
    let mut waits = Vec::new();
    for _ in 0..n {
        assert!(
            matches!(poll(s, now), Said::Refresh(_) | Said::Login(_)),
            "{now}"
        );
        s.handle_no_answer(now).unwrap();
        let Said::Timeout(until) = poll(s, now) else {
            panic!()
        };
        waits.push(until.saturating_duration_since(now).as_millis());
        now = until;
    }
    waits
}

#[test]
fn backoff_after_expiry_is_about_one_refresh_interval() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    logged_in(&mut s, 0, 300);
    // The access token has expired: a first retry after `backoff_base`, then about one
    // refresh interval of the 299 s token (less its 29.9 s margin, give or take half of it)
    // between attempts: a failing fleet offers the endpoint about its steady load.
    let waits = waits_without_answers(&mut s, t(400), 12);
    assert_eq!(waits[0], 1000);
    for (i, w) in waits.iter().enumerate().skip(1) {
        assert!((254_150..=284_050).contains(w), "failure {}: {w} ms", i + 1);
    }
    assert!(waits[1..].windows(2).any(|w| w[0] != w[1]), "{waits:?}");
}

#[test]
fn backoff_grows_after_each_transient_failure_of_a_login() {
    // No token, so no lifetime to go by: exponential backoff from `backoff_base`, full jitter.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let waits = waits_without_answers(&mut s, t(0), 12);
    assert_eq!(waits[0], 1000);
    for (i, w) in waits.iter().enumerate() {
        let ceiling = (1000u64 << i).min(300_000);
        assert!(*w >= 1000 && *w <= ceiling, "failure {}: {w} ms", i + 1);
    }
    assert!(waits[8..].iter().any(|&w| w > 60_000), "{waits:?}");
}

#[test]
fn clock_going_backwards_never_extends_a_token() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, _) = logged_in(&mut s, 1000, 300);
    let before = s.lease().unwrap();
    assert_eq!(poll(&mut s, t(1200)), bearer(&access));
    // The clock jumps back by 1000 s: the token has the 99 s it had left, not 1099 s.
    assert_eq!(poll(&mut s, t(200)), bearer(&access));
    let after = s.lease().unwrap();
    assert_eq!(
        after.expires_at.saturating_duration_since(t(200)),
        before.expires_at.saturating_duration_since(t(1200))
    );
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
}

#[test]
fn logout_forgets_tokens() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    logged_in(&mut s, 0, 300);
    s.logout();
    assert!(!s.has_refresh_token());
    assert_eq!(
        poll(&mut s, t(1)),
        Said::LoginRequired(LoginReason::LoggedOut)
    );
    s.reset();
    assert!(matches!(poll(&mut s, t(2)), Said::Login(_)));
}

#[test]
fn provisioned_tokens_the_session_refuses_are_token_errors() {
    // No answer was involved: the session says what it refuses, as a `TokenError`.
    let mut s: Session<'static, 64, 64> = Session::new(simplejwt_login(), no_jitter());
    let facts = TokenFacts::default;
    assert_eq!(
        s.set_tokens(t(0), t(0), "has space", None, facts()),
        Err(TokenError::Invalid {
            token: TokenKind::Access
        })
    );
    assert_eq!(
        s.set_tokens(t(0), t(0), &"a".repeat(58), None, facts()),
        Err(TokenError::TooLong {
            token: TokenKind::Access,
            capacity: 57
        })
    );
    assert_eq!(
        s.set_tokens(t(0), t(0), "a", Some(""), facts()),
        Err(TokenError::Invalid {
            token: TokenKind::Refresh
        })
    );
    assert_eq!(
        s.set_refresh_token(t(0), &"r".repeat(65), None),
        Err(TokenError::TooLong {
            token: TokenKind::Refresh,
            capacity: 64
        })
    );
    // Nothing was taken: the session logs in as if never provisioned.
    assert!(!s.has_refresh_token());
    assert!(s.lease().is_none());
    let mut buf = [0u8; 256];
    assert!(matches!(s.poll(t(0), &mut buf), Output::Login(_)));

    let mut s = S::new(simplejwt_login(), no_jitter());
    let dead = mint("access", 0, 0);
    assert_eq!(
        s.set_tokens(t(0), t(0), &dead, None, facts()),
        Err(TokenError::Unschedulable(LeaseError::NonPositiveLifetime))
    );
    assert!(s.lease().is_none());
}

#[test]
fn no_tokens_and_no_credentials() {
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    assert_eq!(
        poll(&mut s, t(0)),
        Said::LoginRequired(LoginReason::NoCredentials)
    );
}

#[test]
fn request_buffer_too_small_is_a_typed_failure() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let mut small = [0u8; 8];
    match s.poll(t(0), &mut small) {
        Output::Failed(SessionError::BufferTooSmall(e)) => {
            assert_eq!(
                e.needed,
                r#"{"username":"device","password":"hunter2"}"#.len()
            )
        }
        other => panic!("{other:?}"),
    }
    s.reset();
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
}

#[test]
fn access_token_too_long_for_its_buffer() {
    let mut s: Session<'static, 64, 64> = Session::new(simplejwt_login(), no_jitter());
    let mut buf = [0u8; 256];
    assert!(matches!(s.poll(t(0), &mut buf), Output::Login(_)));
    let access = mint("access", 0, 300);
    let refresh = "r".repeat(10);
    let err = s
        .handle_token_response(t(0), None, &ok(&login_answer(&access, &refresh)))
        .unwrap_err();
    assert!(matches!(
        err,
        RefreshError::Refused(TokenError::TooLong { capacity: 57, .. })
    ));
}

#[test]
fn oauth2_refresh_with_rotation_and_expires_in() {
    let protocol = Protocol::OAuth2(OAuth2 {
        client_id: Some("device-7"),
        client_auth: ClientAuth::Body,
        ..OAuth2::default()
    });
    let mut s = S::new(protocol, no_jitter());
    s.set_refresh_token(t(0), "tGzv3JOkF0XG5Qx2TlKWIA", None)
        .unwrap();
    assert_eq!(
        poll(&mut s, t(0)),
        Said::Refresh(
            "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA&client_id=device-7"
                .into()
        )
    );
    let body = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"Bearer","expires_in":3600,"refresh_token":"n3wR3fr35h","scope":"x"}"#;
    s.handle_token_response(t(0), None, &ok(body)).unwrap();
    // The rotated refresh token is persisted before the new access token is used.
    assert_eq!(poll(&mut s, t(0)), Said::Persist("n3wR3fr35h".into()));
    s.handle_persisted(false);
    assert_eq!(poll(&mut s, t(1)), bearer("2YotnFZFEjr1zCsicMWpAA"));
    // expires_in 3600 -> 3599 s; margin capped at 5 minutes.
    assert_eq!(poll(&mut s, t(3298)), bearer("2YotnFZFEjr1zCsicMWpAA"));
    assert!(
        matches!(poll(&mut s, t(3299)), Said::Refresh(b) if b.contains("refresh_token=n3wR3fr35h"))
    );
}

#[test]
fn oauth2_client_credentials_logs_in_again_at_expiry() {
    let protocol = Protocol::OAuth2(OAuth2 {
        client_id: Some("dev"),
        client_secret: Some("s3cret"),
        client_auth: ClientAuth::Basic,
        login: OAuth2Login::ClientCredentials,
        ..OAuth2::default()
    });
    let mut s = S::new(protocol, no_jitter());
    let mut buf = [0u8; 512];
    match s.poll(t(0), &mut buf) {
        Output::Login(r) => {
            assert_eq!(r.body, b"grant_type=client_credentials");
            assert_eq!(r.authorization, Some("Basic ZGV2OnMzY3JldA=="));
        }
        other => panic!("{other:?}"),
    }
    let access = mint("access", 0, 600);
    let body = format!(r#"{{"access_token":"{access}","token_type":"bearer","expires_in":600}}"#);
    s.handle_token_response(t(0), None, &ok(&body)).unwrap();
    assert_eq!(poll(&mut s, t(1)), bearer(&access));
    // No refresh token was issued (RFC 6749 section 4.4.3): at refresh time, log in again.
    assert!(matches!(poll(&mut s, t(540)), Said::Login(_)));
}

#[test]
fn oauth2_invalid_grant_and_configuration_errors() {
    let mut s = S::new(Protocol::OAuth2(OAuth2::default()), no_jitter());
    s.set_refresh_token(t(0), "r", None).unwrap();
    assert!(matches!(poll(&mut s, t(0)), Said::Refresh(_)));
    let err = s
        .handle_token_response(t(0), None, &status(400, r#"{"error":"invalid_grant"}"#))
        .unwrap_err();
    assert_eq!(err.class(), FailureClass::LoginAgain);
    assert_eq!(
        poll(&mut s, t(1)),
        Said::LoginRequired(LoginReason::RefreshTokenRejected)
    );

    let mut s = S::new(Protocol::OAuth2(OAuth2::default()), no_jitter());
    let access = mint("access", 0, 300);
    s.set_tokens(t(0), t(0), &access, Some("r"), TokenFacts::default())
        .unwrap();
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    let err = s
        .handle_token_response(t(271), None, &status(401, r#"{"error":"invalid_client"}"#))
        .unwrap_err();
    let RefreshError::Endpoint(err) = err else {
        panic!("{err:?}")
    };
    assert_eq!(
        err,
        EndpointError::Configuration {
            status: 401,
            code: Some(OAuthErrorCode::InvalidClient)
        }
    );
    // Fatal, but the valid token is still used; after expiry the failure is reported.
    assert_eq!(poll(&mut s, t(280)), bearer(&access));
    assert_eq!(
        poll(&mut s, t(299)),
        Said::Failed(SessionError::Configuration(err))
    );
    assert!(s.has_refresh_token());
}

#[test]
fn iat_far_ahead_of_the_wall_clock_is_flagged() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let access = mint("access", 0, 300);
    let refresh = mint("refresh", 0, 86_400);
    let wall = UnixTime::from_secs(EPOCH - 3600); // device clock an hour behind
    s.handle_token_response(t(0), wall, &ok(&login_answer(&access, &refresh)))
        .unwrap();
    let lease = s.lease().unwrap();
    assert_eq!(
        lease.warning,
        Some(jwt_refresh::policy::LeaseWarning::IssuedInFuture)
    );
    assert_eq!(lease.expires_at, t(299));
}

#[test]
fn jitter_spreads_refreshes_by_seed() {
    let mut instants = std::collections::BTreeSet::new();
    for seed in 0..50 {
        let policy = RefreshPolicy {
            seed,
            ..RefreshPolicy::default()
        };
        let mut s = S::new(simplejwt_login(), policy);
        logged_in(&mut s, 0, 300);
        let at = s.lease().unwrap().refresh_at;
        // The first lease's window: from a tenth of the 299 s lifetime to its margin.
        assert!(at >= ms(29_900) && at <= ms(269_100), "{at}");
        instants.insert(at);
    }
    assert!(instants.len() >= 45, "{}", instants.len());
}

#[test]
fn the_lease_after_a_transient_failure_keeps_the_routine_jitter() {
    // The backoff has spread a failing fleet already: the token a retry brings gets the routine
    // window (refreshed from 239.2 s of its 299 s on), not the wide first-lease one; a login
    // after a rejected refresh token gets the wide one again.
    let mut routine = std::collections::BTreeSet::new();
    let mut relogin_early = 0;
    for seed in 0..50 {
        let policy = RefreshPolicy {
            seed,
            ..RefreshPolicy::default()
        };
        let mut s = S::new(simplejwt_login(), policy);
        logged_in(&mut s, 0, 300);
        // The token has expired: the refresh meets a 503, the retry 1 s later succeeds.
        assert!(matches!(poll(&mut s, t(400)), Said::Refresh(_)));
        s.handle_token_response(t(400), None, &status(503, "busy"))
            .unwrap_err();
        assert_eq!(poll(&mut s, t(400)), Said::Timeout(t(401)));
        assert!(matches!(poll(&mut s, t(401)), Said::Refresh(_)));
        let access = mint("access", 401, 300);
        s.handle_token_response(t(401), None, &ok(&format!(r#"{{"access":"{access}"}}"#)))
            .unwrap();
        let at = s.lease().unwrap().refresh_at;
        assert!(
            at >= ms(401_000 + 239_200) && at <= ms(401_000 + 269_100),
            "{at}"
        );
        routine.insert(at);
        // The refresh token is rejected: the login's token gets the wide window.
        assert!(matches!(poll(&mut s, t(700)), Said::Refresh(_)));
        let rejected = r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;
        s.handle_token_response(t(700), None, &status(401, rejected))
            .unwrap_err();
        logged_in(&mut s, 700, 300);
        let at = s.lease().unwrap().refresh_at;
        assert!(
            at >= ms(700_000 + 29_900) && at <= ms(700_000 + 269_100),
            "{at}"
        );
        relogin_early += usize::from(at < ms(700_000 + 239_200));
    }
    assert!(routine.len() >= 45, "{}", routine.len());
    assert!(relogin_early >= 30, "{relogin_early}");
}

#[test]
fn debug_output_has_no_secrets() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    let mut buf = [0u8; 4096];
    let shown = format!("{s:?}");
    assert!(!shown.contains(&access) && !shown.contains(&refresh) && !shown.contains("hunter2"));
    let out = s.poll(t(271), &mut buf);
    let shown = format!("{out:?}");
    assert!(!shown.contains(&refresh), "{shown}");
    let proto = format!("{:?}", simplejwt_login());
    assert!(!proto.contains("hunter2"), "{proto}");
}

#[test]
fn deadlines_are_anchored_at_the_send_time() {
    // The login is sent at 0 s and answered at 5 s: the token's 299 s run from 0 s, not 5 s
    // (the server issued it at some point in between; the earliest is the safe assumption).
    let mut s = S::new(simplejwt_login(), no_jitter());
    assert!(matches!(poll(&mut s, t(0)), Said::Login(_)));
    let access = mint("access", 0, 300);
    let refresh = mint("refresh", 0, 86_400);
    s.handle_token_response(t(5), None, &ok(&login_answer(&access, &refresh)))
        .unwrap();
    let lease = s.lease().unwrap();
    assert_eq!((lease.fetched_at, lease.expires_at), (t(0), t(299)));
}

#[test]
fn an_unschedulable_token_keeps_the_old_ones() {
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (access, refresh) = logged_in(&mut s, 0, 300);
    assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
    // exp == iat: a zero lifetime. nbf after exp: never usable.
    let dead = mint("access", 271, 0);
    let err = s
        .handle_token_response(t(271), None, &ok(&format!(r#"{{"access":"{dead}"}}"#)))
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Refused(TokenError::Unschedulable(LeaseError::NonPositiveLifetime))
    );
    assert_eq!(poll(&mut s, ms(271_500)), bearer(&access));
    s.reset();
    assert!(matches!(poll(&mut s, t(272)), Said::Refresh(_)));
    let never = mint_nbf("access", 272, 300, Some(272 + 400));
    let err = s
        .handle_token_response(t(272), None, &ok(&format!(r#"{{"access":"{never}"}}"#)))
        .unwrap_err();
    assert_eq!(
        err,
        RefreshError::Refused(TokenError::Unschedulable(LeaseError::NeverUsable))
    );
    assert_eq!(poll(&mut s, ms(272_500)), bearer(&access));
    assert!(s.has_refresh_token());
    let _ = refresh;
}

#[test]
fn provisioned_tokens_trust_the_wall_clock_over_their_age() {
    // Issued 200 s before the device got it: with a trusted wall clock only 100 s remain.
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    let access = mint("access", 0, 300);
    let facts = TokenFacts {
        wall_now: UnixTime::from_secs(EPOCH + 200),
        ..TokenFacts::default()
    };
    s.set_tokens(t(1000), t(1000), &access, Some("r"), facts)
        .unwrap();
    assert_eq!(s.lease().unwrap().expires_at, t(1099));
    // Without one, the first 401 is not final: the token was not fresh from the endpoint.
    let mut s = S::new(Protocol::SimpleJwt(SimpleJwt::default()), no_jitter());
    s.set_tokens(t(1000), t(1000), &access, Some("r"), TokenFacts::default())
        .unwrap();
    let id = send_id(&mut s, t(1001), &access);
    assert_eq!(s.handle_api_status(t(1001), id, 401), ApiVerdict::Retry);
    assert!(matches!(poll(&mut s, t(1001)), Said::Refresh(_)));
}

// ---------------------------------------------------------------------------------------------
// serde-json-core's limits (README): a payload the library cannot read carries no claims, and
// `expires_in` or the API's 401 decides. None of them sends a token the crate knows to be
// expired, loses a refresh token, or panics (allocations: tests/no_alloc_session.rs).
// ---------------------------------------------------------------------------------------------

/// A token issued at session second `at` whose payload is `extra` claims plus `exp` written as
/// `exp_text` (for example `1700000300.5`), so that the JSON is exactly as a server wrote it.
fn mint_raw(at: u64, exp_text: &str, extra: &str) -> String {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let payload = format!(
        r#"{{"token_type":"access","iat":{},"exp":{exp_text}{extra}}}"#,
        EPOCH + at
    );
    format!(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.{}.c2ln",
        URL_SAFE_NO_PAD.encode(payload)
    )
}

/// Access tokens whose claims this build cannot read, each with its true expiry at 300 s.
fn unreadable_access_tokens(at: u64) -> Vec<(&'static str, String)> {
    let exp = EPOCH + at + 300;
    let deep = format!(r#","x":{}{}"#, "[".repeat(16), "]".repeat(16));
    let mut tokens = vec![("nested 17 levels", mint_raw(at, &exp.to_string(), &deep))];
    if !cfg!(feature = "float-dates") {
        tokens.push(("fractional exp", mint_raw(at, &format!("{exp}.5"), "")));
        tokens.push((
            "exp with an exponent",
            mint_raw(at, &format!("{exp}e0"), ""),
        ));
    }
    tokens
}

#[test]
fn unreadable_claims_are_scheduled_from_expires_in() {
    for (what, access) in unreadable_access_tokens(0) {
        let mut s = S::new(Protocol::OAuth2(OAuth2::default()), no_jitter());
        s.set_refresh_token(t(0), "opaque-refresh", None).unwrap();
        assert!(matches!(poll(&mut s, t(0)), Said::Refresh(_)), "{what}");
        let answer = format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":300,"refresh_token":"rotated"}}"#
        );
        s.handle_token_response(t(0), None, &ok(&answer)).unwrap();
        assert_eq!(
            poll(&mut s, t(0)),
            Said::Persist("rotated".into()),
            "{what}"
        );
        s.handle_persisted(true);
        // `expires_in` alone schedules it: the token dies at 299 s (300 s less the floored
        // second) and a refresh is asked for before then.
        assert_eq!(poll(&mut s, t(250)), bearer(&access), "{what}");
        let (asked, said) = (250_000..299_000)
            .step_by(100)
            .map(ms)
            .map(|at| (at, poll(&mut s, at)))
            .find(|(_, said)| *said != bearer(&access))
            .unwrap_or_else(|| panic!("{what}: no refresh before expiry"));
        assert_eq!(
            said,
            Said::Refresh("grant_type=refresh_token&refresh_token=rotated".into()),
            "{what}"
        );
        // The refresh fails: the still-valid token is sent during the backoff, and from 299 s
        // on it is never sent again.
        s.handle_no_answer(asked).unwrap();
        let during_backoff = asked.saturating_add(Duration::from_millis(500));
        assert_eq!(poll(&mut s, during_backoff), bearer(&access), "{what}");
        for at in (299_000..310_000).step_by(250).map(ms) {
            assert!(
                !matches!(poll(&mut s, at), Said::Send(_)),
                "{what}: sent at {at}, after expires_in"
            );
        }
    }
}

#[test]
fn unreadable_claims_without_expires_in_are_used_until_a_401() {
    for (what, access) in unreadable_access_tokens(0) {
        let mut s = S::new(simplejwt_login(), no_jitter());
        assert!(matches!(poll(&mut s, t(0)), Said::Login(_)), "{what}");
        let refresh = mint("refresh", 0, 86_400);
        s.handle_token_response(t(0), None, &ok(&login_answer(&access, &refresh)))
            .unwrap();
        assert_eq!(poll(&mut s, t(0)), Said::Persist(refresh.clone()), "{what}");
        s.handle_persisted(true);
        // No readable expiry and no `expires_in`: reactive only, no refresh loop...
        let id = send_id(&mut s, t(100), &access);
        assert_eq!(s.handle_api_status(t(100), id, 200), ApiVerdict::Done);
        assert_eq!(s.poll_timeout(), None, "{what}");
        // ...until the server says the token expired: one refresh, with the kept refresh
        // token, and one retry.
        let id = send_id(&mut s, t(301), &access);
        assert_eq!(s.handle_api_status(t(301), id, 401), ApiVerdict::Retry);
        assert_eq!(
            poll(&mut s, t(301)),
            Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#)),
            "{what}"
        );
        let fresh = mint("access", 301, 300);
        s.handle_token_response(t(301), None, &ok(&format!(r#"{{"access":"{fresh}"}}"#)))
            .unwrap();
        assert_eq!(poll(&mut s, t(301)), bearer(&fresh), "{what}");
    }
}

#[test]
fn what_the_library_skips_leniently_never_costs_a_rotated_refresh_token() {
    // An unknown member with a UTF-16 surrogate pair (never unescaped) and one with a bare word
    // (skipped unchecked): the answer is read and the rotated refresh token persisted.
    let mut s = S::new(simplejwt_login(), no_jitter());
    let (_, refresh) = logged_in(&mut s, 0, 300);
    assert_eq!(
        poll(&mut s, t(271)),
        Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#))
    );
    let (access2, refresh2) = (mint("access", 271, 300), mint("refresh", 271, 86_400));
    let answer = format!(
        r#"{{"detail":"\ud83d\ude00","flag":tru,"access":"{access2}","refresh":"{refresh2}"}}"#
    );
    s.handle_token_response(t(271), None, &ok(&answer)).unwrap();
    assert_eq!(poll(&mut s, t(271)), Said::Persist(refresh2));
    s.handle_persisted(true);
    assert_eq!(poll(&mut s, t(272)), bearer(&access2));
}

#[test]
fn answers_the_library_cannot_read_keep_the_tokens() {
    // Valid JSON the crate refuses: nested deeper than 16 levels, and a token with a surrogate
    // pair (a fractional `expires_in` is the OAuth 2.0 unit tests' and
    // tests/no_alloc_session.rs's). Each is a retry-later failure; the old tokens stay in use
    // and the refresh token is offered again.
    let bodies = [
        format!(
            r#"{{"access":"a.b.c","x":{}{}}}"#,
            "[".repeat(16),
            "]".repeat(16)
        ),
        r#"{"access":"\ud83d\ude00.b.c"}"#.to_owned(),
    ];
    for body in &bodies {
        let mut s = S::new(simplejwt_login(), no_jitter());
        let (access, refresh) = logged_in(&mut s, 0, 300);
        assert!(matches!(poll(&mut s, t(271)), Said::Refresh(_)));
        let err = s
            .handle_token_response(t(271), None, &ok(body))
            .unwrap_err();
        assert_eq!(err.class(), FailureClass::RetryLater, "{body:.60}");
        assert_eq!(poll(&mut s, ms(271_500)), bearer(&access), "{body:.60}");
        s.reset();
        assert_eq!(
            poll(&mut s, t(290)),
            Said::Refresh(format!(r#"{{"refresh":"{refresh}"}}"#)),
            "{body:.60}"
        );
    }
}
