//! The blocking driver: [`Client::send`] is the usual "check, refresh if needed, add
//! `Authorization: Bearer`, send" wrapper as one call, a short loop that performs the actions of
//! a [`SendStep`] with a [`Clock`], a [`Transport`], a [`DelayNs`] and a [`TokenStore`]. It also
//! holds [`ClientConfig`] and the drivers' [`Error`].
//!
//! It borrows the caller's buffers and never allocates. [`AsyncClient`](crate::AsyncClient)
//! (feature `async`) is the same loop with `.await`.

use core::fmt;

use embedded_hal::delay::DelayNs;

use crate::clock::Clock;
use crate::driver::{Action, SendStep};
use crate::fmt::log_warn;
use crate::policy::LeaseError;
use crate::policy::RefreshPolicy;
use crate::protocol::Request;
use crate::session::{LoginReason, RefreshError, Session, SessionError, TokenError};
use crate::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use crate::store::{Never, TokenStore};
use crate::time::Duration;
use crate::transport::{Error as TransportError, ErrorKind, ErrorType, Response, Transport};
use crate::wipe;

/// How long a driver may wait for a usable token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct ClientConfig {
    /// The longest a single `send` sleeps through backoffs (and `nbf` waits) before it gives up
    /// with [`Error::RetryLater`] (default 60 s): it gives up at the first wake-up that would
    /// come later than this after its start.
    pub max_wait: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            max_wait: Duration::from_secs(60),
        }
    }
}

/// Steps that a `send` may need without waiting: two API requests (a 401, one retry), two
/// refreshes or logins and the saves of their refresh tokens, a rejected refresh token's login,
/// a refresh that fails ahead of expiry, and `nbf` waits, with room to spare.
const STEPS_WITHOUT_BACKOFF: u32 = 16;

/// Steps per backoff: the sleep, one more if the delay wakes up early, and the retry.
const STEPS_PER_BACKOFF: u32 = 3;

impl ClientConfig {
    /// The most steps (polls of the session: a request, a save or a sleep each) that one
    /// `send` takes with `policy`; the next ends it with [`Error::RetryLater`] and the last
    /// failure. This bounds every `send`, even with a clock that never advances or a delay
    /// that does not sleep.
    ///
    /// It is `16 + 3 * (max_wait / max(backoff_base, 1 ms) + 1)`: 199 with the defaults (60 s,
    /// 1 s). Every backoff lasts at least [`RefreshPolicy::backoff_base`], so with a clock that
    /// advances and a delay that sleeps as long as asked, `max_wait` ends a failing `send`
    /// before this bound does. A zero `backoff_base` counts as 1 ms and makes the bound large
    /// (about three steps per millisecond of `max_wait`): keep it at a second or more.
    pub fn max_steps(&self, policy: &RefreshPolicy) -> u32 {
        let backoff = policy.backoff_base.as_millis().max(1);
        let backoffs = (self.max_wait.as_millis() / backoff).saturating_add(1);
        u32::try_from(backoffs)
            .unwrap_or(u32::MAX)
            .saturating_mul(STEPS_PER_BACKOFF)
            .saturating_add(STEPS_WITHOUT_BACKOFF)
    }
}

/// Why a driver's `send` failed: the driver layer's error. It names the call that failed (the
/// API request, the token endpoint exchange, the store) and carries the session's
/// [`RefreshError`] or [`SessionError`] where the session decided.
#[derive(Debug)]
#[non_exhaustive]
pub enum Error<T, S> {
    /// The API request itself failed in the transport (the token was fine). Of kind
    /// [`ErrorKind::BufferTooSmall`] when the API's answer did
    /// not fit the body buffer.
    Transport(T),
    /// The token endpoint's answer did not fit the body buffer (the transport's
    /// [`ErrorKind::BufferTooSmall`]): give the driver a larger
    /// one. Waiting will not make it fit; the tokens are kept.
    AnswerTooLarge(T),
    /// No usable token within [`ClientConfig::max_wait`] (or [`ClientConfig::max_steps`]): the
    /// token endpoint keeps failing transiently. `last` is the last failure. Try again later;
    /// the tokens are kept.
    RetryLater {
        /// The last refresh or login failure.
        last: Option<RefreshError>,
    },
    /// The session needs the application: provision tokens or credentials.
    LoginRequired(LoginReason),
    /// The API rejected a token fresh from the token endpoint (or the one retry after a
    /// refresh): the request is not authorized.
    Unauthorized(Response),
    /// A failure that retrying soon will not mend: a configuration problem the token endpoint
    /// named (the session tries again by itself after about `backoff_max`, or at once after
    /// [`Session::reset`]), or a request buffer too small for the refresh or login.
    Fatal(SessionError),
    /// The token store failed to load (or, in [`Client::restore`], to clear an expired token).
    Store(S),
    /// [`Client::restore`]: the store holds something the session cannot use as a refresh
    /// token (too long for its buffer, characters a refresh token cannot have). It was left in
    /// the store: log it, provision a new token, or clear it yourself.
    StoredToken(TokenError),
}

impl<T: fmt::Debug, S: fmt::Debug> fmt::Display for Error<T, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Transport(e) => write!(f, "transport error: {e:?}"),
            Error::AnswerTooLarge(e) => {
                write!(
                    f,
                    "the token endpoint's answer does not fit the body buffer: {e:?}"
                )
            }
            Error::RetryLater { last: Some(e) } => write!(f, "no usable token yet: {e}"),
            Error::RetryLater { last: None } => f.write_str("no usable token yet"),
            Error::LoginRequired(reason) => write!(f, "login required: {reason:?}"),
            Error::Unauthorized(r) => write!(f, "unauthorized (status {})", r.status),
            Error::Fatal(e) => write!(f, "{e}"),
            Error::Store(e) => write!(f, "token store error: {e:?}"),
            Error::StoredToken(e) => write!(f, "the stored refresh token is unusable: {e}"),
        }
    }
}

impl<T: fmt::Debug, S: fmt::Debug> core::error::Error for Error<T, S> {}

impl<T: TransportError, S> Error<T, S> {
    /// Whether trying again later may succeed without the application's help: a transport
    /// failure of the API request (except an answer too large for the body buffer, which will
    /// not fit later either), or no usable token yet.
    pub fn is_retryable(&self) -> bool {
        match self {
            Error::Transport(e) => e.kind() != ErrorKind::BufferTooSmall,
            Error::RetryLater { .. } => true,
            Error::AnswerTooLarge(_)
            | Error::LoginRequired(_)
            | Error::Unauthorized(_)
            | Error::Fatal(_)
            | Error::Store(_)
            | Error::StoredToken(_) => false,
        }
    }
}

impl<T> Error<T, Never> {
    /// The error of a [`SendStep`], which does no store I/O, as a client's error.
    pub(crate) fn with_store<S>(self) -> Error<T, S> {
        match self {
            Error::Transport(e) => Error::Transport(e),
            Error::AnswerTooLarge(e) => Error::AnswerTooLarge(e),
            Error::RetryLater { last } => Error::RetryLater { last },
            Error::LoginRequired(reason) => Error::LoginRequired(reason),
            Error::Unauthorized(response) => Error::Unauthorized(response),
            Error::Fatal(e) => Error::Fatal(e),
            Error::Store(never) => match never {},
            Error::StoredToken(e) => Error::StoredToken(e),
        }
    }
}

/// Loads a stored refresh token into the session, then wipes `scratch`, which held it.
///
/// Surrounding ASCII whitespace is trimmed (`echo TOKEN > file` adds a newline). The store is
/// cleared only when the token is past its own `exp` by the trusted wall clock: content the
/// session merely cannot use is left there and reported, since it may be the device's only
/// credential.
fn restore<T, C: Clock, S: TokenStore, const A: usize, const R: usize>(
    session: &mut Session<'_, A, R>,
    clock: &C,
    store: &mut S,
    scratch: &mut [u8],
) -> Result<bool, Error<T, S::Error>> {
    let result = match store.load(scratch) {
        Err(e) => Err(Error::Store(e)),
        Ok(None) => Ok(false),
        Ok(Some(token)) => match adopt_stored(session, clock, token) {
            Stored::Expired => store.clear().map(|()| false).map_err(Error::Store),
            stored => stored.into_result(),
        },
    };
    wipe::bytes(scratch);
    result
}

/// What [`adopt_stored`] made of a stored refresh token.
pub(crate) enum Stored {
    /// The session took it.
    Loaded,
    /// Blank: nothing stored, and nothing to delete.
    Blank,
    /// Past its own `exp` by the trusted wall clock: clear it from the store.
    Expired,
    /// The session cannot use it; it stays in the store.
    Unusable(TokenError),
}

impl Stored {
    /// The result of a restore that did not clear the store.
    pub(crate) fn into_result<T, S>(self) -> Result<bool, Error<T, S>> {
        match self {
            Stored::Loaded => Ok(true),
            Stored::Blank | Stored::Expired => Ok(false),
            Stored::Unusable(e) => Err(Error::StoredToken(e)),
        }
    }
}

/// Gives the session a token read from the store, trimmed of surrounding ASCII whitespace.
pub(crate) fn adopt_stored<C: Clock, const A: usize, const R: usize>(
    session: &mut Session<'_, A, R>,
    clock: &C,
    token: &str,
) -> Stored {
    let token = token.trim_ascii();
    match session.set_refresh_token(clock.now(), token, clock.unix_time()) {
        Ok(()) => Stored::Loaded,
        Err(_) if token.is_empty() => Stored::Blank,
        Err(TokenError::Unschedulable(LeaseError::Expired)) => {
            log_warn!("token store: the saved refresh token has expired");
            Stored::Expired
        }
        Err(e) => {
            log_warn!("token store: the saved refresh token is unusable: {}", e);
            Stored::Unusable(e)
        }
    }
}

/// The blocking driver. See the [module docs](self).
///
/// The fields are `pub(crate)` for [`AsyncClient`](crate::AsyncClient), which wraps a `Client`
/// and runs its own loop over them.
pub struct Client<
    'c,
    'b,
    T,
    C,
    D,
    S,
    const A: usize = DEFAULT_ACCESS_CAPACITY,
    const R: usize = DEFAULT_REFRESH_CAPACITY,
> where
    S: TokenStore,
{
    pub(crate) session: Session<'c, A, R>,
    pub(crate) transport: T,
    pub(crate) clock: C,
    pub(crate) delay: D,
    pub(crate) store: S,
    pub(crate) scratch: &'b mut [u8],
    pub(crate) config: ClientConfig,
    pub(crate) store_error: Option<<S as TokenStore>::Error>,
}

impl<T, C, D, S: TokenStore, const A: usize, const R: usize> fmt::Debug
    for Client<'_, '_, T, C, D, S, A, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("config", &self.config)
            .field("store_failed", &self.store_error.is_some())
            .finish_non_exhaustive()
    }
}

impl<'c, 'b, T, C, D, S, const A: usize, const R: usize> Client<'c, 'b, T, C, D, S, A, R>
where
    T: ErrorType,
    C: Clock,
    S: TokenStore,
{
    /// A client around `session`. `scratch` receives refresh and login request bodies (a few
    /// hundred bytes for SimpleJWT; size it for your tokens); token endpoint answers are read
    /// into the body buffer given to [`Client::send`], so size that one for them too.
    pub fn new(
        session: Session<'c, A, R>,
        transport: T,
        clock: C,
        delay: D,
        store: S,
        scratch: &'b mut [u8],
    ) -> Self {
        Client {
            session,
            transport,
            clock,
            delay,
            store,
            scratch,
            config: ClientConfig::default(),
            store_error: None,
        }
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Loads the refresh token saved by an earlier run, if any (call once at start-up), and
    /// wipes the scratch buffer it was loaded into. Returns whether one was loaded.
    ///
    /// Surrounding ASCII whitespace is trimmed. A token past its own `exp` by the trusted wall
    /// clock is cleared from the store (`Ok(false)`, a login follows); anything else the
    /// session cannot use is [`Error::StoredToken`] and stays in the store for you to decide.
    pub fn restore(&mut self) -> Result<bool, Error<T::Error, S::Error>> {
        restore(
            &mut self.session,
            &self.clock,
            &mut self.store,
            self.scratch,
        )
    }

    /// Forgets the tokens and clears the store.
    pub fn logout(&mut self) -> Result<(), Error<T::Error, S::Error>> {
        self.session.logout();
        self.store.clear().map_err(Error::Store)
    }

    /// The session, for its state and counters.
    pub fn session(&self) -> &Session<'c, A, R> {
        &self.session
    }

    /// The session, to provision tokens or reset it.
    pub fn session_mut(&mut self) -> &mut Session<'c, A, R> {
        &mut self.session
    }

    /// Ends the client and gives back its session (tokens, state and counters), and with it
    /// the borrows of the scratch buffer, the transport and the rest.
    pub fn into_session(self) -> Session<'c, A, R> {
        self.session
    }

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The last store failure during a `send`, if any: a new refresh token not saved (the
    /// tokens stayed usable in RAM), or a rejected one not cleared. See README, "Keeping the
    /// refresh token across restarts", for what a device should do.
    pub fn take_store_error(&mut self) -> Option<S::Error> {
        self.store_error.take()
    }
}

impl<T, C, D, S, const A: usize, const R: usize> Client<'_, '_, T, C, D, S, A, R>
where
    T: Transport,
    C: Clock,
    D: DelayNs,
    S: TokenStore,
{
    /// Sends `request` to the API with a valid access token, refreshing or logging in first
    /// when the session says so, sleeping through backoffs, and retrying once after a 401.
    /// The answer's body goes into `body` (which also receives token endpoint answers).
    ///
    /// The loop around a [`SendStep`]: it only performs the step's actions.
    pub fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Error<T::Error, S::Error>> {
        let mut step = SendStep::new(self.clock.now(), *request, self.config);
        loop {
            match step.poll(&mut self.session, self.clock.now(), self.scratch) {
                Action::SendApi(api) => match self.transport.send(&api, body) {
                    Ok(response) => {
                        step.handle_api_response(&mut self.session, self.clock.now(), response);
                    }
                    Err(e) => step.handle_api_error(&mut self.session, e),
                },
                Action::SendToken { request, .. } => {
                    let sent = self.transport.send(&request, body);
                    // The request carried the refresh token or the password.
                    wipe::bytes(self.scratch);
                    let (now, wall) = (self.clock.now(), self.clock.unix_time());
                    match sent {
                        Ok(response) => {
                            step.handle_token_response(&mut self.session, now, wall, response, body)
                        }
                        Err(e) => step.handle_token_error(&mut self.session, now, e),
                    }
                    // The answer carried the new tokens (the session has copied them), or part
                    // of them before the transport failed.
                    wipe::bytes(body);
                }
                Action::Save(token) => {
                    let saved = self.store.save(token.expose());
                    step.handle_saved(&mut self.session, saved.is_ok());
                    if let Err(e) = saved {
                        self.store_error = Some(e);
                    }
                }
                Action::ClearStore => {
                    let cleared = self.store.clear();
                    step.handle_cleared(&mut self.session, cleared.is_ok());
                    if let Err(e) = cleared {
                        self.store_error = Some(e);
                    }
                }
                Action::Sleep { ms, .. } => self.delay.delay_ms(ms),
                Action::Done => return step.finish().map_err(Error::with_store),
            }
        }
    }
}
