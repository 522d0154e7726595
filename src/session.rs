//! The sans-IO session: holds the access and refresh tokens with their deadlines and, given the
//! current monotonic time, says what to do before the next API request: send, refresh, log in,
//! persist a rotated refresh token, wait, or give up. It never reads a clock and never does I/O.
//!
//! **Call protocol: every input (`set_*`, `handle_*`, `logout`) may change what the session
//! wants; call [`Session::poll`] before each API request and act on its [`Output`] until it
//! says [`Output::Send`] (or [`Output::Timeout`], [`Output::LoginRequired`],
//! [`Output::Failed`]). Calling `poll` early or twice is harmless. `now` is an argument
//! everywhere.**

use core::fmt;

use heapless::String;

use crate::claims::TimeClaims;
use crate::json::RawStr;
use crate::policy::{floored_lifetime, Jitter, Lease, LeaseError, RefreshPolicy, TokenFacts};
use crate::protocol::{
    is_access_char, is_refresh_char, BufferTooSmall, EndpointError, FailureClass, Grant, Protocol,
    Request, TokenKind, TokenResponse, Tokens,
};
use crate::time::{Duration, Instant, UnixTime};
use crate::wipe;

/// Default capacity of the access token buffer, `Bearer ` prefix included: 1536 bytes. SimpleJWT
/// access tokens are about 230 to 300 bytes; OAuth providers' can exceed 1 KiB.
pub const DEFAULT_ACCESS_CAPACITY: usize = 1536;

/// Default capacity of the refresh token buffer: 1024 bytes.
pub const DEFAULT_REFRESH_CAPACITY: usize = 1024;

const BEARER: &str = "Bearer ";

/// Identifies one access token: [`Output::Send`] gives it, [`Session::handle_api_status`] takes
/// it back, so that a late 401 for a token already replaced does not reject its successor.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct TokenId(u32);

/// A borrowed secret. `Debug` does not show it; [`Secret::expose`] does.
#[derive(Clone, Copy)]
pub struct Secret<'a>(&'a str);

impl<'a> Secret<'a> {
    /// The secret's text, to hand to a store or a request.
    pub fn expose(&self) -> &'a str {
        self.0
    }
}

impl fmt::Debug for Secret<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// Why the session cannot get a token by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoginReason {
    /// There is no refresh token and no way to log in: provision tokens.
    NoCredentials,
    /// The refresh token was rejected and no login is configured.
    RefreshTokenRejected,
    /// The configured credentials were rejected: new ones are needed.
    CredentialsRejected,
    /// [`Session::logout`] was called.
    LoggedOut,
}

/// A token the session refuses to keep, whether handed to [`Session::set_tokens`] or
/// [`Session::set_refresh_token`] or carried by a token endpoint answer. The session's own
/// tokens are kept.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum TokenError {
    /// Longer than the session's buffer for it.
    TooLong {
        /// Which token.
        token: TokenKind,
        /// The buffer's capacity in bytes (for the access token, without `Bearer `).
        capacity: usize,
    },
    /// Empty, or with a character that cannot go into a header (access token: visible ASCII)
    /// or a request body (refresh token: visible ASCII and space).
    Invalid {
        /// Which token.
        token: TokenKind,
    },
    /// Its lifetime cannot be scheduled: none left, `nbf` after `exp`, or past its `exp` by the
    /// trusted wall clock.
    Unschedulable(LeaseError),
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TokenError::TooLong { token, capacity } => {
                write!(
                    f,
                    "the {token:?} token is longer than its {capacity}-byte buffer"
                )
            }
            TokenError::Invalid { token } => {
                write!(f, "the {token:?} token is empty or has invalid characters")
            }
            TokenError::Unschedulable(e) => write!(f, "unusable token: {e}"),
        }
    }
}

impl core::error::Error for TokenError {}

/// Why a refresh or login gave no new tokens, as the session saw it: the protocol's verdict on
/// the answer, no answer at all, or tokens the session refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RefreshError {
    /// The token endpoint's answer, as the protocol classifies it.
    Endpoint(EndpointError),
    /// No answer: the transport failed, or the request timed out.
    NoAnswer,
    /// The answer was read, but the session refused its tokens.
    Refused(TokenError),
    /// An answer (or a transport failure) was reported when no request was in flight; it was
    /// ignored and changed nothing.
    Unexpected,
    /// The answer rejected a refresh token that the session had already replaced (a late
    /// answer racing a rotation, or tokens provisioned meanwhile), or an older login after a
    /// newer answer left a refresh token: the newer refresh token is kept. Never reported when
    /// the session holds no refresh token.
    Superseded,
}

impl RefreshError {
    /// Retry later, log in again, or fatal. Only the token endpoint's own verdict can be
    /// anything but [`FailureClass::RetryLater`].
    pub const fn class(&self) -> FailureClass {
        match self {
            RefreshError::Endpoint(e) => e.class(),
            RefreshError::NoAnswer
            | RefreshError::Refused(_)
            | RefreshError::Unexpected
            | RefreshError::Superseded => FailureClass::RetryLater,
        }
    }
}

impl From<EndpointError> for RefreshError {
    fn from(e: EndpointError) -> Self {
        RefreshError::Endpoint(e)
    }
}

impl From<TokenError> for RefreshError {
    fn from(e: TokenError) -> Self {
        RefreshError::Refused(e)
    }
}

impl fmt::Display for RefreshError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RefreshError::Endpoint(e) => e.fmt(f),
            RefreshError::NoAnswer => f.write_str("the token endpoint did not answer"),
            RefreshError::Refused(e) => write!(f, "refused the answer's token: {e}"),
            RefreshError::Unexpected => f.write_str("an answer arrived with no request in flight"),
            RefreshError::Superseded => {
                f.write_str("the answer rejected a refresh token already replaced")
            }
        }
    }
}

impl core::error::Error for RefreshError {}

/// A failure that retrying soon will not mend, reported while no token is usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum SessionError {
    /// The token endpoint named a configuration problem (a 404, a redirect, a 400, a 401
    /// without `token_not_valid` to a refresh, `invalid_client`...). The session tries again
    /// by itself after a long backoff ([`RefreshPolicy::configuration_backoff`], about
    /// `backoff_max`), since one such answer may be forged; [`Session::reset`] tries at once.
    Configuration(EndpointError),
    /// The request buffer given to [`Session::poll`] is too small for the refresh or login
    /// (it was wiped). Until [`Session::reset`].
    BufferTooSmall(BufferTooSmall),
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Configuration(e) => e.fmt(f),
            SessionError::BufferTooSmall(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SessionError {}

/// What to do next, from [`Session::poll`].
///
/// `Debug` shows no secret: not the `Authorization` value, not the refresh token.
#[must_use]
pub enum Output<'a> {
    /// Send the API request with this `Authorization` header value (`Bearer <token>`), then
    /// report its status with [`Session::handle_api_status`] and this `token`.
    Send {
        /// The header value.
        authorization: &'a str,
        /// The token used, for [`Session::handle_api_status`].
        token: TokenId,
    },
    /// Send this refresh request, then report the answer with
    /// [`Session::handle_token_response`] (or [`Session::handle_no_answer`]).
    Refresh(Request<'a>),
    /// Send this login request, then report the answer the same way.
    Login(Request<'a>),
    /// Save this new refresh token (it was rotated or came with a login), then call
    /// [`Session::handle_persisted`]. The new tokens are not used before that.
    Persist(Secret<'a>),
    /// Nothing can be sent before this instant (`nbf`, backoff, a refresh in flight): wait,
    /// then poll again.
    Timeout(Instant),
    /// No token can be had without the application: provision tokens or credentials.
    LoginRequired(LoginReason),
    /// No usable token and a failure that retrying soon will not mend (see [`SessionError`]).
    Failed(SessionError),
}

impl fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Output::Send { token, .. } => f
                .debug_struct("Send")
                .field("authorization", &"Bearer <redacted>")
                .field("token", token)
                .finish(),
            Output::Refresh(r) => f.debug_tuple("Refresh").field(r).finish(),
            Output::Login(r) => f.debug_tuple("Login").field(r).finish(),
            Output::Persist(s) => f.debug_tuple("Persist").field(s).finish(),
            Output::Timeout(at) => f.debug_tuple("Timeout").field(at).finish(),
            Output::LoginRequired(r) => f.debug_tuple("LoginRequired").field(r).finish(),
            Output::Failed(e) => f.debug_tuple("Failed").field(e).finish(),
        }
    }
}

/// What to do with an API request after its status, from [`Session::handle_api_status`].
#[must_use]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ApiVerdict {
    /// Done: the answer is the application's.
    Done,
    /// The token was rejected: poll (which refreshes) and send the request once more.
    Retry,
    /// A 401 with a token fresh from the token endpoint: give up on this request; refreshing
    /// again would not help.
    Unauthorized,
}

/// Counters, for logs, metrics and tests. Every counter saturates.
///
/// The session counts what it sees itself (token-endpoint outcomes, API statuses, saves); the
/// driver step ([`SendStep`](crate::SendStep), and so `Client` and `AsyncClient`) adds what
/// only the I/O loop sees: API requests that failed in the transport, the retry it sent after a
/// 401, backoff sleeps and failed store clears.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub struct Stats {
    /// Successful refreshes.
    pub refreshes: u32,
    /// Successful logins.
    pub logins: u32,
    /// Failed refreshes and logins.
    pub failures: u32,
    /// API requests sent with a token: answered ([`Session::handle_api_status`]) or failed in
    /// the transport (driver).
    pub api_requests: u32,
    /// API answers with status 401.
    pub unauthorized: u32,
    /// API requests sent again, with a new token, after a 401 (driver).
    pub retries: u32,
    /// Backoff and `nbf` sleeps (driver).
    pub sleeps: u32,
    /// The time slept through those, in milliseconds (driver).
    pub slept_ms: u64,
    /// Refresh tokens that could not be saved ([`Session::handle_persisted`]`(false)`), and
    /// stores that could not be cleared (driver).
    pub store_failures: u32,
}

/// The driver's events that [`Stats`] counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Counted {
    /// An API request failed in the transport.
    ApiFailure,
    /// The API request was sent again after a 401.
    Retry,
    /// The loop slept this many milliseconds.
    Sleep(u32),
    /// The store could not be cleared.
    StoreFailure,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Idle,
    /// `gen`: the [`Session::refresh_gen`] of the refresh token the request carried.
    InFlight {
        grant: Grant,
        since: Instant,
        gen: u32,
    },
    Backoff {
        until: Instant,
    },
    LoginRequired(LoginReason),
    Failed(SessionError),
}

/// What is known of the current access token (its text is in `Session::access`).
#[derive(Clone, Copy, Debug)]
struct AccessMeta {
    lease: Lease,
    id: TokenId,
    /// From the token endpoint and not yet accepted by the API.
    fresh: bool,
    /// The API answered 401 to it.
    rejected: bool,
}

/// The decision of [`Session::poll`], before it borrows anything.
enum Decision {
    Send,
    /// Start a refresh or login; `usable`: the current token may still be sent.
    Request {
        grant: Grant,
        usable: bool,
    },
    Persist,
    Timeout(Instant),
    LoginRequired(LoginReason),
    Failed(SessionError),
}

/// A sans-IO token session. `A` is the access token capacity (with its `Bearer ` prefix), `R`
/// the refresh token capacity; `'c` borrows the protocol's paths and credentials.
///
/// `Debug` shows the state and deadlines, never the tokens.
pub struct Session<
    'c,
    const A: usize = DEFAULT_ACCESS_CAPACITY,
    const R: usize = DEFAULT_REFRESH_CAPACITY,
> {
    protocol: Protocol<'c>,
    policy: RefreshPolicy,
    /// `Bearer <access token>`, empty when there is none.
    access: String<A>,
    meta: Option<AccessMeta>,
    /// The refresh token, empty when there is none.
    refresh: String<R>,
    /// When the refresh token dies, by its own claims ([`Instant::MAX`] when unknown).
    refresh_expires_at: Instant,
    state: State,
    /// Consecutive failed refreshes or logins.
    failures: u32,
    jitter: Jitter,
    next_id: u32,
    persist_pending: bool,
    /// A refresh or login that timed out: its answer is still taken if it comes late (with
    /// rotation, dropping it would lose the only valid refresh token), whether or not another
    /// request went out since. Several abandoned requests share the slot, anchored at the
    /// earliest send instant (conservative). Cleared by a success, which supersedes them.
    /// The refresh token generation is the oldest among them.
    abandoned: Option<(Grant, Instant, u32)>,
    /// Counts replacements of the refresh token (saved, rotated, dropped): a request records
    /// the generation it carried, so that a late rejection of a token already replaced does
    /// not drop its successor.
    refresh_gen: u32,
    /// The configuration problem the token endpoint named at the last attempt: reported as
    /// [`Output::Failed`] while no token is usable, until the long backoff after it ends.
    configuration: Option<EndpointError>,
    /// How far the clock went back beyond the in-flight (or abandoned) request's send instant,
    /// which cannot go below zero: taken off the answer's deadlines.
    anchor_deficit: Duration,
    /// The next lease gets the wide jitter window: none yet, or since a logout or a failure
    /// that was not transient (the next token comes from a login or the application).
    first_lease: bool,
    /// The latest `now` seen, to notice a clock that goes backwards.
    last_now: Instant,
    stats: Stats,
}

impl<const A: usize, const R: usize> fmt::Debug for Session<'_, A, R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Session")
            .field("state", &self.state)
            .field("lease", &self.meta.map(|m| m.lease))
            .field("has_refresh_token", &!self.refresh.is_empty())
            .field("failures", &self.failures)
            .field("persist_pending", &self.persist_pending)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Dropping a session wipes both token buffers.
impl<const A: usize, const R: usize> Drop for Session<'_, A, R> {
    fn drop(&mut self) {
        wipe::string(&mut self.access);
        wipe::string(&mut self.refresh);
    }
}

impl<'c, const A: usize, const R: usize> Session<'c, A, R> {
    /// A session with no tokens yet.
    pub fn new(protocol: Protocol<'c>, policy: RefreshPolicy) -> Self {
        Session {
            protocol,
            jitter: Jitter::new(policy.seed),
            policy,
            access: String::new(),
            meta: None,
            refresh: String::new(),
            refresh_expires_at: Instant::MAX,
            state: State::Idle,
            failures: 0,
            next_id: 0,
            persist_pending: false,
            abandoned: None,
            refresh_gen: 0,
            configuration: None,
            anchor_deficit: Duration::ZERO,
            first_lease: true,
            last_now: Instant::ZERO,
            stats: Stats::default(),
        }
    }

    /// The refresh policy.
    pub fn policy(&self) -> &RefreshPolicy {
        &self.policy
    }

    /// The current access token's schedule, if there is one.
    pub fn lease(&self) -> Option<Lease> {
        self.meta.map(|m| m.lease)
    }

    /// Whether a refresh token is held.
    pub fn has_refresh_token(&self) -> bool {
        !self.refresh.is_empty()
    }

    /// Counters of refreshes, logins and failures.
    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// Whether a refresh or login is in flight (at most one ever is).
    pub fn is_refreshing(&self) -> bool {
        matches!(self.state, State::InFlight { .. })
    }

    /// The next instant at which the session wants to be polled even without a request to send
    /// (a proactive refresh, the end of a backoff, a request timeout); `None` when it does not.
    pub fn poll_timeout(&self) -> Option<Instant> {
        match self.state {
            State::InFlight { since, .. } => {
                Some(since.saturating_add(self.policy.request_timeout))
            }
            State::Backoff { until } => Some(until),
            State::Idle => self
                .meta
                .map(|m| m.lease.refresh_at)
                .filter(|&at| at != Instant::MAX),
            State::LoginRequired(_) | State::Failed(_) => None,
        }
    }

    /// Provisions a refresh token (from a store, say) without an access token. It is not handed
    /// back for persisting. A JWT refresh token already past its `exp` by the trusted wall clock
    /// is refused ([`LeaseError::Expired`]): the session logs in instead of sending it.
    pub fn set_refresh_token(
        &mut self,
        now: Instant,
        token: &str,
        wall: Option<UnixTime>,
    ) -> Result<(), TokenError> {
        self.observe(now);
        let raw = RawStr::plain(token);
        check_token(raw, TokenKind::Refresh, R)?;
        let expires_at = self.refresh_expiry(now, token, wall, false)?;
        self.store_refresh(raw, expires_at);
        self.reset_state();
        Ok(())
    }

    /// Provisions an access token, and optionally a refresh token, fetched by a request sent
    /// at `fetched_at` (the anchor of its deadlines). Neither is handed back for persisting.
    ///
    /// A provisioned token may have been issued long ago: with a trusted wall clock
    /// (`facts.wall_now`) its expiry is `exp` against that clock; without one it is scheduled
    /// from `exp - iat` as if fresh, and the API's first 401 leads to a refresh (provisioned
    /// tokens are not "fresh", so that 401 is not final).
    pub fn set_tokens(
        &mut self,
        now: Instant,
        fetched_at: Instant,
        access: &str,
        refresh: Option<&str>,
        facts: TokenFacts,
    ) -> Result<(), TokenError> {
        self.observe(now);
        let tokens = Tokens {
            access: RawStr::plain(access),
            refresh: refresh.map(RawStr::plain),
            expires_in: facts.expires_in,
        };
        self.accept(fetched_at, now, facts.wall_now, &tokens, false)?;
        self.reset_state();
        Ok(())
    }

    /// Forgets both tokens. The session then answers [`Output::LoginRequired`] until tokens are
    /// provisioned or [`Session::reset`] allows the configured login again.
    pub fn logout(&mut self) {
        wipe::string(&mut self.access);
        self.meta = None;
        self.forget_refresh();
        self.abandoned = None;
        self.failures = 0;
        self.first_lease = true;
        self.state = State::LoginRequired(LoginReason::LoggedOut);
    }

    /// Leaves a login-required or failed state (after the application fixed the cause), or a
    /// backoff, so that the next poll tries again at once. Tokens are kept.
    pub fn reset(&mut self) {
        self.reset_state();
    }

    fn reset_state(&mut self) {
        if !matches!(self.state, State::InFlight { .. }) {
            self.state = State::Idle;
        }
        self.failures = 0;
        self.configuration = None;
    }

    /// What to do before the next API request, at `now`. `buf` receives the body (and the
    /// HTTP Basic header) of a refresh or login request.
    pub fn poll<'a>(&'a mut self, now: Instant, buf: &'a mut [u8]) -> Output<'a> {
        let decision = self.decide(now);
        // Split borrows: a request borrows the protocol and the refresh token while the state
        // is updated beside it.
        let Session {
            protocol,
            access,
            meta,
            refresh,
            state,
            abandoned,
            anchor_deficit,
            refresh_gen,
            ..
        } = self;
        let send = Output::Send {
            authorization: access.as_str(),
            token: meta.map_or(TokenId(0), |m| m.id),
        };
        match decision {
            Decision::Send => send,
            Decision::Request { grant, usable } => {
                let built = match grant {
                    Grant::Refresh => protocol.refresh_request(refresh.as_str(), buf),
                    Grant::Login => match protocol.login_request(buf) {
                        Some(built) => built,
                        // Unreachable: `decide` logs in only when a login is configured.
                        None => {
                            *state = State::LoginRequired(LoginReason::NoCredentials);
                            return Output::LoginRequired(LoginReason::NoCredentials);
                        }
                    },
                };
                match built {
                    Ok(request) => {
                        *state = State::InFlight {
                            grant,
                            since: now,
                            gen: *refresh_gen,
                        };
                        if abandoned.is_none() {
                            *anchor_deficit = Duration::ZERO;
                        }
                        match grant {
                            Grant::Refresh => Output::Refresh(request),
                            Grant::Login => Output::Login(request),
                        }
                    }
                    Err(e) => {
                        let e = SessionError::BufferTooSmall(e);
                        *state = State::Failed(e);
                        if usable {
                            send
                        } else {
                            Output::Failed(e)
                        }
                    }
                }
            }
            Decision::Persist => Output::Persist(Secret(refresh.as_str())),
            Decision::Timeout(at) => Output::Timeout(at),
            Decision::LoginRequired(reason) => Output::LoginRequired(reason),
            Decision::Failed(e) => Output::Failed(e),
        }
    }

    fn decide(&mut self, now: Instant) -> Decision {
        self.observe(now);
        if let State::InFlight { grant, since, gen } = self.state {
            if now >= since.saturating_add(self.policy.request_timeout) {
                self.fail(now, RefreshError::NoAnswer);
                self.abandoned = Some(match self.abandoned {
                    Some((_, earlier, oldest)) => (grant, earlier.min(since), oldest),
                    None => (grant, since, gen),
                });
            }
        }
        if self.persist_pending {
            return Decision::Persist;
        }
        if self.has_refresh_token() && now >= self.refresh_expires_at {
            // A refresh token past its own `exp`: log in without sending it.
            self.forget_refresh();
        }
        let usable = self
            .meta
            .is_some_and(|m| !m.rejected && m.lease.is_usable(now));
        let due = self
            .meta
            .is_none_or(|m| m.rejected || now >= m.lease.refresh_at || now >= m.lease.expires_at);
        match self.state {
            State::InFlight { since, .. } => {
                return if usable {
                    Decision::Send
                } else {
                    Decision::Timeout(since.saturating_add(self.policy.request_timeout))
                };
            }
            State::Backoff { until } if now < until => {
                return match (usable, self.configuration) {
                    (true, _) => Decision::Send,
                    (false, Some(e)) => Decision::Failed(SessionError::Configuration(e)),
                    (false, None) => Decision::Timeout(until),
                };
            }
            State::Backoff { .. } => self.state = State::Idle,
            State::LoginRequired(reason) => {
                return if usable {
                    Decision::Send
                } else {
                    Decision::LoginRequired(reason)
                };
            }
            State::Failed(e) => {
                return if usable {
                    Decision::Send
                } else {
                    Decision::Failed(e)
                };
            }
            State::Idle => {}
        }
        if !due {
            return match self.meta {
                Some(m) if now < m.lease.usable_at => Decision::Timeout(m.lease.usable_at),
                _ => Decision::Send,
            };
        }
        let grant = if self.has_refresh_token() {
            Grant::Refresh
        } else if self.protocol.can_login() {
            Grant::Login
        } else if usable {
            // Due, but there is no way to refresh: use the token while it lasts.
            return Decision::Send;
        } else {
            self.state = State::LoginRequired(LoginReason::NoCredentials);
            return Decision::LoginRequired(LoginReason::NoCredentials);
        };
        Decision::Request { grant, usable }
    }

    /// Reports the token endpoint's answer to the refresh or login in flight. On success the
    /// new tokens replace the old ones; on any failure the old ones are kept, except a refresh
    /// token that the server definitively rejected.
    pub fn handle_token_response(
        &mut self,
        now: Instant,
        wall: Option<UnixTime>,
        answer: &TokenResponse<'_>,
    ) -> Result<Grant, RefreshError> {
        self.observe(now);
        let (grant, since, gen) = match (self.state, self.abandoned) {
            // It may answer an abandoned older request: its tokens are anchored at the
            // earliest send instant (conservative).
            (State::InFlight { grant, since, gen }, older) => {
                (grant, older.map_or(since, |(_, at, _)| at.min(since)), gen)
            }
            (_, Some(abandoned)) => {
                self.abandoned = None;
                abandoned
            }
            (_, None) => return Err(RefreshError::Unexpected),
        };
        // Whether the answer brings a refresh token (a new generation): its expiry is then in
        // the frame of `since`, like the lease's, and the deficit comes off it too.
        let refresh_gen_before = self.refresh_gen;
        let result = self
            .protocol
            .parse(grant, answer)
            .map_err(|e| match e {
                // A late answer racing a rotation rejects a token already replaced. A token
                // dropped since (by its own expiry) was replaced by nothing: the rejection is
                // the server's verdict on it.
                EndpointError::RefreshTokenRejected
                    if gen != self.refresh_gen && self.has_refresh_token() =>
                {
                    RefreshError::Superseded
                }
                // A late rejection of an older login, after a newer answer gave the session a
                // refresh token: that token decides, not the old login's credentials.
                EndpointError::CredentialsRejected
                    if gen != self.refresh_gen && self.has_refresh_token() =>
                {
                    RefreshError::Superseded
                }
                e => RefreshError::Endpoint(e),
            })
            .and_then(|tokens| {
                // The arrival in the frame of `since`, which the clock could not move back by
                // `anchor_deficit` (taken off every deadline below).
                let arrived_at = now.saturating_add(self.anchor_deficit);
                self.accept(since, arrived_at, wall, &tokens, true)
                    .map_err(RefreshError::Refused)
            });
        match result {
            Ok(()) => {
                let deficit = core::mem::replace(&mut self.anchor_deficit, Duration::ZERO);
                // A refresh token kept from before is already in the clock's frame (`observe`
                // moved it): only a new one takes the deficit.
                self.shift_lease(deficit);
                if self.refresh_gen != refresh_gen_before {
                    self.refresh_expires_at = shift(self.refresh_expires_at, deficit);
                }
                self.state = State::Idle;
                self.failures = 0;
                self.configuration = None;
                // Older requests' answers would only bring older tokens.
                self.abandoned = None;
                match grant {
                    Grant::Refresh => self.stats.refreshes = self.stats.refreshes.saturating_add(1),
                    Grant::Login => self.stats.logins = self.stats.logins.saturating_add(1),
                }
                Ok(grant)
            }
            Err(e) => {
                if self.refresh_gen != refresh_gen_before && self.has_refresh_token() {
                    // A rotated refresh token kept from a refused answer: its expiry, too, was
                    // counted in the frame of `since`.
                    self.refresh_expires_at = shift(self.refresh_expires_at, self.anchor_deficit);
                }
                self.fail(now, e);
                Err(e)
            }
        }
    }

    /// Reports that the refresh or login in flight got no answer (the transport failed or timed
    /// out). Counts as a transient failure.
    pub fn handle_no_answer(&mut self, now: Instant) -> Result<(), RefreshError> {
        self.observe(now);
        if !self.is_refreshing() {
            // The transport gave up on a request the session had already abandoned.
            return match self.abandoned.take() {
                Some(_) => Ok(()),
                None => Err(RefreshError::Unexpected),
            };
        }
        self.fail(now, RefreshError::NoAnswer);
        Ok(())
    }

    /// Reports that the refresh token from [`Output::Persist`] was saved (`saved`) or could not
    /// be.
    ///
    /// **An unsaved rotation keeps working in RAM and is reported.** When the save fails, the
    /// server has already issued the new refresh token, and with rotation and blacklisting the
    /// old one is dead: refusing the new tokens would lose the only valid refresh token, and
    /// retrying the save from here would block every request behind a broken store. So the
    /// new tokens are used, the failure is counted ([`Stats::store_failures`]) and the driver
    /// hands it to the application (`Client::take_store_error`), which decides (alert, retry
    /// the store, reboot). The next rotation is saved again as usual; a restart before then
    /// restores the older stored token, which the server may reject, leading to a login.
    pub fn handle_persisted(&mut self, saved: bool) {
        if !saved {
            self.stats.store_failures = self.stats.store_failures.saturating_add(1);
        }
        self.persist_pending = false;
    }

    /// Hands the current refresh token out for saving again ([`Output::Persist`] at the next
    /// poll), after a failed save once the store works again. Without a refresh token it does
    /// nothing.
    pub fn save_again(&mut self) {
        self.persist_pending = self.has_refresh_token();
    }

    /// Counts an event only the driver sees.
    pub(crate) fn count(&mut self, event: Counted) {
        let s = &mut self.stats;
        match event {
            Counted::ApiFailure => s.api_requests = s.api_requests.saturating_add(1),
            Counted::Retry => s.retries = s.retries.saturating_add(1),
            Counted::Sleep(ms) => {
                s.sleeps = s.sleeps.saturating_add(1);
                s.slept_ms = s.slept_ms.saturating_add(u64::from(ms));
            }
            Counted::StoreFailure => s.store_failures = s.store_failures.saturating_add(1),
        }
    }

    /// Reports the status of an API response sent with `token`.
    ///
    /// A 401 on a token that the API had accepted before leads to one refresh and one retry
    /// ([`ApiVerdict::Retry`]); a 401 on a token fresh from the token endpoint is
    /// [`ApiVerdict::Unauthorized`]. A 401 for a token already replaced asks for a retry with
    /// the new one.
    pub fn handle_api_status(&mut self, now: Instant, token: TokenId, status: u16) -> ApiVerdict {
        self.stats.api_requests = self.stats.api_requests.saturating_add(1);
        if status == 401 {
            self.stats.unauthorized = self.stats.unauthorized.saturating_add(1);
        }
        self.observe(now);
        let Some(meta) = self.meta.as_mut() else {
            return if status == 401 {
                ApiVerdict::Unauthorized
            } else {
                ApiVerdict::Done
            };
        };
        if meta.id != token {
            return if status == 401 {
                ApiVerdict::Retry
            } else {
                ApiVerdict::Done
            };
        }
        match status {
            401 if meta.fresh => {
                meta.fresh = false;
                ApiVerdict::Unauthorized
            }
            401 => {
                meta.rejected = true;
                ApiVerdict::Retry
            }
            200..=299 => {
                meta.fresh = false;
                ApiVerdict::Done
            }
            _ => ApiVerdict::Done,
        }
    }

    // Kept out of `handle_token_response`, whose frame is on the stack while the new token's
    // claims are decoded. (On the Cortex-M3 firmware the figures are the same either way:
    // the compiler did not inline it before this attribute.)
    #[inline(never)]
    fn fail(&mut self, now: Instant, e: RefreshError) {
        self.stats.failures = self.stats.failures.saturating_add(1);
        // A transient failure keeps the routine jitter for the next lease: the backoff already
        // spreads a failing fleet over a refresh interval. Any other failure needs a login or
        // the application, whose next token gets the wide first-lease window.
        self.first_lease |= e.class() != FailureClass::RetryLater;
        self.configuration = None;
        match (e.class(), e) {
            (
                FailureClass::RetryLater,
                RefreshError::Endpoint(EndpointError::Unavailable { retry_after, .. }),
            ) => {
                self.transient_failure(now, retry_after);
            }
            (FailureClass::RetryLater, _) => self.transient_failure(now, None),
            (
                FailureClass::LoginAgain,
                RefreshError::Endpoint(EndpointError::RefreshTokenRejected),
            ) => {
                self.forget_refresh();
                self.failures = 0;
                self.state = if self.protocol.can_login() {
                    State::Idle
                } else {
                    State::LoginRequired(LoginReason::RefreshTokenRejected)
                };
            }
            (FailureClass::LoginAgain, _) => {
                self.state = State::LoginRequired(LoginReason::CredentialsRejected);
            }
            (FailureClass::Fatal, RefreshError::Endpoint(e)) => {
                // Reported, then tried again after a long backoff: one forged answer (a captive
                // portal's 404, a proxy's redirect) must not stop a device for good.
                self.failures = self.failures.saturating_add(1);
                self.configuration = Some(e);
                let delay = self.policy.configuration_backoff(self.jitter.next_u64());
                self.state = State::Backoff {
                    until: now.saturating_add(delay),
                };
            }
            // Only the endpoint's verdict is fatal (`RefreshError::class`).
            (FailureClass::Fatal, _) => self.transient_failure(now, None),
        }
    }

    fn transient_failure(&mut self, now: Instant, retry_after: Option<Duration>) {
        self.failures = self.failures.saturating_add(1);
        // The backoff follows the current token's lifetime, and its remaining life while it
        // may still be sent (a token the API rejected may not).
        let (lifetime, left) = match self.meta {
            Some(AccessMeta {
                lease, rejected, ..
            }) if lease.is_scheduled() => {
                let usable = !rejected && lease.is_usable(now);
                (
                    Some(lease.expires_at.saturating_duration_since(lease.fetched_at)),
                    usable.then(|| lease.expires_at.saturating_duration_since(now)),
                )
            }
            _ => (None, None),
        };
        let delay = self.policy.backoff_for(
            self.failures,
            lifetime,
            left,
            retry_after,
            self.jitter.next_u64(),
        );
        self.state = State::Backoff {
            until: now.saturating_add(delay),
        };
    }

    /// Checks new tokens, schedules the access token, and only then replaces the old ones.
    fn accept(
        &mut self,
        fetched_at: Instant,
        arrived_at: Instant,
        wall: Option<UnixTime>,
        tokens: &Tokens<'_>,
        from_endpoint: bool,
    ) -> Result<(), TokenError> {
        let capacity = A.saturating_sub(BEARER.len());
        let access_checked = check_token(tokens.access, TokenKind::Access, capacity);
        let refresh_checked = match tokens.refresh {
            Some(refresh) => check_token(refresh, TokenKind::Refresh, R),
            None => Ok(()),
        };
        // The refresh token's own expiry, whenever it is well-formed: a rotated one is kept
        // even when the access token is refused (computed here rather than in a helper, so
        // that the claims decoder runs no deeper in the stack than for the access token).
        let refresh_expires_at = match (refresh_checked, tokens.refresh.and_then(RawStr::unescaped))
        {
            (Ok(()), Some(token)) => self.refresh_expiry(fetched_at, token, wall, true),
            _ => Ok(Instant::MAX),
        };
        let lease = match (access_checked, refresh_checked) {
            (Err(e), _) | (Ok(()), Err(e)) => Err(e),
            (Ok(()), Ok(())) => {
                // An escaped token cannot be a JWT (base64url and dots need no escapes): treat
                // it as opaque and schedule it from `expires_in`.
                let mut times = tokens
                    .access
                    .unescaped()
                    .and_then(|token| TimeClaims::decode(token).ok());
                if let (false, Some(_), Some(t)) = (from_endpoint, wall, times.as_mut()) {
                    // A provisioned token may be old: `exp - iat` from now would overstate its
                    // life, so a trusted wall clock decides instead.
                    t.iat = None;
                }
                let facts = TokenFacts {
                    expires_in: tokens.expires_in,
                    times,
                    wall_now: wall,
                };
                self.policy
                    .lease(
                        fetched_at,
                        arrived_at,
                        &facts,
                        self.first_lease,
                        self.jitter.next_u64(),
                    )
                    .map_err(TokenError::Unschedulable)
            }
        };
        let lease = match (lease, tokens.refresh, refresh_checked, refresh_expires_at) {
            (Ok(lease), ..) => lease,
            // Not when the access token is past its `exp` by the trusted wall clock: that is a
            // replayed old answer, whose refresh token the server has already replaced.
            (Err(e), Some(refresh), Ok(()), Ok(expires_at))
                if from_endpoint && e != TokenError::Unschedulable(LeaseError::Expired) =>
            {
                // The access token is refused, but with rotation the old refresh token died
                // when the server answered: keep the new one, and have it saved first.
                self.store_refresh(refresh, expires_at);
                self.persist_pending = true;
                return Err(e);
            }
            (Err(e), ..) => return Err(e),
        };
        let refresh_expires_at = refresh_expires_at?;
        // Everything checked: commit.
        wipe::string(&mut self.access);
        let committed = self.access.push_str(BEARER).is_ok()
            && tokens
                .access
                .try_for_each_char(|c| self.access.push(c).map_err(drop), ())
                .is_ok();
        if !committed {
            // Unreachable after `check_token`, but never keep half a token.
            wipe::string(&mut self.access);
            self.meta = None;
            return Err(TokenError::TooLong {
                token: TokenKind::Access,
                capacity,
            });
        }
        self.next_id = self.next_id.wrapping_add(1);
        self.meta = Some(AccessMeta {
            lease,
            id: TokenId(self.next_id),
            fresh: from_endpoint,
            rejected: false,
        });
        if let Some(refresh) = tokens.refresh {
            self.store_refresh(refresh, refresh_expires_at);
            self.persist_pending = from_endpoint;
        }
        self.first_lease = false;
        Ok(())
    }

    /// Drops the refresh token (rejected, expired, logged out): nothing is left to save.
    fn forget_refresh(&mut self) {
        wipe::string(&mut self.refresh);
        self.refresh_expires_at = Instant::MAX;
        self.persist_pending = false;
        self.refresh_gen = self.refresh_gen.wrapping_add(1);
    }

    fn store_refresh(&mut self, refresh: RawStr<'_>, expires_at: Instant) {
        self.refresh_gen = self.refresh_gen.wrapping_add(1);
        wipe::string(&mut self.refresh);
        if refresh.decode_into(&mut self.refresh).is_err() {
            // Unreachable after `check_token`; an empty token means "none", never half a one.
            wipe::string(&mut self.refresh);
        }
        self.refresh_expires_at = expires_at;
    }

    /// When a refresh token dies by its own claims: from `exp - iat` when it was just fetched
    /// (`fresh`), else from `exp` and the trusted wall clock; [`Instant::MAX`] when unknown
    /// (opaque tokens, no `exp`).
    fn refresh_expiry(
        &self,
        fetched_at: Instant,
        token: &str,
        wall: Option<UnixTime>,
        fresh: bool,
    ) -> Result<Instant, TokenError> {
        let Some((exp, iat)) = TimeClaims::decode(token)
            .ok()
            .and_then(|t| Some((t.exp?, t.iat)))
        else {
            return Ok(Instant::MAX);
        };
        let secs = match (iat.filter(|_| fresh), wall) {
            (Some(iat), _) => exp.checked_secs_since(iat).unwrap_or(0),
            (None, Some(wall)) => match exp.checked_secs_since(wall) {
                Some(secs) if secs > 0 => secs,
                _ => return Err(TokenError::Unschedulable(LeaseError::Expired)),
            },
            (None, None) => return Ok(Instant::MAX),
        };
        Ok(fetched_at.saturating_add(floored_lifetime(secs)))
    }

    /// Notes `now`. When the clock went backwards, every deadline moves back by the same
    /// amount, so that no token lives longer than it had left at the latest reading. The send
    /// instant of the request in flight (or abandoned) cannot go below zero: what it could not
    /// move is kept in `anchor_deficit` and taken off the answer's deadlines.
    fn observe(&mut self, now: Instant) {
        if now < self.last_now {
            let back = self.last_now.saturating_duration_since(now);
            self.shift_deadlines(back);
            // Both send instants move back; what neither could move (below zero) comes off
            // the answer's deadlines, whichever request the answer turns out to be for.
            let mut unmoved = Duration::ZERO;
            match &mut self.state {
                State::InFlight { since, .. } => unmoved = move_back(since, back),
                State::Backoff { until } => *until = shift(*until, back),
                _ => {}
            }
            if let Some((_, since, _)) = self.abandoned.as_mut() {
                unmoved = unmoved.max(move_back(since, back));
            }
            self.anchor_deficit = self.anchor_deficit.saturating_add(unmoved);
        }
        self.last_now = now;
    }

    /// Moves the current token's deadlines (and the refresh token's) `back`.
    fn shift_deadlines(&mut self, back: Duration) {
        self.shift_lease(back);
        self.refresh_expires_at = shift(self.refresh_expires_at, back);
    }

    /// Moves the current access token's deadlines `back`.
    fn shift_lease(&mut self, back: Duration) {
        if let Some(m) = self.meta.as_mut() {
            let lease = &mut m.lease;
            for t in [
                &mut lease.fetched_at,
                &mut lease.usable_at,
                &mut lease.refresh_at,
                &mut lease.expires_at,
            ] {
                *t = shift(*t, back);
            }
        }
    }
}

/// Checks a token's decoded length and characters before the session keeps it.
pub(crate) fn check_token(
    raw: RawStr<'_>,
    token: TokenKind,
    capacity: usize,
) -> Result<(), TokenError> {
    let allowed = match token {
        TokenKind::Access => is_access_char,
        TokenKind::Refresh => is_refresh_char,
    };
    let mut len = 0usize;
    raw.try_for_each_char(
        |c| {
            len = len.saturating_add(c.len_utf8());
            if !allowed(c) {
                Err(TokenError::Invalid { token })
            } else if len > capacity {
                Err(TokenError::TooLong { token, capacity })
            } else {
                Ok(())
            }
        },
        TokenError::Invalid { token },
    )?;
    if len == 0 {
        return Err(TokenError::Invalid { token });
    }
    Ok(())
}

/// Moves a send instant `back`, saturating at zero; returns what could not be moved.
fn move_back(since: &mut Instant, back: Duration) -> Duration {
    let unmoved = back.saturating_sub(since.saturating_duration_since(Instant::ZERO));
    *since = since.saturating_sub(back);
    unmoved
}

/// `t - back`, saturating at zero; [`Instant::MAX`] ("never") stays.
fn shift(t: Instant, back: Duration) -> Instant {
    if t == Instant::MAX {
        t
    } else {
        t.saturating_sub(back)
    }
}
