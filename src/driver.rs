//! The driver step: one `send` call as a sans-IO state machine, [`SendStep`], which owns the
//! call's state and answers each poll with an [`Action`] for the I/O loop around it: `Client`,
//! `AsyncClient`, or an RTOS task or executor of your own.
//!
//! **Call protocol: create a [`SendStep`] for each API request, then [`SendStep::poll`] it with
//! the session and perform each [`Action`] before polling again, until it answers
//! [`Action::Done`]: send [`Action::SendApi`] and report with [`SendStep::handle_api_response`] (or
//! [`SendStep::handle_api_error`]); send [`Action::SendToken`], wipe the scratch buffer, report
//! with [`SendStep::handle_token_response`] (or [`SendStep::handle_token_error`]) and wipe the
//! whole body buffer (the transport may have written tokens into it even when it failed); save [`Action::Save`]'s token and report with [`SendStep::handle_saved`]; clear the
//! store on [`Action::ClearStore`] and report with [`SendStep::handle_cleared`]; sleep through
//! [`Action::Sleep`]. Then [`SendStep::finish`]
//! gives the result. The step never reads a clock, sleeps, or does I/O: `now` is an argument
//! everywhere. A step that answered `Done` answers `Done` to every later poll.**
//!
//! ```
//! use jwt_refresh::driver::{Action, SendStep};
//! use jwt_refresh::protocol::SimpleJwt;
//! use jwt_refresh::transport::{ErrorKind, Response};
//! use jwt_refresh::{ClientConfig, Instant, Protocol, RefreshPolicy, Request, Session};
//!
//! let protocol = Protocol::SimpleJwt(SimpleJwt::default());
//! let mut session: Session<'_, 384, 320> = Session::new(protocol, RefreshPolicy::default());
//! session.set_refresh_token(Instant::ZERO, "opaque-refresh", None)?;
//! let (mut scratch, mut body) = ([0u8; 512], [0u8; 1024]);
//! let now = || Instant::from_millis(0); // your monotonic clock
//!
//! let mut step = SendStep::<ErrorKind>::new(now(), Request::get("/api/"), ClientConfig::default());
//! let result = loop {
//!     match step.poll(&mut session, now(), &mut scratch) {
//!         Action::SendToken { request, .. } => {
//!             assert_eq!(request.path, "/api/token/refresh/"); // POST request.body there, then:
//!             let answer = br#"{"access":"opaque-access"}"#;
//!             body[..answer.len()].copy_from_slice(answer);
//!             scratch.fill(0); // it held the refresh token
//!             let response = Response::new(200, answer.len());
//!             step.handle_token_response(&mut session, now(), None, response, &body);
//!             body.fill(0); // it held the new tokens
//!         }
//!         Action::SendApi(request) => {
//!             assert_eq!(request.authorization, Some("Bearer opaque-access"));
//!             step.handle_api_response(&mut session, now(), Response::new(204, 0));
//!         }
//!         Action::Save(_token) => step.handle_saved(&mut session, true), // write it to flash
//!         Action::ClearStore => step.handle_cleared(&mut session, true), // erase it from flash
//!         Action::Sleep { ms: _, .. } => {}                            // sleep `ms` milliseconds
//!         Action::Done => break step.finish(),
//!     }
//! };
//! assert_eq!(result.map(|r| r.status).ok(), Some(204));
//! # Ok::<(), jwt_refresh::TokenError>(())
//! ```

use crate::client::{ClientConfig, Error};
use crate::fmt::{log_debug, log_warn};
use crate::protocol::{Endpoint, EndpointError, Grant, Request, TokenResponse};
use crate::session::{ApiVerdict, Counted, Output, RefreshError, Secret, Session, TokenId};
use crate::store::Never;
use crate::time::{Instant, UnixTime};
use crate::transport::{BearerError, Error as TransportError, ErrorKind, Response};

/// What the I/O loop does next, from [`SendStep::poll`].
///
/// `Debug` shows no secret: not the `Authorization` value, not a request body, not the refresh
/// token.
#[must_use]
#[derive(Debug)]
pub enum Action<'a> {
    /// Send this API request (yours, with the session's `Authorization` header), then report
    /// the answer with [`SendStep::handle_api_response`] or the transport's failure with
    /// [`SendStep::handle_api_error`].
    SendApi(Request<'a>),
    /// Send this refresh or login request to the token endpoint; then wipe the scratch buffer
    /// given to [`SendStep::poll`] (the body carried the refresh token or the password), and
    /// report the answer with [`SendStep::handle_token_response`] or the transport's failure
    /// with [`SendStep::handle_token_error`]. Then wipe the whole body buffer, either way: a
    /// transport that failed mid-answer, or on an answer too large, may have written tokens.
    SendToken {
        /// A refresh or a login.
        grant: Grant,
        /// The request, its body in the scratch buffer.
        request: Request<'a>,
    },
    /// Save this new refresh token in the store before anything else, then report with
    /// [`SendStep::handle_saved`]. The new tokens are not used before that.
    Save(Secret<'a>),
    /// The token endpoint rejected the refresh token for good: clear the store, so that a
    /// restart does not offer the dead token again, then poll again. A failure to clear changes
    /// nothing for this call.
    ClearStore,
    /// Nothing can be sent before `until`: sleep, then poll again.
    Sleep {
        /// The instant to sleep until.
        until: Instant,
        /// `until - now` in milliseconds, for a `DelayNs`: at least 1, at most `u32::MAX`.
        ms: u32,
    },
    /// The call is over: [`SendStep::finish`] gives its result.
    Done,
}

/// One `send` call: a sans-IO state machine between the [`Session`] and the caller's I/O. `E`
/// is the transport's error, handed back in [`Error::Transport`]. See the
/// [module docs](self) for the call protocol.
///
/// The step ends the call with [`Error::RetryLater`] when the next wake-up lies more than
/// [`ClientConfig::max_wait`] after the start, or after [`ClientConfig::max_steps`] polls.
#[derive(Debug)]
pub struct SendStep<'r, E> {
    request: Request<'r>,
    config: ClientConfig,
    start: Instant,
    /// Polls that asked the session for its output.
    steps: u32,
    /// The API request was sent a second time, after a 401.
    retried: bool,
    /// The last refresh or login failure.
    last: Option<RefreshError>,
    /// The token that the API request in flight carries.
    sent_token: Option<TokenId>,
    /// An [`Action::ClearStore`] is due.
    clear_store: bool,
    /// The last poll answered [`Action::Sleep`] for this many milliseconds.
    slept: Option<u32>,
    /// The call's result, once it is known.
    end: Option<Result<Response, Error<E, Never>>>,
}

impl<'r, E> SendStep<'r, E> {
    /// The step for sending `request` to the API, starting at `now`.
    pub fn new(now: Instant, request: Request<'r>, config: ClientConfig) -> Self {
        SendStep {
            request,
            config,
            start: now,
            steps: 0,
            retried: false,
            last: None,
            sent_token: None,
            clear_store: false,
            slept: None,
            end: None,
        }
    }

    /// What to do next, at `now`. `scratch` receives the body (and the HTTP Basic header) of a
    /// refresh or login request.
    pub fn poll<'a, const A: usize, const R: usize>(
        &mut self,
        session: &'a mut Session<'_, A, R>,
        now: Instant,
        scratch: &'a mut [u8],
    ) -> Action<'a>
    where
        'r: 'a,
    {
        if let Some(ms) = self.slept.take() {
            session.count(Counted::Sleep(ms));
        }
        if core::mem::take(&mut self.clear_store) {
            return Action::ClearStore;
        }
        if self.end.is_some() {
            return Action::Done;
        }
        if self.steps >= self.config.max_steps(session.policy()) {
            return self.end(Err(Error::RetryLater { last: self.last }));
        }
        self.steps = self.steps.saturating_add(1);
        let in_flight = session.is_refreshing();
        match session.poll(now, scratch) {
            Output::Send {
                authorization,
                token,
            } => {
                self.sent_token = Some(token);
                Action::SendApi(Request {
                    endpoint: Endpoint::Api,
                    authorization: Some(authorization),
                    ..self.request
                })
            }
            Output::Refresh(request) => Action::SendToken {
                grant: Grant::Refresh,
                request,
            },
            Output::Login(request) => Action::SendToken {
                grant: Grant::Login,
                request,
            },
            Output::Persist(token) => Action::Save(token),
            Output::Timeout(at) => {
                // Another caller's refresh or login is in flight (a shared session) and its
                // timeout lies beyond `max_wait`: wait for it until `max_wait`, since it may
                // well end sooner.
                let deadline = self.start.saturating_add(self.config.max_wait);
                let at = if at > deadline && now < deadline && in_flight {
                    deadline
                } else {
                    at
                };
                if at.saturating_duration_since(self.start) > self.config.max_wait {
                    return self.end(Err(Error::RetryLater { last: self.last }));
                }
                let ms = at.saturating_duration_since(now).as_millis().max(1);
                let ms = u32::try_from(ms).unwrap_or(u32::MAX);
                // Counted at the next poll, once slept (the session is borrowed here).
                self.slept = Some(ms);
                Action::Sleep { until: at, ms }
            }
            Output::LoginRequired(reason) => self.end(Err(Error::LoginRequired(reason))),
            Output::Failed(e) => self.end(Err(Error::Fatal(e))),
        }
    }

    /// Reports the API's answer to [`Action::SendApi`], received at `now`. A 401 leads to one
    /// refresh and one retry; a second one, or one on a token fresh from the token endpoint, or
    /// one with `insufficient_scope`, ends the call with [`Error::Unauthorized`]. Any other
    /// answer ends it with the answer. Without an API request outstanding, it is ignored.
    pub fn handle_api_response<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        now: Instant,
        response: Response,
    ) {
        let Some(token) = self.sent_token.take() else {
            return;
        };
        if response.status == 401 && response.bearer_error == Some(BearerError::InsufficientScope) {
            // A scope problem: a new token of the same scope will not help.
            self.end = Some(Err(Error::Unauthorized(response)));
            return;
        }
        match session.handle_api_status(now, token, response.status) {
            ApiVerdict::Done => self.end = Some(Ok(response)),
            ApiVerdict::Retry if !self.retried => {
                self.retried = true;
                session.count(Counted::Retry);
            }
            ApiVerdict::Retry | ApiVerdict::Unauthorized => {
                self.end = Some(Err(Error::Unauthorized(response)));
            }
        }
    }

    /// Reports that [`Action::SendApi`] failed in the transport: the call ends with
    /// [`Error::Transport`] (the token was fine). Without an API request outstanding, it is
    /// ignored.
    pub fn handle_api_error<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        error: E,
    ) {
        if self.sent_token.take().is_some() {
            session.count(Counted::ApiFailure);
            self.end = Some(Err(Error::Transport(error)));
        }
    }

    /// Reports whether the store was cleared after [`Action::ClearStore`]. A failure changes
    /// nothing for this call; it is counted in [`Stats::store_failures`](crate::Stats).
    pub fn handle_cleared<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        cleared: bool,
    ) {
        if !cleared {
            log_warn!("token store: the rejected refresh token was not cleared");
            session.count(Counted::StoreFailure);
        }
    }

    /// Reports the token endpoint's answer to [`Action::SendToken`], received at `now` (with
    /// the trusted wall time, if any): `response`, its body in `body[..response.body_len]`.
    /// Wipe the body buffer afterwards: the session has copied the tokens it carries.
    pub fn handle_token_response<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        now: Instant,
        wall: Option<UnixTime>,
        response: Response,
        body: &[u8],
    ) {
        let answer = TokenResponse {
            status: response.status,
            body: body.get(..response.body_len).unwrap_or_default(),
            retry_after: response.retry_after,
        };
        match session.handle_token_response(now, wall, &answer) {
            Ok(grant) => log_debug!("token endpoint: {:?} succeeded", grant),
            Err(e) => {
                log_warn!("token endpoint: {}", e);
                // The server says the stored token is dead: do not offer it after a restart.
                self.clear_store = e == RefreshError::Endpoint(EndpointError::RefreshTokenRejected);
                self.last = Some(e);
            }
        }
    }

    /// Reports that [`Action::SendToken`] got no answer at `now`: a transient failure that the
    /// session backs off from, except an answer too large for the body buffer, which ends the
    /// call with [`Error::AnswerTooLarge`] (waiting will not make it fit). Wipe the body buffer
    /// afterwards all the same: the transport may have written part of the answer.
    pub fn handle_token_error<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        now: Instant,
        error: E,
    ) where
        E: TransportError,
    {
        log_warn!("token endpoint: no answer");
        let _ = session.handle_no_answer(now);
        self.last = Some(RefreshError::NoAnswer);
        if error.kind() == ErrorKind::BufferTooSmall {
            self.end = Some(Err(Error::AnswerTooLarge(error)));
        }
    }

    /// Reports whether the token of [`Action::Save`] was saved. Either way the tokens stay
    /// usable in RAM and the call goes on; report a failure to the application yourself.
    pub fn handle_saved<const A: usize, const R: usize>(
        &mut self,
        session: &mut Session<'_, A, R>,
        saved: bool,
    ) {
        if !saved {
            log_warn!("token store: the new refresh token was not saved");
        }
        session.handle_persisted(saved);
    }

    /// Reports that the sleep of the last [`Action::Sleep`] ended after `slept_ms` milliseconds,
    /// earlier than asked (a driver that also wakes when another caller's refresh ends), so
    /// that [`Stats::slept_ms`](crate::Stats) counts what was slept.
    pub fn handle_woken(&mut self, slept_ms: u32) {
        if let Some(ms) = self.slept.as_mut() {
            *ms = (*ms).min(slept_ms);
        }
    }

    /// The call's result: the API's answer, or why there is none. Called before
    /// [`Action::Done`], it abandons the call: [`Error::RetryLater`] with the last failure.
    ///
    /// The step does no store I/O, so its error has no store failure in it ([`Never`]).
    pub fn finish(self) -> Result<Response, Error<E, Never>> {
        match self.end {
            Some(result) => result,
            None => Err(Error::RetryLater { last: self.last }),
        }
    }

    /// Ends the call with `result`.
    fn end(&mut self, result: Result<Response, Error<E, Never>>) -> Action<'static> {
        self.end = Some(result);
        Action::Done
    }
}
