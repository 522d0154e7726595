//! The `Transport`: instead of a network, an auth server and an API server played inside the
//! firmware. They keep real state, as Django REST Framework SimpleJWT and an OAuth 2.0 token
//! endpoint would: which tokens were issued when, refresh-token rotation with blacklisting of
//! the old token, expiry on the server's clock, and revocation. The script injects faults
//! (no answer, 503 with `Retry-After`, revoked tokens) between requests.
//!
//! Every request costs [`LATENCY_MS`] of simulated time. The server checks each request's
//! method, path, content type, body and `Authorization` header exactly, and logs what it saw.

use jwt_refresh::transport::{
    BearerError, Endpoint, ErrorKind, ErrorType, Method, Request, Response, Transport,
};
use jwt_refresh::Duration;

use crate::sim::{Event, Log, SimClock, Tok, NO_ANSWER};
use crate::stack;
use crate::tokens::{OAUTH_ACCESS, OAUTH_REFRESH, SIMPLEJWT_ACCESS, SIMPLEJWT_REFRESH};

/// Simulated round-trip time of every request.
pub const LATENCY_MS: u64 = 40;

/// SimpleJWT's `ACCESS_TOKEN_LIFETIME` and `REFRESH_TOKEN_LIFETIME` (the tokens' `exp - iat`).
const SIMPLEJWT_ACCESS_MS: u64 = 300_000;
const SIMPLEJWT_REFRESH_MS: u64 = 86_400_000;
/// The OAuth 2.0 server's `expires_in`.
pub const OAUTH_EXPIRES_IN_S: u64 = 600;

/// The device's SimpleJWT credentials, and the login body the client must send.
pub const USERNAME: &str = "device-7";
pub const PASSWORD: &str = "hunter2";
const LOGIN_BODY: &[u8] = br#"{"username":"device-7","password":"hunter2"}"#;

/// The OAuth 2.0 client registration (HTTP Basic client authentication), and its header.
pub const CLIENT_ID: &str = "device-7";
pub const CLIENT_SECRET: &str = "s3cret";
const BASIC: &str = "Basic ZGV2aWNlLTc6czNjcmV0"; // base64("device-7:s3cret")
pub const SCOPE: &str = "telemetry";

pub const SIMPLEJWT_LOGIN_PATH: &str = "/api/token/";
pub const SIMPLEJWT_REFRESH_PATH: &str = "/api/token/refresh/";
pub const OAUTH_TOKEN_PATH: &str = "/oauth/token";

const JSON: &str = "application/json";
const FORM: &str = "application/x-www-form-urlencoded";

/// What the token endpoint does to the next token request instead of answering it.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// The request times out: the transport reports `ErrorKind::TimedOut`.
    NoAnswer,
    /// 503 with `Retry-After` in seconds.
    Unavailable { retry_after_s: u64 },
}

/// One issued token's server-side record.
#[derive(Clone, Copy)]
struct Issued {
    at_ms: u64,
    revoked: bool,
}

const N: usize = SIMPLEJWT_ACCESS.len();

/// Issued tokens of one kind, in issue order (the token tables in `tokens.rs`).
struct Ledger {
    issued: [Option<Issued>; N],
    next: usize,
}

impl Ledger {
    const fn new() -> Self {
        Ledger {
            issued: [None; N],
            next: 0,
        }
    }

    /// Issues the next token; `None` when the table is exhausted.
    fn issue(&mut self, now_ms: u64) -> Option<usize> {
        let n = self.next;
        *self.issued.get_mut(n)? = Some(Issued {
            at_ms: now_ms,
            revoked: false,
        });
        self.next += 1;
        Some(n)
    }

    fn is_valid(&self, n: usize, now_ms: u64, lifetime_ms: u64) -> bool {
        matches!(self.issued.get(n), Some(Some(t)) if !t.revoked && now_ms < t.at_ms + lifetime_ms)
    }

    fn revoke(&mut self, n: usize) {
        if let Some(Some(t)) = self.issued.get_mut(n) {
            t.revoked = true;
        }
    }

    /// The newest token issued, if any.
    fn last(&self) -> Option<usize> {
        self.next.checked_sub(1)
    }
}

/// Which token table `token` comes from, and its index there.
#[inline(never)]
pub fn identify(token: &str) -> Tok {
    let find = |table: &[&str; N]| table.iter().position(|t| *t == token).map(|n| n as u8);
    if let Some(n) = find(&SIMPLEJWT_ACCESS) {
        Tok::A(n)
    } else if let Some(n) = find(&SIMPLEJWT_REFRESH) {
        Tok::R(n)
    } else if let Some(n) = find(&OAUTH_ACCESS) {
        Tok::OA(n)
    } else if let Some(n) = find(&OAUTH_REFRESH) {
        Tok::OR(n)
    } else {
        Tok::Unknown
    }
}

/// The transport's error.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum NetError {
    TimedOut,
    TooLarge,
}

impl jwt_refresh::transport::Error for NetError {
    fn kind(&self) -> ErrorKind {
        match self {
            NetError::TimedOut => ErrorKind::TimedOut,
            NetError::TooLarge => ErrorKind::BufferTooSmall,
        }
    }
}

/// Writes an answer's body into the client's buffer; a body that does not fit is an error.
struct Body<'b> {
    buf: &'b mut [u8],
    len: usize,
    overflow: bool,
}

impl<'b> Body<'b> {
    fn new(buf: &'b mut [u8]) -> Self {
        Body {
            buf,
            len: 0,
            overflow: false,
        }
    }

    fn put(&mut self, s: &str) -> &mut Self {
        match self.buf.get_mut(self.len..self.len + s.len()) {
            Some(dst) => {
                dst.copy_from_slice(s.as_bytes());
                self.len += s.len();
            }
            None => self.overflow = true,
        }
        self
    }

    fn respond(&self, status: u16) -> Result<Response, NetError> {
        if self.overflow {
            return Err(NetError::TooLarge);
        }
        Ok(Response::new(status, self.len))
    }
}

/// `body` with `prefix` and `suffix` removed, as text.
fn between<'a>(body: &'a [u8], prefix: &str, suffix: &str) -> Option<&'a str> {
    let inner = body
        .strip_prefix(prefix.as_bytes())?
        .strip_suffix(suffix.as_bytes())?;
    core::str::from_utf8(inner).ok()
}

/// The auth server and the API server.
pub struct Server<'a> {
    clock: &'a SimClock,
    log: &'a Log,
    access: Ledger,
    refresh: Ledger,
    oauth_access: Ledger,
    oauth_refresh: Ledger,
    /// SimpleJWT `ROTATE_REFRESH_TOKENS` (with `BLACKLIST_AFTER_ROTATION`).
    pub rotate: bool,
    /// What happens to the next token request.
    pub fault: Option<Fault>,
    /// The API rejects every token (it does not trust the auth server's signing key).
    pub api_rejects_all: bool,
    /// API requests answered.
    pub api_requests: u32,
    /// Token endpoint requests seen.
    pub token_requests: u32,
}

impl<'a> Server<'a> {
    pub fn new(clock: &'a SimClock, log: &'a Log) -> Self {
        Server {
            clock,
            log,
            access: Ledger::new(),
            refresh: Ledger::new(),
            oauth_access: Ledger::new(),
            oauth_refresh: Ledger::new(),
            rotate: false,
            fault: None,
            api_rejects_all: false,
            api_requests: 0,
            token_requests: 0,
        }
    }

    /// Revokes the newest SimpleJWT access token (an administrator ends the session's access).
    pub fn revoke_access(&mut self) {
        if let Some(n) = self.access.last() {
            self.access.revoke(n);
        }
    }

    /// Blacklists the newest SimpleJWT refresh token (a "log out everywhere").
    pub fn blacklist_refresh(&mut self) {
        if let Some(n) = self.refresh.last() {
            self.refresh.revoke(n);
        }
    }

    /// Revokes the newest OAuth 2.0 refresh token.
    pub fn revoke_oauth_refresh(&mut self) {
        if let Some(n) = self.oauth_refresh.last() {
            self.oauth_refresh.revoke(n);
        }
    }

    /// `POST /api/token/`: SimpleJWT login.
    fn simplejwt_login(&mut self, request: &Request<'_>, out: &mut Body<'_>) -> u16 {
        let now = self.clock.now_ms();
        if request.body != LOGIN_BODY {
            out.put(r#"{"detail":"No active account found with the given credentials"}"#);
            return 401;
        }
        match (self.access.issue(now), self.refresh.issue(now)) {
            (Some(a), Some(r)) => {
                out.put(r#"{"refresh":""#)
                    .put(SIMPLEJWT_REFRESH[r])
                    .put(r#"","access":""#)
                    .put(SIMPLEJWT_ACCESS[a])
                    .put(r#""}"#);
                200
            }
            _ => 500,
        }
    }

    /// `POST /api/token/refresh/`: SimpleJWT refresh, rotating when `rotate` is on.
    fn simplejwt_refresh(&mut self, token: Tok, out: &mut Body<'_>) -> u16 {
        let now = self.clock.now_ms();
        let Tok::R(old) = token else {
            out.put(r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#);
            return 401;
        };
        let old = usize::from(old);
        if !self.refresh.is_valid(old, now, SIMPLEJWT_REFRESH_MS) {
            out.put(r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#);
            return 401;
        }
        let Some(a) = self.access.issue(now) else {
            return 500;
        };
        out.put(r#"{"access":""#).put(SIMPLEJWT_ACCESS[a]);
        if self.rotate {
            let Some(r) = self.refresh.issue(now) else {
                return 500;
            };
            self.refresh.revoke(old); // BLACKLIST_AFTER_ROTATION
            out.put(r#"","refresh":""#).put(SIMPLEJWT_REFRESH[r]);
        }
        out.put(r#""}"#);
        200
    }

    /// `POST /oauth/token`: the client-credentials and refresh-token grants.
    fn oauth_token(&mut self, grant: OAuthGrant, out: &mut Body<'_>) -> u16 {
        let now = self.clock.now_ms();
        let new_refresh = match grant {
            OAuthGrant::ClientCredentials => true,
            OAuthGrant::Refresh(Tok::OR(n))
                if self
                    .oauth_refresh
                    .is_valid(usize::from(n), now, u64::MAX / 2) =>
            {
                false
            }
            OAuthGrant::Refresh(_) => {
                out.put(r#"{"error":"invalid_grant","error_description":"refresh token revoked"}"#);
                return 400;
            }
        };
        let Some(a) = self.oauth_access.issue(now) else {
            return 500;
        };
        out.put(r#"{"access_token":""#)
            .put(OAUTH_ACCESS[a])
            .put(r#"","token_type":"Bearer","expires_in":600"#);
        if new_refresh {
            let Some(r) = self.oauth_refresh.issue(now) else {
                return 500;
            };
            out.put(r#","refresh_token":""#)
                .put(OAUTH_REFRESH[r])
                .put("\"");
        }
        out.put(r#","scope":"telemetry"}"#);
        200
    }

    /// The token endpoints: checks the request, logs it, applies a pending fault, answers.
    fn token_endpoint(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, NetError> {
        self.token_requests += 1;
        let form = request.content_type == Some(FORM) && request.authorization == Some(BASIC);
        let json = request.content_type == Some(JSON) && request.authorization.is_none();
        // What the client asked for; `None`: a malformed request.
        let kind = match (request.method, request.path) {
            (Method::Post, SIMPLEJWT_LOGIN_PATH) if json => Some(Asked::Login),
            (Method::Post, SIMPLEJWT_REFRESH_PATH) if json => {
                between(request.body, r#"{"refresh":""#, r#""}"#)
                    .map(|t| Asked::Refresh(identify(t)))
            }
            (Method::Post, OAUTH_TOKEN_PATH) if form => {
                if request.body == b"grant_type=client_credentials&scope=telemetry" {
                    Some(Asked::Login)
                } else {
                    between(
                        request.body,
                        "grant_type=refresh_token&refresh_token=",
                        "&scope=telemetry",
                    )
                    .map(|t| Asked::Refresh(identify(t)))
                }
            }
            _ => None,
        };
        let mut out = Body::new(body);
        let (status, retry_after) = match (self.fault.take(), kind) {
            (Some(Fault::NoAnswer), _) => (NO_ANSWER, None),
            (Some(Fault::Unavailable { retry_after_s }), _) => {
                out.put(r#"{"detail":"Service unavailable"}"#);
                (503, Some(Duration::from_secs(retry_after_s)))
            }
            (None, None) => {
                out.put(r#"{"detail":"Bad request"}"#);
                (400, None)
            }
            (None, Some(asked)) => {
                let status = match (request.path, asked) {
                    (SIMPLEJWT_LOGIN_PATH, _) => self.simplejwt_login(request, &mut out),
                    (SIMPLEJWT_REFRESH_PATH, Asked::Refresh(t)) => {
                        self.simplejwt_refresh(t, &mut out)
                    }
                    (_, Asked::Login) => self.oauth_token(OAuthGrant::ClientCredentials, &mut out),
                    (_, Asked::Refresh(t)) => self.oauth_token(OAuthGrant::Refresh(t), &mut out),
                };
                (status, None)
            }
        };
        self.log.push(match kind {
            Some(Asked::Refresh(with)) => Event::Refresh { with, status },
            _ => Event::Login { status },
        });
        if status == NO_ANSWER {
            return Err(NetError::TimedOut);
        }
        let mut response = out.respond(status)?;
        response.retry_after = retry_after;
        Ok(response)
    }

    /// The API: `Authorization: Bearer <token>` must name a valid, unrevoked, unexpired token.
    fn api(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, NetError> {
        self.api_requests += 1;
        let now = self.clock.now_ms();
        let token = request
            .authorization
            .and_then(|h| h.strip_prefix("Bearer "))
            .map_or(Tok::Unknown, identify);
        let valid = !self.api_rejects_all
            && match token {
                Tok::A(n) => self
                    .access
                    .is_valid(usize::from(n), now, SIMPLEJWT_ACCESS_MS),
                Tok::OA(n) => {
                    self.oauth_access
                        .is_valid(usize::from(n), now, OAUTH_EXPIRES_IN_S * 1000)
                }
                _ => false,
            };
        let request_ok = matches!(
            (request.method, request.path, request.content_type),
            (Method::Get, "/api/telemetry/", None) | (Method::Post, "/api/readings/", Some(JSON))
        );
        let mut out = Body::new(body);
        let mut challenge = None;
        let status = if !valid {
            out.put(
                r#"{"detail":"Given token not valid for any token type","code":"token_not_valid"}"#,
            );
            // What an HTTP stack would hand over from the `WWW-Authenticate` header.
            challenge = BearerError::parse(r#"Bearer realm="api", error="invalid_token""#);
            401
        } else if !request_ok {
            out.put(r#"{"detail":"Not found."}"#);
            404
        } else {
            out.put(r#"{"ok":true}"#);
            200
        };
        self.log.push(Event::Api {
            with: token,
            status,
        });
        let mut response = out.respond(status)?;
        response.bearer_error = challenge;
        Ok(response)
    }
}

#[derive(Clone, Copy)]
enum Asked {
    Login,
    Refresh(Tok),
}

#[derive(Clone, Copy)]
enum OAuthGrant {
    ClientCredentials,
    Refresh(Tok),
}

impl ErrorType for Server<'_> {
    type Error = NetError;
}

impl Transport for Server<'_> {
    #[inline(never)]
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, NetError> {
        stack::note_callback();
        self.clock.advance_ms(LATENCY_MS);
        match request.endpoint {
            Endpoint::Auth => self.token_endpoint(request, body),
            Endpoint::Api => self.api(request, body),
        }
    }
}
