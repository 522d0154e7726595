//! `protocol`: a token endpoint's answer (status, body, `Retry-After`) to a refresh or a login,
//! for SimpleJWT and OAuth 2.0, fed through `Session::handle_token_response`.
//!
//! Every input is used twice:
//! 1. **Raw**: the first line names the dialect, grant, status and optional `Retry-After` and
//!    wall clock (`simplejwt refresh 200`, `oauth2-cc login 503 120`); the rest is the body.
//!    Bytes without such a line are mapped to those parameters. Whatever the answer, the
//!    outcome must be consistent: non-2xx is never a success; 408/425/429/5xx are
//!    `Unavailable` with the status and `Retry-After` as given; a refresh token is dropped only
//!    on a definitive rejection that the body really says; an accepted answer is JSON to
//!    `serde_json`, its refresh token is handed over for saving before anything is sent, and the
//!    `Authorization` header carries exactly the access token it holds; a refused 2xx answer's
//!    rotated refresh token, when well-formed and alive, is handed over for saving first; after
//!    a failure the session backs off exactly as documented (after a configuration-class
//!    answer: `Failed(Configuration)` until exactly `configuration_backoff`, then a retry by
//!    itself, or at once after `reset()`), and sends the refresh token it holds again. Before
//!    the answer, the request is tried in a buffer too small for it (sized from the input):
//!    `Failed(BufferTooSmall)` until `reset()`, and the buffer zeroed.
//!    And an independent model of the answer path: a body `serde_json` reads within the
//!    documented limits (16 levels of nesting, the top-level object included; whole-second
//!    `expires_in` without the `float-dates` feature) gives exactly the modelled error, a
//!    usable answer or the exact `AnswerError`; a body nested deeper, or not starting with `{`,
//!    is `AnswerError::Json` (and has no error code); whatever the crate takes from a body
//!    `serde_json` does not read is explained by the documented leniency: the members it reads
//!    are JSON with the values it took, only the ones it skips may be lenient
//!    (`jwt_refresh_fuzz::read_object`; known deviations beyond that are tolerated unless
//!    `JWT_REFRESH_FUZZ_STRICT` names them, see `jwt_refresh_fuzz::KNOWN_DEVIATIONS`).
//! 2. **Structured**: the same bytes build a well-formed success or error answer (real shapes,
//!    any member order, escapes, extra members, `expires_in` as a number or a string, `nbf`,
//!    with or without `iat`, with or without a wall clock). The expected outcome is computed
//!    independently: the exact error class, or the exact tokens and a lease that never outlives
//!    the token's true lifetime.
//!
//! Seeds (`fuzz/seeds/protocol/`) are real answers: djangorestframework-simplejwt logins,
//! refreshes with and without rotation and its error bodies; OAuth 2.0 servers' token answers
//! and RFC 6749 errors; proxies' HTML pages and empty 502s.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use jwt_refresh::policy::LeaseError;
use jwt_refresh::protocol::{AnswerError, TokenKind};
use jwt_refresh::protocol::{
    ClientAuth, Credentials, FailureClass, Grant, OAuth2, OAuth2Login, OAuthErrorCode, SimpleJwt,
};
use jwt_refresh::session::{LoginReason, SessionError};
use jwt_refresh::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use jwt_refresh::{
    Duration, EndpointError, Instant, Output, Protocol, RefreshError, RefreshPolicy, Session,
    TokenError, TokenResponse, UnixTime,
};
use jwt_refresh_fuzz::{
    is_ws, json_members, json_str, jws, nesting_depth, read_members, read_object,
    sent_refresh_token, strict, string_units, Escape, JsonVerdict, Reading, EPOCH, MAX_NESTING,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    raw(data);
    if let Ok(spec) = Unstructured::new(data).arbitrary::<Structured>() {
        structured(&spec);
    }
});

// ---------------------------------------------------------------------------------------------
// Configurations
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    /// SimpleJWT with a username and password.
    SimpleJwt,
    /// OAuth 2.0, provisioned refresh token, no login.
    OAuth2,
    /// OAuth 2.0 with the client-credentials login, credentials in the body.
    OAuth2Cc,
    /// OAuth 2.0 with the client-credentials login over HTTP Basic, and a scope.
    OAuth2Basic,
}

impl Dialect {
    const ALL: [Dialect; 4] = [
        Dialect::SimpleJwt,
        Dialect::OAuth2,
        Dialect::OAuth2Cc,
        Dialect::OAuth2Basic,
    ];

    fn name(self) -> &'static str {
        match self {
            Dialect::SimpleJwt => "simplejwt",
            Dialect::OAuth2 => "oauth2",
            Dialect::OAuth2Cc => "oauth2-cc",
            Dialect::OAuth2Basic => "oauth2-basic",
        }
    }

    fn oauth(self) -> bool {
        self != Dialect::SimpleJwt
    }

    fn can_login(self) -> bool {
        self != Dialect::OAuth2
    }

    fn protocol(self) -> Protocol<'static> {
        match self {
            Dialect::SimpleJwt => Protocol::SimpleJwt(SimpleJwt {
                credentials: Some(Credentials {
                    username: "device-7",
                    password: "p\"ss w0rd",
                }),
                ..SimpleJwt::default()
            }),
            Dialect::OAuth2 => Protocol::OAuth2(OAuth2 {
                client_id: Some("device-7"),
                ..OAuth2::default()
            }),
            Dialect::OAuth2Cc => Protocol::OAuth2(OAuth2 {
                client_id: Some("device-7"),
                client_secret: Some("s3cr&t"),
                login: OAuth2Login::ClientCredentials,
                ..OAuth2::default()
            }),
            Dialect::OAuth2Basic => Protocol::OAuth2(OAuth2 {
                client_id: Some("device-7"),
                client_secret: Some("s3cr&t"),
                client_auth: ClientAuth::Basic,
                scope: Some("telemetry read"),
                login: OAuth2Login::ClientCredentials,
                ..OAuth2::default()
            }),
        }
    }
}

/// The refresh token the session holds before a refresh.
const OLD_REFRESH: &str = "r-old.0123456789";
const NOW: Instant = Instant::from_secs(1_000);

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        seed: 7,
        ..RefreshPolicy::default()
    }
}

/// The first jitter draw of a session with `seed` (SplitMix64, `policy.rs`): the draw of the
/// backoff after a configuration-class answer, which needs no lease before it.
fn first_draw(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A session with the `grant` request in flight. It is first tried with a `short`-byte buffer:
/// a request that does not fit leaves the buffer wiped and the session failed until `reset()`.
fn in_flight(dialect: Dialect, grant: Grant, short: usize) -> Session<'static> {
    let mut s: Session<'static> = Session::new(dialect.protocol(), policy());
    if grant == Grant::Refresh {
        s.set_refresh_token(NOW, OLD_REFRESH, None)
            .expect("an opaque refresh token is accepted");
    }
    let mut buf = [0u8; 1024];
    let mut small = vec![0xA5u8; short];
    let fits = match s.poll(NOW, &mut small) {
        Output::Failed(SessionError::BufferTooSmall(e)) => {
            assert!(e.needed > short, "{e:?} for a {short}-byte buffer");
            false
        }
        Output::Refresh(_) | Output::Login(_) => true,
        other => panic!("a {short}-byte buffer for a {grant:?}: {other:?}"),
    };
    if !fits {
        assert!(
            small.iter().all(|&b| b == 0),
            "a {grant:?} that does not fit {short} bytes left bytes in the buffer"
        );
        // Failed until reset, whatever the buffer.
        match s.poll(NOW, &mut buf) {
            Output::Failed(SessionError::BufferTooSmall(_)) => {}
            other => panic!("after a request too large for the buffer: {other:?}"),
        }
        assert_eq!(s.poll_timeout(), None);
        s.reset();
    } else {
        // It fitted: the same request again, for the checks below.
        s = Session::new(dialect.protocol(), policy());
        if grant == Grant::Refresh {
            s.set_refresh_token(NOW, OLD_REFRESH, None)
                .expect("an opaque refresh token is accepted");
        }
    }
    match (s.poll(NOW, &mut buf), grant) {
        (Output::Refresh(r), Grant::Refresh) => {
            let body = String::from_utf8_lossy(r.body);
            assert!(body.contains("r-old.0123456789"), "{body}");
        }
        (Output::Login(_), Grant::Login) => {}
        (other, _) => panic!("expected a {grant:?} request, got {other:?}"),
    }
    s
}

/// What a session said, owned.
#[derive(Debug)]
enum Said {
    Send(String),
    Refresh(String),
    Login,
    Persist(String),
    Timeout(Instant),
    LoginRequired(LoginReason),
    Failed(SessionError),
}

fn poll(s: &mut Session<'static>, now: Instant) -> Said {
    let mut buf = [0u8; 2048];
    match s.poll(now, &mut buf) {
        Output::Send { authorization, .. } => Said::Send(authorization.to_owned()),
        Output::Refresh(r) => Said::Refresh(String::from_utf8_lossy(r.body).into_owned()),
        Output::Login(_) => Said::Login,
        Output::Persist(secret) => Said::Persist(secret.expose().to_owned()),
        Output::Timeout(at) => Said::Timeout(at),
        Output::LoginRequired(reason) => Said::LoginRequired(reason),
        Output::Failed(e) => Said::Failed(e),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw answers
// ---------------------------------------------------------------------------------------------

struct RawCase<'a> {
    dialect: Dialect,
    grant: Grant,
    status: u16,
    retry_after: Option<Duration>,
    wall: Option<UnixTime>,
    body: &'a [u8],
}

/// `<dialect> <refresh|login> <status> [retry-after seconds] [wall clock]\n<body>`, or the
/// parameters taken from the first bytes.
fn parse_case(data: &[u8]) -> RawCase<'_> {
    if let Some(nl) = data.iter().position(|&b| b == b'\n') {
        if let Ok(line) = std::str::from_utf8(&data[..nl]) {
            let words: Vec<&str> = line.split_ascii_whitespace().collect();
            let dialect = words
                .first()
                .and_then(|w| Dialect::ALL.into_iter().find(|d| d.name() == *w));
            let grant = match words.get(1) {
                Some(&"refresh") => Some(Grant::Refresh),
                Some(&"login") => Some(Grant::Login),
                _ => None,
            };
            let status = words.get(2).and_then(|w| w.parse::<u16>().ok());
            if let (Some(dialect), Some(grant), Some(status)) = (dialect, grant, status) {
                let number = |i: usize| words.get(i).and_then(|w| w.parse::<u64>().ok());
                return RawCase {
                    dialect,
                    grant,
                    status,
                    retry_after: number(3).map(Duration::from_secs),
                    wall: number(4).and_then(UnixTime::from_secs),
                    body: &data[nl + 1..],
                };
            }
        }
    }
    let byte = |i: usize| data.get(i).copied().unwrap_or(0);
    let raw_status = u16::from_le_bytes([byte(2), byte(3)]);
    RawCase {
        dialect: Dialect::ALL[usize::from(byte(0) % 4)],
        grant: if byte(1) & 1 == 0 {
            Grant::Refresh
        } else {
            Grant::Login
        },
        // Mostly plausible statuses, sometimes anything a broken server could send.
        status: if raw_status & 0x8000 == 0 {
            100 + raw_status % 500
        } else {
            raw_status
        },
        retry_after: (byte(1) & 2 != 0).then(|| Duration::from_secs(u64::from(byte(4)) * 60)),
        wall: (byte(1) & 4 != 0)
            .then(|| UnixTime::from_secs(EPOCH))
            .flatten(),
        body: data.get(5..).unwrap_or_default(),
    }
}

fn raw(data: &[u8]) {
    let mut case = parse_case(data);
    if case.grant == Grant::Login && !case.dialect.can_login() {
        case.dialect = Dialect::OAuth2Cc;
    }
    let short = usize::from(data.first().copied().unwrap_or(0) >> 2);
    let mut s = in_flight(case.dialect, case.grant, short);
    let answer = TokenResponse {
        status: case.status,
        body: case.body,
        retry_after: case.retry_after,
    };
    let result = s.handle_token_response(NOW, case.wall, &answer);
    if let Err(e) = &result {
        let _ = e.to_string();
    }
    // The error code the crate found must be in the body: read as the crate reads it (it only
    // delimits the values of that name, and takes the only one when it has no escapes; a name
    // given twice is no code, in either order).
    let member_is = |key: &str, value: &str| {
        justify(case.body, &[key], false, "the error code")
            .is_some_and(|reading| error_code(&reading, key).as_deref() == Some(value))
    };
    let success = (200..300).contains(&case.status);
    let transient = matches!(case.status, 408 | 425 | 429 | 500..=599);
    exact(&case, &result);
    match result {
        Ok(grant) => {
            assert!(success, "status {} accepted", case.status);
            assert_eq!(grant, case.grant);
            // Escaped names are the same names (`"refr\u0065sh"` is `refresh`): the parsers
            // skipped them until 4b00ea3 (`regressions/protocol/escaped-refresh-key-ignored`).
            let fields = fields(case.dialect);
            let reading =
                justify(case.body, &fields, true, "an accepted answer").unwrap_or_else(|| {
                    panic!(
                        "accepted an answer that is no JSON object: {:?}",
                        String::from_utf8_lossy(case.body)
                    )
                });
            let (access_key, refresh_key) = (fields[0], fields[1]);
            let values = |key: &str| -> Vec<String> {
                reading
                    .named(key)
                    .filter_map(|m| m.value.as_ref()?.as_str().map(str::to_owned))
                    .collect()
            };
            let accesses = values(access_key);
            let refreshes = values(refresh_key);
            assert!(!accesses.is_empty(), "accepted without an {access_key}");
            let mut said = poll(&mut s, NOW);
            if let Said::Persist(secret) = &said {
                assert!(
                    refreshes.contains(secret),
                    "asked to persist a refresh token the answer does not hold"
                );
                s.handle_persisted(true);
                said = poll(&mut s, NOW);
            } else {
                assert!(
                    refreshes.is_empty(),
                    "the answer's refresh token was not handed over for saving: {said:?}"
                );
                if case.grant == Grant::Refresh {
                    assert!(s.has_refresh_token(), "the old refresh token was dropped");
                }
            }
            let lease = s.lease().expect("a lease after a success");
            match said {
                Said::Send(authorization) => {
                    let token = authorization
                        .strip_prefix("Bearer ")
                        .expect("a Bearer header");
                    assert!(accesses.iter().any(|a| a == token), "sent another token");
                    assert!(token.bytes().all(|b| b.is_ascii_graphic()));
                    assert!(NOW >= lease.usable_at && NOW < lease.expires_at);
                }
                Said::Timeout(at) => {
                    assert!(at > NOW);
                    assert_eq!(at, lease.usable_at, "waits for something else than nbf");
                }
                other => panic!("after a success: {other:?}"),
            }
            // `expires_in` bounds the lease.
            let expires_in = reading.named("expires_in").find_map(|m| {
                case.dialect
                    .oauth()
                    .then(|| expires_in_value(m.raw, m.value.as_ref()?))
            });
            if let Some(Some(secs)) = expires_in {
                assert!(
                    lease.expires_at <= NOW.saturating_add(Duration::from_secs(secs)),
                    "a lease beyond expires_in"
                );
            }
        }
        Err(e) => {
            if transient {
                assert_eq!(
                    e,
                    RefreshError::Endpoint(EndpointError::Unavailable {
                        status: case.status,
                        retry_after: case.retry_after
                    })
                );
            }
            if success {
                assert!(
                    matches!(
                        e,
                        RefreshError::Endpoint(EndpointError::BadAnswer(_))
                            | RefreshError::Refused(_)
                    ),
                    "a 2xx answer failed with {e:?}"
                );
            }
            match e {
                RefreshError::Endpoint(EndpointError::RefreshTokenRejected) => {
                    assert_eq!(
                        case.grant,
                        Grant::Refresh,
                        "a login's answer rejected a token"
                    );
                    if case.dialect.oauth() {
                        assert!(
                            member_is("error", "invalid_grant"),
                            "rejected without invalid_grant"
                        );
                    } else {
                        assert_eq!(case.status, 401);
                        assert!(
                            member_is("code", "token_not_valid"),
                            "rejected without token_not_valid"
                        );
                    }
                }
                RefreshError::Endpoint(EndpointError::CredentialsRejected) => {
                    assert_eq!(case.grant, Grant::Login);
                    if case.dialect.oauth() {
                        assert!(member_is("error", "invalid_client"));
                    } else {
                        assert_eq!(case.status, 401);
                    }
                }
                RefreshError::Unexpected | RefreshError::NoAnswer => {
                    panic!("{e:?} for an answer to a request in flight")
                }
                _ => {}
            }
            // A refused 2xx answer keeps its rotated refresh token when it is well-formed
            // and alive.
            let kept = match e {
                RefreshError::Refused(error) => {
                    // Read leniently (the crate refused it, maybe for what it tolerates).
                    let known = fields(case.dialect);
                    let is_known = |name: &str| known.contains(&name);
                    let reading = read_members(case.body, &is_known, &is_known, false)
                        .or_else(|_| read_members(case.body, &is_known, &is_known, true));
                    match reading {
                        Ok(reading) => rotated_kept(&reading, case.dialect, error),
                        Err(_) => Kept::Maybe(None),
                    }
                }
                _ => Kept::Exact(None),
            };
            let again = || {
                let mut s = in_flight(case.dialect, case.grant, short);
                let _ = s.handle_token_response(NOW, case.wall, &answer);
                s
            };
            after_failure(&mut s, case.dialect, case.grant, e, kept, again);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The answer path, modelled
// ---------------------------------------------------------------------------------------------

/// The members a success answer's reader reads, access and refresh token first.
fn fields(dialect: Dialect) -> Vec<&'static str> {
    if dialect.oauth() {
        vec!["access_token", "refresh_token", "token_type", "expires_in"]
    } else {
        vec!["access", "refresh"]
    }
}

/// The body read as the crate reads it, looking for the members `known` (their values read
/// strictly when `values`, else only delimited): `None` when it is no object even with the
/// documented leniency; a reading that needs a known deviation is allowed unless the run is
/// strict about it.
fn justify<'a>(body: &'a [u8], known: &[&str], values: bool, what: &str) -> Option<Reading<'a>> {
    if nesting_depth(body) > MAX_NESTING {
        return None;
    }
    let is_known = |name: &str| known.contains(&name);
    let strict_value = |name: &str| values && known.contains(&name);
    match read_members(body, &is_known, &strict_value, false) {
        Ok(reading) => Some(reading),
        Err(_) => {
            let reading = read_members(body, &is_known, &strict_value, true).ok()?;
            for deviation in &reading.deviations {
                assert!(
                    !strict(deviation),
                    "known deviation `{deviation}` in {what}: {:?}",
                    String::from_utf8_lossy(body)
                );
            }
            Some(reading)
        }
    }
}

/// A plain (unescaped) string member as an error answer's reader takes it: the member of that
/// name when there is exactly one and it is a string (only delimited: nothing in it is
/// decoded); `None` when it has escapes, or when the name comes twice or more (escaped names
/// count): success answers refuse duplicates, and in an error answer neither copy is read, so
/// that the order of `{"code":"x","code":"token_not_valid"}` cannot decide whether the refresh
/// token is dropped (the last copy won until the fix).
fn error_code(reading: &Reading<'_>, key: &str) -> Option<String> {
    let [member] = reading.named(key).collect::<Vec<_>>()[..] else {
        return None;
    };
    let content = member.raw.strip_prefix(b"\"")?.strip_suffix(b"\"")?;
    if content.contains(&b'\\') {
        return None;
    }
    String::from_utf8(content.to_vec()).ok()
}

/// `expires_in` as the crate reads it: a JSON integer (with `float-dates` any number, floored,
/// refused when negative or 2^64 or more), or a string of ASCII digits without escapes.
fn expires_in_value(raw: &[u8], value: &serde_json::Value) -> Option<u64> {
    if let Some(text) = value.as_str() {
        return (!raw.contains(&b'\\') && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse().ok())
            .flatten();
    }
    #[cfg(not(feature = "float-dates"))]
    return value.as_u64();
    #[cfg(feature = "float-dates")]
    return value
        .as_f64()
        .filter(|f| (0.0..18_446_744_073_709_551_616.0).contains(f))
        .map(|f| f as u64);
}

/// A token's decoded characters against the session's rules: visible ASCII (and space for a
/// refresh token), not empty, at most `capacity` bytes; the first offending character decides.
fn token_check(raw: &[u8], token: TokenKind, capacity: usize) -> Result<(), TokenError> {
    let units = string_units(raw).expect("a string member read");
    let mut len = 0;
    for u in units {
        len += u.c.len_utf8();
        let allowed = u.c.is_ascii_graphic() || (u.c == ' ' && token == TokenKind::Refresh);
        if !allowed {
            return Err(TokenError::Invalid { token });
        }
        if len > capacity {
            return Err(TokenError::TooLong { token, capacity });
        }
    }
    if len == 0 {
        return Err(TokenError::Invalid { token });
    }
    Ok(())
}

/// What a success answer's body must give before the token is scheduled: the first problem in
/// member order, then the missing access token (the protocol's `AnswerError`s), then the tokens'
/// characters and lengths (the session's `TokenError`s).
fn answer_model(reading: &Reading<'_>, dialect: Dialect) -> Result<(), RefreshError> {
    let (access, refresh) = answer_shape(reading, dialect)
        .map_err(|e| RefreshError::Endpoint(EndpointError::BadAnswer(e)))?;
    let bearer_len = "Bearer ".len();
    token_check(
        access,
        TokenKind::Access,
        DEFAULT_ACCESS_CAPACITY - bearer_len,
    )?;
    if let Some(refresh) = refresh {
        token_check(refresh, TokenKind::Refresh, DEFAULT_REFRESH_CAPACITY)?;
    }
    Ok(())
}

/// The access and (optional) refresh token members of a success answer, or the first problem
/// the protocol finds in it.
fn answer_shape<'r>(
    reading: &Reading<'r>,
    dialect: Dialect,
) -> Result<(&'r [u8], Option<&'r [u8]>), AnswerError> {
    let fields = fields(dialect);
    let (mut access, mut refresh, mut token_type, mut expires_in) = (None, None, false, None);
    for m in &reading.members {
        let Some(field) = m
            .key
            .as_deref()
            .and_then(|k| fields.iter().position(|f| *f == k))
        else {
            continue;
        };
        let duplicate = match field {
            0 => access.is_some(),
            1 => refresh.is_some(),
            2 => token_type,
            _ => expires_in.is_some(),
        };
        if duplicate {
            return Err(AnswerError::DuplicateField);
        }
        let value = m.value.as_ref().expect("a member read strictly");
        match field {
            0 | 1 => {
                let token = if field == 0 {
                    TokenKind::Access
                } else {
                    TokenKind::Refresh
                };
                if !value.is_string() {
                    return Err(AnswerError::NotAString { token });
                }
                *(if field == 0 {
                    &mut access
                } else {
                    &mut refresh
                }) = Some(m.raw);
            }
            2 => {
                let bearer = !m.raw.contains(&b'\\')
                    && value
                        .as_str()
                        .is_some_and(|t| t.eq_ignore_ascii_case("bearer"));
                if !bearer {
                    return Err(AnswerError::UnsupportedTokenType);
                }
                token_type = true;
            }
            _ => {
                expires_in =
                    Some(expires_in_value(m.raw, value).ok_or(AnswerError::InvalidExpiresIn)?);
            }
        }
    }
    let access = access.ok_or(AnswerError::MissingAccessToken)?;
    Ok((access, refresh))
}

fn oauth_code(code: &str) -> OAuthErrorCode {
    [
        OAuthCode::InvalidRequest,
        OAuthCode::InvalidClient,
        OAuthCode::InvalidGrant,
        OAuthCode::UnauthorizedClient,
        OAuthCode::UnsupportedGrantType,
        OAuthCode::InvalidScope,
        OAuthCode::ServerError,
        OAuthCode::TemporarilyUnavailable,
    ]
    .into_iter()
    .find(|c| c.text() == code)
    .map_or(OAuthErrorCode::Other, OAuthCode::code)
}

/// The classification of an answer that is not 2xx, from the error code the body holds.
fn error_model(case: &RawCase<'_>, code: Option<String>) -> RefreshError {
    let status = case.status;
    if matches!(status, 408 | 425 | 429 | 500..=599) {
        return RefreshError::Endpoint(EndpointError::Unavailable {
            status,
            retry_after: case.retry_after,
        });
    }
    if !case.dialect.oauth() {
        return match (status, case.grant) {
            (401, Grant::Login) => RefreshError::Endpoint(EndpointError::CredentialsRejected),
            (401, Grant::Refresh) if code.as_deref() == Some("token_not_valid") => {
                RefreshError::Endpoint(EndpointError::RefreshTokenRejected)
            }
            _ => RefreshError::Endpoint(EndpointError::Configuration { status, code: None }),
        };
    }
    let code = code.as_deref().map(oauth_code);
    match (code, case.grant) {
        (Some(OAuthErrorCode::InvalidGrant), Grant::Refresh) => {
            RefreshError::Endpoint(EndpointError::RefreshTokenRejected)
        }
        (Some(OAuthErrorCode::InvalidClient), Grant::Login) => {
            RefreshError::Endpoint(EndpointError::CredentialsRejected)
        }
        (Some(OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable), _) => {
            RefreshError::Endpoint(EndpointError::Unavailable {
                status,
                retry_after: case.retry_after,
            })
        }
        _ => RefreshError::Endpoint(EndpointError::Configuration { status, code }),
    }
}

/// The exact outcome where the model knows it: a body `serde_json` reads as an object within
/// the limits, or one the crate must refuse before reading (too deep, not starting with `{`).
fn exact(case: &RawCase<'_>, result: &Result<Grant, RefreshError>) {
    let body = case.body;
    let text = String::from_utf8_lossy(body);
    let success = (200..300).contains(&case.status);
    let refused =
        nesting_depth(body) > MAX_NESTING || body.iter().find(|&&b| !is_ws(b)) != Some(&b'{');
    let reading = if refused {
        None
    } else if let JsonVerdict::Object(_) = json_members(body) {
        let known: Vec<&str> = if success {
            fields(case.dialect)
        } else {
            vec![if case.dialect.oauth() {
                "error"
            } else {
                "code"
            }]
        };
        let is_known = |name: &str| known.contains(&name);
        Some(
            read_object(body, &is_known, false)
                .unwrap_or_else(|e| panic!("serde_json reads {text:?}, read_object: {e}")),
        )
    } else {
        // Not JSON to serde_json: no exact model (the leniency checks are in `raw`).
        return;
    };
    if std::env::var_os("JWT_REFRESH_FUZZ_TRACE").is_some() {
        eprintln!(
            "{} {:?} {} {text:?}\n-> {result:?}",
            case.dialect.name(),
            case.grant,
            case.status
        );
    }
    if success {
        let json = RefreshError::Endpoint(EndpointError::BadAnswer(AnswerError::Json));
        match reading.map_or(Err(json), |r| answer_model(&r, case.dialect)) {
            Err(e) => assert_eq!(*result, Err(e), "answer {text:?}"),
            Ok(()) => assert!(
                matches!(
                    result,
                    Ok(_) | Err(RefreshError::Refused(TokenError::Unschedulable(_)))
                ),
                "a usable answer gave {result:?}: {text:?}"
            ),
        }
    } else {
        let key = if case.dialect.oauth() {
            "error"
        } else {
            "code"
        };
        let code = reading.and_then(|r| error_code(&r, key));
        assert_eq!(
            *result,
            Err(error_model(case, code)),
            "answer {} {text:?}",
            case.status
        );
    }
}

/// When a refresh token dies by its own claims, as far as the model knows.
#[derive(Clone, Copy, Debug)]
enum Life {
    Never,
    At(Instant),
    /// A JWT whose claims the model does not read.
    Unknown,
}

/// The refresh token a refused answer leaves in the session.
enum Kept {
    /// Exactly this one (`None`: the old one, or none for a login).
    Exact(Option<(String, Life)>),
    /// This one or the old one (a JWT whose claims the model does not read; `None`: a body
    /// the model does not read, its refresh token unknown).
    Maybe(Option<String>),
}

/// What `keep_rotated` does with a raw refused answer's refresh token: kept when it passes its
/// check (visible ASCII or space, not empty, at most `R` bytes) and is not dead by its own
/// claims; never after a refresh token error. An escaped token, or one without exactly two
/// dots, has no claims: it is kept, exactly. A JWT's claims are the `decode` target's business:
/// it may be kept or not.
fn rotated_kept(reading: &Reading<'_>, dialect: Dialect, error: TokenError) -> Kept {
    let refresh_key = fields(dialect)[1];
    let Some(member) = reading.named(refresh_key).last() else {
        return Kept::Exact(None);
    };
    if member.value.is_none() || !member.raw.starts_with(b"\"") {
        return Kept::Maybe(None);
    }
    // Nor after an access token past its `exp` by the trusted wall clock: a replayed answer,
    // whose refresh token the server has replaced.
    let refresh_error = matches!(
        error,
        TokenError::Invalid {
            token: TokenKind::Refresh
        } | TokenError::TooLong {
            token: TokenKind::Refresh,
            ..
        } | TokenError::Unschedulable(LeaseError::Expired)
    );
    if refresh_error
        || token_check(member.raw, TokenKind::Refresh, DEFAULT_REFRESH_CAPACITY).is_err()
    {
        return Kept::Exact(None);
    }
    let Some(text) = member
        .value
        .as_ref()
        .and_then(|v| v.as_str())
        .map(str::to_owned)
    else {
        return Kept::Exact(None);
    };
    if member.raw.contains(&b'\\') || text.bytes().filter(|&b| b == b'.').count() != 2 {
        return Kept::Exact(Some((text, Life::Never)));
    }
    Kept::Maybe(Some(text))
}

/// What the session does after a failed refresh or login: the documented backoff (the long one
/// after a configuration problem, reported as `Failed` meanwhile), the refresh token kept (the
/// old one, or the rotated one of a refused answer, handed over for saving first) and sent
/// again unless it was rejected; `again` replays the answer on a new session, to check that
/// `reset()` retries at once.
fn after_failure(
    s: &mut Session<'static>,
    dialect: Dialect,
    grant: Grant,
    e: RefreshError,
    kept: Kept,
    again: impl Fn() -> Session<'static>,
) {
    let rejected = e == RefreshError::Endpoint(EndpointError::RefreshTokenRejected);
    let p = policy();
    let mut said = poll(s, NOW);
    // The refresh token the session holds now, and when it dies by its own claims.
    let old = (grant == Grant::Refresh && !rejected).then(|| (OLD_REFRESH.to_owned(), Life::Never));
    let current = match (kept, &said) {
        (Kept::Exact(Some((token, life))), Said::Persist(secret)) => {
            assert_eq!(secret, &token, "persisting another token than the kept one");
            Some((token, life))
        }
        (Kept::Exact(Some(_)), other) => {
            panic!("a rotated refresh token kept after {e:?}, yet poll said {other:?}")
        }
        (Kept::Maybe(token), Said::Persist(secret)) => {
            if let Some(token) = token {
                assert_eq!(secret, &token, "persisting another token than the answer's");
            }
            let token = secret.clone();
            // Its life is unknown to the model: the retry below may find it dead.
            Some((token, Life::Unknown))
        }
        (_, Said::Persist(secret)) => panic!("persisting {secret:?} after {e:?}"),
        (_, _) => old,
    };
    if matches!(said, Said::Persist(_)) {
        s.handle_persisted(true);
        said = poll(s, NOW);
    }
    // A kept token dead by its own claims (one second off a 1-second life) is dropped once
    // handed over for saving.
    let held = current.as_ref().map(|(_, life)| match life {
        Life::Never => Some(true),
        Life::At(dies) => Some(*dies > NOW),
        Life::Unknown => None,
    });
    if let Some(held) = held.unwrap_or(Some(false)) {
        assert_eq!(
            s.has_refresh_token(),
            held,
            "refresh token kept/dropped wrongly after {e:?}"
        );
    }
    // The request after the wait: a refresh with the token held, else a login.
    let retry = |s: &mut Session<'static>, at: Instant| {
        // Whether the token held is alive at `at` (`None`: the model does not know).
        let alive = current.as_ref().map(|(_, life)| match life {
            Life::Never => Some(true),
            Life::At(dies) => Some(*dies > at),
            Life::Unknown => None,
        });
        let said = poll(s, at);
        match (&current, alive.flatten(), said) {
            (Some((token, _)), Some(true) | None, Said::Refresh(body)) => {
                let sent = sent_refresh_token(dialect.oauth(), &body);
                assert_eq!(
                    sent.as_deref(),
                    Some(token.as_str()),
                    "the retry's refresh token"
                );
            }
            // None held, or dead by its own claims by now: a login, if there is one.
            (None, _, Said::Login) | (Some(_), Some(false) | None, Said::Login) => {
                assert!(dialect.can_login(), "a login without credentials");
            }
            (Some(_), Some(false) | None, Said::LoginRequired(_)) => {
                assert!(!dialect.can_login(), "login required with credentials");
            }
            (_, _, other) => panic!("after the wait following {e:?}: {other:?}"),
        }
    };
    match (e.class(), said) {
        (FailureClass::RetryLater, Said::Timeout(at)) => {
            // The first failure backs off exactly `backoff_base`, or the server's Retry-After
            // when longer (capped).
            let retry_after = match e {
                RefreshError::Endpoint(EndpointError::Unavailable { retry_after, .. }) => {
                    retry_after
                }
                _ => None,
            };
            let wait = retry_after.map_or(p.backoff_base, |r| {
                r.min(p.max_retry_after).max(p.backoff_base)
            });
            assert_eq!(at, NOW.saturating_add(wait), "backoff after {e:?}");
            retry(s, at);
        }
        (FailureClass::LoginAgain, Said::Login) => {
            assert!(rejected && dialect.can_login());
        }
        (FailureClass::LoginAgain, Said::LoginRequired(reason)) => match e {
            RefreshError::Endpoint(EndpointError::RefreshTokenRejected) => {
                assert!(!dialect.can_login());
                assert_eq!(reason, LoginReason::RefreshTokenRejected);
            }
            _ => assert_eq!(reason, LoginReason::CredentialsRejected),
        },
        (FailureClass::Fatal, Said::Failed(SessionError::Configuration(got))) => {
            // No longer terminal: reported during `configuration_backoff`, then tried again.
            assert_eq!(RefreshError::Endpoint(got), e);
            let until = NOW.saturating_add(p.configuration_backoff(first_draw(p.seed)));
            assert_eq!(s.poll_timeout(), Some(until), "the backoff after {e:?}");
            let before = until.saturating_sub(Duration::from_millis(1));
            match poll(s, before) {
                Said::Failed(SessionError::Configuration(still)) => assert_eq!(still, got),
                other => panic!("1 ms before the end of the backoff after {e:?}: {other:?}"),
            }
            retry(s, until);
            // And `reset()` tries again at once.
            let mut s = again();
            s.reset();
            retry(&mut s, NOW);
        }
        (class, other) => panic!("after {e:?} ({class:?}): {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Structured answers
// ---------------------------------------------------------------------------------------------

#[derive(Arbitrary, Debug)]
struct Structured {
    dialect: u8,
    login: bool,
    answer: Answer,
    /// The device's trusted wall clock, this many seconds off the server's; none when `None`.
    wall_skew: Option<i8>,
}

#[derive(Arbitrary, Debug)]
enum Answer {
    Success(Success),
    Error(ErrorAnswer),
}

#[derive(Arbitrary, Debug)]
struct Success {
    /// 200 + this mod 100.
    status: u8,
    access: Token,
    refresh: Option<Token>,
    expires_in: Option<ExpiresIn>,
    token_type: TokenType,
    extras: Vec<Extra>,
    /// Rotates the member order.
    rotate: u8,
    escape: EscapeSel,
    spaced: bool,
}

#[derive(Arbitrary, Debug)]
enum Token {
    /// A SimpleJWT-shaped JWT living `lifetime` s (at least 1), with `nbf` this many seconds
    /// after `iat`, and `iat` present or not.
    Jwt {
        lifetime: u16,
        nbf: Option<u8>,
        iat: bool,
    },
    /// Any visible ASCII, at least one character.
    Opaque(String),
}

#[derive(Arbitrary, Debug)]
enum ExpiresIn {
    Number(u32),
    Text(u32),
    /// `n.fff`: read (floored) only with `float-dates`, else `InvalidExpiresIn`.
    Fraction(u32, u16),
    /// `m.de+x`, `x` in 0..=9: read (floored) only with `float-dates`.
    Exponent {
        mantissa: u8,
        digit: u8,
        exp: u8,
    },
    /// `-n`: never a lifetime.
    Negative(u32),
}

#[derive(Arbitrary, Debug)]
enum TokenType {
    Bearer,
    Lower,
    Upper,
    Omitted,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum EscapeSel {
    Minimal,
    Everything,
    Short,
}

#[derive(Arbitrary, Debug)]
enum Extra {
    Scope(String),
    Number(i32),
    Nested(u8),
    Null,
    Detail(String),
}

#[derive(Arbitrary, Debug)]
enum ErrorAnswer {
    /// SimpleJWT 401 `token_not_valid` (expired or blacklisted refresh token).
    TokenNotValid { blacklisted: bool },
    /// SimpleJWT 401 for a login.
    NoActiveAccount,
    /// SimpleJWT 400 field errors.
    FieldErrors,
    /// An OAuth 2.0 error body with this code and status.
    OAuth { code: OAuthCode, status: u16 },
    /// 5xx, 429, 408 with an HTML or empty body and maybe a Retry-After.
    Unavailable {
        status: u8,
        retry_after: Option<u16>,
        html: bool,
    },
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum OAuthCode {
    InvalidRequest,
    InvalidClient,
    InvalidGrant,
    UnauthorizedClient,
    UnsupportedGrantType,
    InvalidScope,
    ServerError,
    TemporarilyUnavailable,
    Other,
}

impl OAuthCode {
    fn text(self) -> &'static str {
        match self {
            OAuthCode::InvalidRequest => "invalid_request",
            OAuthCode::InvalidClient => "invalid_client",
            OAuthCode::InvalidGrant => "invalid_grant",
            OAuthCode::UnauthorizedClient => "unauthorized_client",
            OAuthCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthCode::InvalidScope => "invalid_scope",
            OAuthCode::ServerError => "server_error",
            OAuthCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthCode::Other => "slow_down",
        }
    }

    fn code(self) -> OAuthErrorCode {
        match self {
            OAuthCode::InvalidRequest => OAuthErrorCode::InvalidRequest,
            OAuthCode::InvalidClient => OAuthErrorCode::InvalidClient,
            OAuthCode::InvalidGrant => OAuthErrorCode::InvalidGrant,
            OAuthCode::UnauthorizedClient => OAuthErrorCode::UnauthorizedClient,
            OAuthCode::UnsupportedGrantType => OAuthErrorCode::UnsupportedGrantType,
            OAuthCode::InvalidScope => OAuthErrorCode::InvalidScope,
            OAuthCode::ServerError => OAuthErrorCode::ServerError,
            OAuthCode::TemporarilyUnavailable => OAuthErrorCode::TemporarilyUnavailable,
            OAuthCode::Other => OAuthErrorCode::Other,
        }
    }
}

/// A token's text and its time claims (absolute server seconds).
struct Minted {
    text: String,
    exp: Option<u64>,
    iat: Option<u64>,
    nbf: Option<u64>,
}

static JTI: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// Issued by the server at `EPOCH` (its clock), which is the session's `NOW`.
fn mint(token: &Token, kind: &str) -> Minted {
    match token {
        Token::Jwt { lifetime, nbf, iat } => {
            let exp = EPOCH + u64::from(*lifetime).max(1);
            let iat = iat.then_some(EPOCH);
            let nbf = nbf.map(|n| EPOCH + u64::from(n));
            let jti = JTI.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut payload =
                format!(r#"{{"token_type":"{kind}","exp":{exp},"jti":"{jti:032x}","user_id":42"#);
            if let Some(iat) = iat {
                payload.push_str(&format!(r#","iat":{iat}"#));
            }
            if let Some(nbf) = nbf {
                payload.push_str(&format!(r#","nbf":{nbf}"#));
            }
            payload.push('}');
            Minted {
                text: jws(r#"{"alg":"HS256","typ":"JWT"}"#, &payload),
                exp: Some(exp),
                iat,
                nbf,
            }
        }
        Token::Opaque(s) => {
            let mut text: String = s
                .chars()
                .filter(|c| c.is_ascii_graphic())
                .take(300)
                .collect();
            if text.is_empty() {
                text.push('x');
            }
            Minted {
                text,
                exp: None,
                iat: None,
                nbf: None,
            }
        }
    }
}

/// What must come of a structured answer.
enum Expect {
    Accepted {
        access: String,
        refresh: Option<String>,
        /// The refresh token's own claims leave it some life (else the session may drop it at
        /// the next poll: one second off a whole-second life of 1 s leaves nothing).
        refresh_lives: bool,
        /// The life the session can know at `NOW`, in ms (`None`: unknown, used until 401):
        /// `expires_in`, else `exp - iat`, else `exp` against the trusted wall clock, which
        /// also caps the other two.
        life_ms: Option<u64>,
        /// When it becomes usable, in ms after `NOW`.
        wait_ms: u64,
    },
    /// The error, and the refresh token it leaves (a refused answer's rotated one).
    Failed(RefreshError, Kept),
}

fn failed(e: RefreshError) -> Expect {
    Expect::Failed(e, Kept::Exact(None))
}

fn structured(spec: &Structured) {
    let dialect = Dialect::ALL[usize::from(spec.dialect % 4)];
    let grant = if spec.login && dialect.can_login() {
        Grant::Login
    } else {
        Grant::Refresh
    };
    let wall = spec
        .wall_skew
        .and_then(|skew| UnixTime::from_secs(EPOCH.saturating_add_signed(i64::from(skew))));
    let (status, body, retry_after, expect) = match &spec.answer {
        Answer::Success(s) => success(dialect, s, wall),
        Answer::Error(e) => error(dialect, grant, e),
    };
    let short = usize::from(spec.dialect >> 2);
    let mut s = in_flight(dialect, grant, short);
    let answer = TokenResponse {
        status,
        body: body.as_bytes(),
        retry_after,
    };
    let result = s.handle_token_response(NOW, wall, &answer);
    if std::env::var_os("JWT_REFRESH_FUZZ_TRACE").is_some() {
        eprintln!("{spec:?}\n{dialect:?} {grant:?} {status} {body}\n-> {result:?}");
    }
    match expect {
        Expect::Failed(want, kept) => {
            assert_eq!(result, Err(want), "answer {status} {body}");
            let again = || {
                let mut s = in_flight(dialect, grant, short);
                let _ = s.handle_token_response(NOW, wall, &answer);
                s
            };
            after_failure(&mut s, dialect, grant, want, kept, again);
        }
        Expect::Accepted {
            access,
            refresh,
            refresh_lives,
            life_ms,
            wait_ms,
        } => {
            assert_eq!(result, Ok(grant), "answer {status} {body}");
            let mut said = poll(&mut s, NOW);
            if let Some(r) = &refresh {
                match said {
                    Said::Persist(secret) => assert_eq!(&secret, r),
                    other => panic!("not handed over for saving: {other:?}"),
                }
                s.handle_persisted(false);
                said = poll(&mut s, NOW);
            } else if grant == Grant::Refresh {
                assert!(s.has_refresh_token(), "the old refresh token was dropped");
            }
            let lease = s.lease().expect("a lease");
            assert_eq!(
                lease.usable_at,
                NOW.saturating_add(Duration::from_millis(wait_ms)),
                "usable_at of {body}"
            );
            match (said, wait_ms) {
                (Said::Send(authorization), 0) => {
                    assert_eq!(authorization, format!("Bearer {access}"));
                }
                (Said::Timeout(at), w) if w > 0 => assert_eq!(at, lease.usable_at),
                (other, _) => panic!("after a success: {other:?} (nbf wait {wait_ms} ms)"),
            }
            match life_ms {
                None => assert_eq!(lease.expires_at, Instant::MAX, "an unknown life scheduled"),
                Some(life) => {
                    let expires = lease.expires_at.saturating_duration_since(NOW).as_millis();
                    assert!(
                        expires <= life,
                        "lease of {expires} ms for a {life} ms token"
                    );
                    assert!(
                        expires >= life / 2,
                        "lease of {expires} ms for a {life} ms token"
                    );
                    assert!(lease.refresh_at <= lease.expires_at);
                    assert!(lease.refresh_at >= lease.usable_at);
                }
            }
            if refresh_lives {
                assert!(s.has_refresh_token() || (grant == Grant::Login && refresh.is_none()));
            }
        }
    }
}

fn success(
    dialect: Dialect,
    spec: &Success,
    wall: Option<UnixTime>,
) -> (u16, String, Option<Duration>, Expect) {
    let escape = match spec.escape {
        EscapeSel::Minimal => Escape::Minimal,
        EscapeSel::Everything => Escape::Everything,
        EscapeSel::Short => Escape::Short,
    };
    let access = mint(&spec.access, "access");
    let refresh = spec.refresh.as_ref().map(|t| mint(t, "refresh"));
    let oauth = dialect.oauth();
    let (access_key, refresh_key) = if oauth {
        ("access_token", "refresh_token")
    } else {
        ("access", "refresh")
    };
    let mut members: Vec<String> = Vec::new();
    let access_json = json_str(&access.text, escape);
    members.push(format!("\"{access_key}\":{access_json}"));
    let refresh_json = refresh.as_ref().map(|r| json_str(&r.text, escape));
    if let Some(r) = &refresh_json {
        members.push(format!("\"{refresh_key}\":{r}"));
    }
    let mut expires_in = None;
    // `expires_in` is no whole number of seconds the crate reads.
    let mut bad_expires_in = false;
    let mut too_deep = false;
    if oauth {
        match spec.token_type {
            TokenType::Bearer => members.push(r#""token_type":"Bearer""#.into()),
            TokenType::Lower => members.push(r#""token_type":"bearer""#.into()),
            TokenType::Upper => members.push(r#""token_type":"BEARER""#.into()),
            TokenType::Omitted => {}
        }
        match spec.expires_in {
            Some(ExpiresIn::Number(n)) => {
                expires_in = Some(u64::from(n));
                members.push(format!(r#""expires_in":{n}"#));
            }
            Some(ExpiresIn::Text(n)) => {
                expires_in = Some(u64::from(n));
                members.push(format!(r#""expires_in":"{n}""#));
            }
            Some(ExpiresIn::Fraction(n, f)) => {
                // Exact: none of these is within an f64 step of the next integer.
                if cfg!(feature = "float-dates") {
                    expires_in = Some(u64::from(n));
                } else {
                    bad_expires_in = true;
                }
                members.push(format!(r#""expires_in":{n}.{:03}"#, f % 1000));
            }
            Some(ExpiresIn::Exponent {
                mantissa,
                digit,
                exp,
            }) => {
                let (digit, exp) = (digit % 10, exp % 10);
                // (mantissa * 10 + digit) * 10^(exp - 1), floored.
                let tenths = u64::from(mantissa) * 10 + u64::from(digit);
                let value = if exp == 0 {
                    tenths / 10
                } else {
                    tenths * 10u64.pow(u32::from(exp) - 1)
                };
                if cfg!(feature = "float-dates") {
                    expires_in = Some(value);
                } else {
                    bad_expires_in = true;
                }
                members.push(format!(r#""expires_in":{mantissa}.{digit}e+{exp}"#));
            }
            Some(ExpiresIn::Negative(n)) => {
                // `-0` floors to 0 with `float-dates` (and is then no usable lifetime).
                if cfg!(feature = "float-dates") && n == 0 {
                    expires_in = Some(0);
                } else {
                    bad_expires_in = true;
                }
                members.push(format!(r#""expires_in":-{n}"#));
            }
            None => {}
        }
    }
    for extra in &spec.extras {
        members.push(match extra {
            Extra::Scope(s) => format!(r#""scope":{}"#, json_str(s, escape)),
            Extra::Number(n) => format!(r#""user_id":{n}"#),
            Extra::Nested(d) => {
                // Two levels each, below the top-level object: up to 7 fit the 16 allowed.
                let d = usize::from(d % 12);
                too_deep |= 1 + 2 * d > MAX_NESTING;
                format!(r#""x-nested":{}0{}"#, "[{\"a\":".repeat(d), "}]".repeat(d))
            }
            Extra::Null => r#""id_token":null"#.into(),
            Extra::Detail(s) => format!(r#""detail":{}"#, json_str(s, escape)),
        });
    }
    let n = members.len();
    members.rotate_left(usize::from(spec.rotate) % n);
    let sep = if spec.spaced { ", " } else { "," };
    let body = format!("{{{}}}", members.join(sep));
    let status = 200 + u16::from(spec.status % 100);

    // The schedule by the documented rules (policy.rs): an escaped token is opaque.
    let plain = |json: &str, text: &str| json == format!("\"{text}\"");
    let (exp, iat, nbf) = if plain(&access_json, &access.text) {
        (access.exp, access.iat, access.nbf)
    } else {
        (None, None, None)
    };
    let wall = wall.map(UnixTime::as_secs);
    // A trusted wall clock bounds every life at `exp - wall` (an old answer replayed by a
    // cache), and `exp` at or before it is expired, whatever `expires_in` or `exp - iat` say.
    let wall_left = match (exp, wall) {
        (Some(exp), Some(wall)) => Some(exp.checked_sub(wall).filter(|&s| s > 0)),
        _ => None,
    };
    // Only when it says more than a second less (the wall clock's whole-second resolution).
    let cap = |secs: u64| {
        wall_left
            .flatten()
            .filter(|&left| left.saturating_add(1) < secs)
            .map_or(secs, |left| left)
    };
    let secs: Option<Result<u64, LeaseError>> = match (expires_in, exp, iat, wall_left) {
        (.., Some(None)) => Some(Err(LeaseError::Expired)),
        (Some(e), ..) => Some(Ok(cap(e))),
        (None, Some(exp), Some(iat), _) => Some(Ok(cap(exp.saturating_sub(iat)))),
        (None, Some(_), None, Some(Some(left))) => Some(Ok(left)),
        _ => None,
    };
    let wait_ms = match (nbf, iat, wall) {
        (Some(nbf), Some(iat), _) => nbf.saturating_sub(iat) * 1000,
        (Some(nbf), None, Some(wall)) => nbf.saturating_sub(wall) * 1000,
        _ => 0,
    };
    // A plain JWT refresh token's own life: `exp - iat`, else `exp` against the wall clock.
    let refresh_lives = match (&refresh, &refresh_json) {
        (Some(r), Some(json)) if plain(json, &r.text) => match (r.exp, r.iat, wall) {
            (Some(exp), Some(iat), _) => exp.saturating_sub(iat) > 1,
            (Some(exp), None, Some(wall)) => exp.saturating_sub(wall) > 1,
            _ => true,
        },
        _ => true,
    };
    let accepted = |life_ms: Option<u64>, wait_ms: u64| Expect::Accepted {
        access: access.text.clone(),
        refresh: refresh.as_ref().map(|r| r.text.clone()),
        refresh_lives,
        life_ms,
        wait_ms,
    };
    let expect = match secs {
        // The body is read before anything is scheduled: nesting first (before parsing), then
        // `expires_in` (the only failing member; unknown members follow any order).
        _ if too_deep => failed(RefreshError::Endpoint(EndpointError::BadAnswer(
            AnswerError::Json,
        ))),
        _ if bad_expires_in => failed(RefreshError::Endpoint(EndpointError::BadAnswer(
            AnswerError::InvalidExpiresIn,
        ))),
        Some(Err(e)) => failed(RefreshError::Refused(TokenError::Unschedulable(e))),
        // One second off a whole-second life (the server floors `iat`): 1 s leaves nothing.
        Some(Ok(0 | 1)) => failed(RefreshError::Refused(TokenError::Unschedulable(
            LeaseError::NonPositiveLifetime,
        ))),
        Some(Ok(secs)) => {
            let ms = secs * 1000;
            if wait_ms >= ms - 1000 {
                failed(RefreshError::Refused(TokenError::Unschedulable(
                    LeaseError::NeverUsable,
                )))
            } else {
                accepted(Some(ms), wait_ms)
            }
        }
        None => accepted(None, wait_ms),
    };
    // An access token refused by the lease: the rotated refresh token is kept unless its own
    // claims say it is dead (`exp` at or before the wall clock, without `iat`), and dies when
    // they say (one second off a whole-second life).
    let expect = match (expect, &refresh, &refresh_json) {
        (
            Expect::Failed(
                e @ RefreshError::Refused(TokenError::Unschedulable(LeaseError::Expired)),
                _,
            ),
            _,
            _,
        ) => Expect::Failed(e, Kept::Exact(None)),
        (Expect::Failed(e @ RefreshError::Refused(_), _), Some(r), Some(json)) => {
            let life = |secs: u64| {
                Life::At(NOW.saturating_add(Duration::from_secs(secs.saturating_sub(1))))
            };
            let kept = match (plain(json, &r.text), r.exp, r.iat, wall) {
                (true, Some(exp), Some(iat), _) => Some(life(exp.saturating_sub(iat))),
                (true, Some(exp), None, Some(wall)) => {
                    exp.checked_sub(wall).filter(|&s| s > 0).map(life)
                }
                _ => Some(Life::Never),
            };
            Expect::Failed(e, Kept::Exact(kept.map(|life| (r.text.clone(), life))))
        }
        (expect, _, _) => expect,
    };
    // A (plain) refresh token already dead by its own `exp` and the wall clock is refused.
    let expect = match (&expect, &refresh, &refresh_json, wall) {
        (Expect::Accepted { .. }, Some(r), Some(json), Some(wall))
            if plain(json, &r.text) && r.iat.is_none() && r.exp.is_some_and(|e| e <= wall) =>
        {
            failed(RefreshError::Refused(TokenError::Unschedulable(
                LeaseError::Expired,
            )))
        }
        _ => expect,
    };
    (status, body, None, expect)
}

fn error(
    dialect: Dialect,
    grant: Grant,
    e: &ErrorAnswer,
) -> (u16, String, Option<Duration>, Expect) {
    let oauth = dialect.oauth();
    let config = |status: u16, code: Option<OAuthErrorCode>| {
        failed(RefreshError::Endpoint(EndpointError::Configuration {
            status,
            code,
        }))
    };
    match e {
        ErrorAnswer::TokenNotValid { blacklisted } => {
            let detail = if *blacklisted {
                "Token is blacklisted"
            } else {
                "Token is expired"
            };
            let body = format!(r#"{{"detail":"{detail}","code":"token_not_valid"}}"#);
            let expect = match (oauth, grant) {
                (false, Grant::Refresh) => {
                    failed(RefreshError::Endpoint(EndpointError::RefreshTokenRejected))
                }
                (false, Grant::Login) => {
                    failed(RefreshError::Endpoint(EndpointError::CredentialsRejected))
                }
                (true, _) => config(401, None),
            };
            (401, body, None, expect)
        }
        ErrorAnswer::NoActiveAccount => {
            let body = r#"{"detail":"No active account found with the given credentials"}"#;
            let expect = match (oauth, grant) {
                (false, Grant::Login) => {
                    failed(RefreshError::Endpoint(EndpointError::CredentialsRejected))
                }
                _ => config(401, None),
            };
            (401, body.into(), None, expect)
        }
        ErrorAnswer::FieldErrors => {
            let body = r#"{"refresh":["This field is required."]}"#;
            (400, body.into(), None, config(400, None))
        }
        ErrorAnswer::OAuth { code, status } => {
            // 400 or 401 mostly; any non-transient, non-2xx status.
            let status = match status % 8 {
                0..=4 => 400,
                5 | 6 => 401,
                _ => 403,
            };
            let body = format!(
                r#"{{"error":"{}","error_description":"see the docs"}}"#,
                code.text()
            );
            let expect = if !oauth {
                match (status, grant) {
                    (401, Grant::Login) => {
                        failed(RefreshError::Endpoint(EndpointError::CredentialsRejected))
                    }
                    _ => config(status, None),
                }
            } else {
                match (code, grant) {
                    (OAuthCode::InvalidGrant, Grant::Refresh) => {
                        failed(RefreshError::Endpoint(EndpointError::RefreshTokenRejected))
                    }
                    (OAuthCode::InvalidClient, Grant::Login) => {
                        failed(RefreshError::Endpoint(EndpointError::CredentialsRejected))
                    }
                    (OAuthCode::ServerError | OAuthCode::TemporarilyUnavailable, _) => {
                        failed(RefreshError::Endpoint(EndpointError::Unavailable {
                            status,
                            retry_after: None,
                        }))
                    }
                    _ => config(status, Some(code.code())),
                }
            };
            (status, body, None, expect)
        }
        ErrorAnswer::Unavailable {
            status,
            retry_after,
            html,
        } => {
            let statuses = [500u16, 502, 503, 504, 429, 408, 425, 599];
            let status = statuses[usize::from(*status) % statuses.len()];
            let retry_after = retry_after.map(|s| Duration::from_secs(u64::from(s)));
            let body = if *html {
                "<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
            } else {
                ""
            };
            (
                status,
                body.into(),
                retry_after,
                failed(RefreshError::Endpoint(EndpointError::Unavailable {
                    status,
                    retry_after,
                })),
            )
        }
    }
}
