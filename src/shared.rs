//! The shared client: one [`Session`] for many threads or tasks. [`SharedClient`] locks the
//! session only while it decides (never across I/O); one caller performs each refresh, login or
//! save while the others send with the token that is still valid, or wait for it to finish.
//!
//! It is generic over a [`RawMutex`]: [`StdRawMutex`] (feature `std`) for threads and tokio,
//! [`EmbassyRawMutex`] (feature `embassy-sync`) for embassy tasks without std or alloc.
//!
//! # How it shares
//! Each `send` runs its own [`SendStep`] and brings its own transport, delay and buffers. The
//! session already lets one refresh or login be in flight at a time: while it is, a poll answers
//! "send" when the current token is still usable, or "wait" when it is not. A caller told to
//! wait while another caller's refresh is in flight is woken when that refresh ends (its waker
//! is registered in the lock; `W` of them fit, and callers beyond that look again every 5 ms).
//! A 401 on a token that a concurrent refresh has already replaced is retried with the new
//! token, without another refresh: the session tells the two apart by [`TokenId`].
//!
//! If the caller performing a refresh is cancelled (its future dropped) or panics, the session
//! counts the refresh as unanswered, as if it had timed out, and the next caller tries again.
//!
//! ```
//! # #[cfg(feature = "std")] {
//! use jwt_refresh::protocol::{Credentials, SimpleJwt};
//! use jwt_refresh::shared::{SharedClient, StdRawMutex};
//! use jwt_refresh::transport::{Endpoint, ErrorKind, ErrorType, Request, Response, Transport};
//! use jwt_refresh::{NoStore, Protocol, RefreshPolicy, Session, StdDelay, SystemClock};
//!
//! /// A stand-in for your HTTP client: one per thread.
//! struct Http;
//! impl ErrorType for Http {
//!     type Error = ErrorKind;
//! }
//! impl Transport for Http {
//!     fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
//!         let answer: &[u8] = match request.endpoint {
//!             Endpoint::Auth => br#"{"access":"opaque-access","refresh":"opaque-refresh"}"#,
//!             Endpoint::Api => b"{}",
//!         };
//!         body.get_mut(..answer.len()).ok_or(ErrorKind::BufferTooSmall)?.copy_from_slice(answer);
//!         Ok(Response::new(200, answer.len()))
//!     }
//! }
//!
//! let protocol = Protocol::SimpleJwt(SimpleJwt {
//!     credentials: Some(Credentials { username: "service", password: "secret" }),
//!     ..SimpleJwt::default()
//! });
//! let session: Session<'static> = Session::new(protocol, RefreshPolicy::default());
//! let client: SharedClient<'static, StdRawMutex, _, _> =
//!     SharedClient::new(session, SystemClock::new(), NoStore);
//! std::thread::scope(|s| {
//!     for _ in 0..4 {
//!         s.spawn(|| {
//!             let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
//!             let request = Request::get("/api/protected/");
//!             let response = client.send(&mut Http, &mut StdDelay, &request, &mut scratch, &mut body);
//!             assert_eq!(response.map(|r| r.status).unwrap(), 200);
//!         });
//!     }
//! });
//! // Four threads, one login.
//! assert_eq!(client.stats().logins, 1);
//! # }
//! ```
//! [`TokenId`]: crate::session::TokenId

#[cfg(feature = "embassy-sync")]
use core::cell::RefCell;
use core::fmt;
#[cfg(feature = "embassy-sync")]
use core::marker::PhantomData;
use core::task::Waker;

use crate::client::{adopt_stored, ClientConfig, Error, Stored};
use crate::clock::Clock;
use crate::driver::{Action, SendStep};
use crate::protocol::{BufferTooSmall, Endpoint, Method, Request};
use crate::session::{Session, SessionError, Stats};
use crate::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use crate::store::{Never, TokenStore};
use crate::time::Instant;
use crate::transport::{Error as TransportError, Response};
use crate::wipe;

/// How often a waiter that found no room for its waker looks again, in milliseconds.
const UNREGISTERED_POLL_MS: u32 = 5;

/// The bytes of `Bearer ` before the access token in an `Authorization` value.
const BEARER: usize = 7;

/// A kind of mutex: what [`SharedClient`] locks its session and its store with.
pub trait RawMutex {
    /// A mutex holding a `T`.
    type Mutex<T>: Lock<T>;
}

/// A mutex around a `T`, locked for the span of a closure.
pub trait Lock<T> {
    /// An unlocked mutex holding `value`.
    fn new(value: T) -> Self;

    /// Runs `f` on the value, locked. `None` when the value is already borrowed by this
    /// thread (a re-entrant call, from inside [`SharedClient::session`]'s closure): `f` did
    /// not run.
    fn lock<U>(&self, f: impl FnOnce(&mut T) -> U) -> Option<U>;
}

/// `std::sync::Mutex` (feature `std`), for threads and for tokio (the lock is never held
/// across an `.await`).
#[cfg(feature = "std")]
#[derive(Debug)]
pub enum StdRawMutex {}

#[cfg(feature = "std")]
impl RawMutex for StdRawMutex {
    type Mutex<T> = std::sync::Mutex<T>;
}

#[cfg(feature = "std")]
impl<T> Lock<T> for std::sync::Mutex<T> {
    fn new(value: T) -> Self {
        std::sync::Mutex::new(value)
    }

    fn lock<U>(&self, f: impl FnOnce(&mut T) -> U) -> Option<U> {
        // A panic elsewhere while locked cannot leave the session half-updated: the crate's
        // closures do not panic, so the poisoned value is still whole.
        let mut guard =
            std::sync::Mutex::lock(self).unwrap_or_else(std::sync::PoisonError::into_inner);
        Some(f(&mut guard))
    }
}

/// embassy-sync's blocking mutex over the raw mutex `M` (feature `embassy-sync`):
/// `CriticalSectionRawMutex` for tasks on several executors or interrupt priorities,
/// `ThreadModeRawMutex` or `NoopRawMutex` for tasks on one executor. The store's calls run
/// inside its lock: with `CriticalSectionRawMutex` that is a critical section.
#[cfg(feature = "embassy-sync")]
pub struct EmbassyRawMutex<M>(PhantomData<M>);

#[cfg(feature = "embassy-sync")]
impl<M> fmt::Debug for EmbassyRawMutex<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EmbassyRawMutex")
    }
}

#[cfg(feature = "embassy-sync")]
impl<M: embassy_sync::blocking_mutex::raw::RawMutex> RawMutex for EmbassyRawMutex<M> {
    type Mutex<T> = embassy_sync::blocking_mutex::Mutex<M, RefCell<T>>;
}

#[cfg(feature = "embassy-sync")]
impl<M: embassy_sync::blocking_mutex::raw::RawMutex, T> Lock<T>
    for embassy_sync::blocking_mutex::Mutex<M, RefCell<T>>
{
    fn new(value: T) -> Self {
        embassy_sync::blocking_mutex::Mutex::new(RefCell::new(value))
    }

    fn lock<U>(&self, f: impl FnOnce(&mut T) -> U) -> Option<U> {
        embassy_sync::blocking_mutex::Mutex::lock(self, |cell| match cell.try_borrow_mut() {
            Ok(mut value) => Some(f(&mut value)),
            Err(_) => None,
        })
    }
}

/// What the session lock guards: the session and the callers' coordination.
struct Shared<'c, const A: usize, const R: usize, const W: usize> {
    session: Session<'c, A, R>,
    /// Bumped when a refresh, login or save ends; waiters wait for it to change.
    epoch: u32,
    /// A caller is saving a new refresh token: the others wait rather than save it again.
    saving: bool,
    /// Wakers of callers waiting for the epoch to change.
    wakers: heapless::Vec<Waker, W>,
}

impl<const A: usize, const R: usize, const W: usize> Shared<'_, A, R, W> {
    /// A refresh, login or save ended: wake every waiter.
    fn bump(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        while let Some(waker) = self.wakers.pop() {
            waker.wake();
        }
    }

    /// Whether the failure of the token request `flight` may be reported to the session: it is
    /// still the one in flight, or none is (the session then drops the abandoned request).
    /// Not while another caller's request is in flight: the session would fail that one.
    fn owns(&self, flight: Flight) -> bool {
        !self.session.is_refreshing() || Flight(self.session.poll_timeout()) == flight
    }

    /// Registers `waker` for the next bump; false when there is no room.
    fn register(&mut self, waker: &Waker) -> bool {
        self.wakers.iter().any(|w| w.will_wake(waker)) || self.wakers.push(waker.clone()).is_ok()
    }
}

/// The store and its last failure, behind their own lock (store I/O never holds the session's).
struct StoreSlot<S: TokenStore> {
    store: S,
    error: Option<S::Error>,
}

impl<S: TokenStore> StoreSlot<S> {
    fn save(&mut self, token: &str) -> bool {
        let saved = self.store.save(token);
        let ok = saved.is_ok();
        if let Err(e) = saved {
            self.error = Some(e);
        }
        ok
    }

    fn clear(&mut self) -> bool {
        let cleared = self.store.clear();
        let ok = cleared.is_ok();
        if let Err(e) = cleared {
            self.error = Some(e);
        }
        ok
    }
}

/// Where a part of a detached request lies: in the work area (where the session wrote it) or
/// in the side area (copied there). Byte ranges.
#[derive(Clone, Copy)]
enum Part {
    Work(usize, usize),
    Side(usize, usize),
}

/// A refresh or login request whose parts were moved out of the session's borrow, so that it
/// can be sent with the lock released.
#[derive(Clone, Copy)]
struct Detached {
    method: Method,
    endpoint: Endpoint,
    path: Part,
    content_type: Option<Part>,
    authorization: Option<Part>,
    body: Part,
}

/// What a caller does next, decided under the lock.
enum Next {
    /// Send the API request with the `Authorization` value in `side[..len]`.
    Api(usize),
    /// Send the detached refresh or login request.
    Token(Detached, Flight),
    /// Save the refresh token in `body[..len]`.
    Save(usize),
    /// Clear the store.
    Clear,
    /// Sleep this many milliseconds.
    Sleep(u32),
    /// Another caller's refresh, login or save is under way: wait for the epoch to move on
    /// from `epoch`, at most `ms` milliseconds.
    Wait { epoch: u32, ms: u32 },
    /// Poll again at once.
    Again,
    /// The step is over.
    Done,
    /// A buffer too small to detach the request: the call fails.
    TooSmall(BufferTooSmall),
}

/// `(start, end)` of `part` inside the memory `[lo, hi)`, if it lies there.
fn within(lo: usize, hi: usize, part: &[u8]) -> Option<(usize, usize)> {
    let at = part.as_ptr() as usize;
    let end = at.checked_add(part.len())?;
    (at >= lo && end <= hi).then(|| (at - lo, end - lo))
}

/// Copies `bytes` into `dst` at `*cursor`, advancing it; `None` when they do not fit.
fn copy_at(dst: &mut [u8], cursor: &mut usize, bytes: &[u8]) -> Option<(usize, usize)> {
    let start = *cursor;
    let end = start.checked_add(bytes.len())?;
    dst.get_mut(start..end)?.copy_from_slice(bytes);
    *cursor = end;
    Some((start, end))
}

fn str_at(buf: &[u8], (start, end): (usize, usize)) -> Option<&str> {
    core::str::from_utf8(buf.get(start..end)?).ok()
}

impl Detached {
    /// Moves `request`'s parts that lie outside `work` (at `[lo, hi)`) into `side`.
    fn new(request: &Request<'_>, (lo, hi): (usize, usize), side: &mut [u8]) -> Option<Self> {
        let mut cursor = 0;
        let mut place = |bytes: &[u8]| match within(lo, hi, bytes) {
            Some((start, end)) => Some(Part::Work(start, end)),
            None => copy_at(side, &mut cursor, bytes).map(|(start, end)| Part::Side(start, end)),
        };
        Some(Detached {
            method: request.method,
            endpoint: request.endpoint,
            path: place(request.path.as_bytes())?,
            content_type: match request.content_type {
                Some(value) => Some(place(value.as_bytes())?),
                None => None,
            },
            authorization: match request.authorization {
                Some(value) => Some(place(value.as_bytes())?),
                None => None,
            },
            body: place(request.body)?,
        })
    }

    /// The request again, over the buffers its parts were left in.
    fn request<'x>(&self, work: &'x [u8], side: &'x [u8]) -> Option<Request<'x>> {
        let bytes = |part: Part| match part {
            Part::Work(start, end) => work.get(start..end),
            Part::Side(start, end) => side.get(start..end),
        };
        let text = |part: Part| core::str::from_utf8(bytes(part)?).ok();
        Some(Request {
            method: self.method,
            endpoint: self.endpoint,
            path: text(self.path)?,
            content_type: match self.content_type {
                Some(part) => Some(text(part)?),
                None => None,
            },
            authorization: match self.authorization {
                Some(part) => Some(text(part)?),
                None => None,
            },
            body: bytes(self.body)?,
        })
    }
}

/// The session shared by many threads or tasks. See the [module docs](self).
///
/// `M` is the kind of mutex, `C` the clock (shared, so `Sync` for threads), `S` the token
/// store; `A` and `R` the session's token capacities; `W` how many waiting callers are woken
/// precisely when a refresh ends (the others look again every 5 ms).
pub struct SharedClient<
    'c,
    M: RawMutex,
    C,
    S: TokenStore,
    const A: usize = DEFAULT_ACCESS_CAPACITY,
    const R: usize = DEFAULT_REFRESH_CAPACITY,
    const W: usize = 16,
> {
    shared: M::Mutex<Shared<'c, A, R, W>>,
    store: M::Mutex<StoreSlot<S>>,
    clock: C,
    config: ClientConfig,
}

impl<M: RawMutex, C, S: TokenStore, const A: usize, const R: usize, const W: usize> fmt::Debug
    for SharedClient<'_, M, C, S, A, R, W>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.shared.lock(|s| s.session.stats());
        f.debug_struct("SharedClient")
            .field("stats", &stats)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// Cancels what a caller left unfinished when it is dropped mid-way (a cancelled future, a
/// panicking transport): a refresh or login counts as unanswered, a save as not done, and the
/// waiters are woken.
struct Unfinished<
    's,
    'c,
    M: RawMutex,
    C: Clock,
    S: TokenStore,
    const A: usize,
    const R: usize,
    const W: usize,
> {
    client: &'s SharedClient<'c, M, C, S, A, R, W>,
    /// A token request whose flight is identified by this timeout, or (`None`) a save.
    exchange: Option<Flight>,
    armed: bool,
}

/// A token request in flight, known by the instant the session will give up on it
/// ([`Session::poll_timeout`] while it is in flight): unique, since a new one starts only
/// once the last has ended or timed out.
#[derive(Clone, Copy, PartialEq, Eq)]
struct Flight(Option<Instant>);

impl<M: RawMutex, C: Clock, S: TokenStore, const A: usize, const R: usize, const W: usize> Drop
    for Unfinished<'_, '_, M, C, S, A, R, W>
{
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let exchange = self.exchange;
        let clock = &self.client.clock;
        let _ = self.client.shared.lock(|s| {
            let now = clock.now();
            match exchange {
                Some(flight) if s.owns(flight) => {
                    let _ = s.session.handle_no_answer(now);
                }
                Some(_) => {}
                None => s.saving = false,
            }
            s.bump();
        });
    }
}

/// The shared client's error for a call without a transport.
pub type StoreError<S> = Error<Never, <S as TokenStore>::Error>;

impl<'c, M, C, S, const A: usize, const R: usize, const W: usize> SharedClient<'c, M, C, S, A, R, W>
where
    M: RawMutex,
    C: Clock,
    S: TokenStore,
{
    /// A shared client around `session`, reading `clock` and keeping the refresh token in
    /// `store`.
    pub fn new(session: Session<'c, A, R>, clock: C, store: S) -> Self {
        SharedClient {
            shared: Lock::new(Shared {
                session,
                epoch: 0,
                saving: false,
                wakers: heapless::Vec::new(),
            }),
            store: Lock::new(StoreSlot { store, error: None }),
            clock,
            config: ClientConfig::default(),
        }
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(mut self, config: ClientConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs `f` on the session, locked: to read its state, or to provision tokens. Do not call
    /// this client from inside `f`: with `std` that deadlocks; with embassy-sync the inner call
    /// gets `None`.
    pub fn session<U>(&self, f: impl FnOnce(&mut Session<'c, A, R>) -> U) -> Option<U> {
        self.shared.lock(|s| {
            let result = f(&mut s.session);
            // New tokens may end a wait.
            s.bump();
            result
        })
    }

    /// The session's counters.
    pub fn stats(&self) -> Stats {
        self.shared.lock(|s| s.session.stats()).unwrap_or_default()
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// The last store failure during a `send`, if any (see
    /// [`Client::take_store_error`](crate::Client::take_store_error)).
    pub fn take_store_error(&self) -> Option<S::Error> {
        self.store.lock(|slot| slot.error.take()).flatten()
    }

    /// Loads the refresh token saved by an earlier run into the session, as
    /// [`Client::restore`](crate::Client::restore) does, using `scratch` (wiped afterwards).
    pub fn restore(&self, scratch: &mut [u8]) -> Result<bool, StoreError<S>> {
        let (lo, hi) = range_of(scratch);
        let loaded = self.store.lock(|slot| match slot.store.load(scratch) {
            Ok(Some(token)) => Ok(within(lo, hi, token.as_bytes())),
            Ok(None) => Ok(None),
            Err(e) => Err(e),
        });
        let result = match loaded {
            None => Err(Error::RetryLater { last: None }),
            Some(Err(e)) => Err(Error::Store(e)),
            Some(Ok(None)) => Ok(false),
            Some(Ok(Some(at))) => {
                let token = str_at(scratch, at).unwrap_or_default();
                let stored = self.shared.lock(|s| {
                    let stored = adopt_stored(&mut s.session, &self.clock, token);
                    s.bump();
                    stored
                });
                match stored {
                    None => Err(Error::RetryLater { last: None }),
                    Some(Stored::Expired) => match self.store.lock(|slot| slot.store.clear()) {
                        Some(Err(e)) => Err(Error::Store(e)),
                        _ => Ok(false),
                    },
                    Some(stored) => stored.into_result(),
                }
            }
        };
        wipe::bytes(scratch);
        result
    }

    /// Forgets the tokens and clears the store.
    pub fn logout(&self) -> Result<(), StoreError<S>> {
        let _ = self.shared.lock(|s| {
            s.session.logout();
            s.bump();
        });
        match self.store.lock(|slot| slot.store.clear()) {
            Some(Err(e)) => Err(Error::Store(e)),
            _ => Ok(()),
        }
    }

    /// Splits the caller's scratch buffer: the side area (an `Authorization` value, or the parts
    /// of a token request that lie outside the work area) and the work area (the session's).
    fn split(scratch: &mut [u8]) -> Result<(&mut [u8], &mut [u8]), BufferTooSmall> {
        let side = A.saturating_add(BEARER);
        if scratch.len() <= side {
            return Err(BufferTooSmall {
                needed: side.saturating_add(1),
            });
        }
        Ok(scratch.split_at_mut(side))
    }

    /// Under the lock: polls the step and moves what the caller needs out of the session's
    /// borrow.
    fn next<E>(
        &self,
        step: &mut SendStep<'_, E>,
        work: &mut [u8],
        side: &mut [u8],
        body: &mut [u8],
    ) -> Next {
        let work_at = range_of(work);
        let wait = self.shared.lock(|s| {
            // Read under the lock: a time read before it could be older than what another
            // caller has since shown the session, which would take it for a clock going back.
            let now = self.clock.now();
            if s.saving {
                // Another caller saves the new refresh token; the session uses it after that.
                let ms = s.session.policy().request_timeout.as_millis();
                return Next::Wait {
                    epoch: s.epoch,
                    ms: u32::try_from(ms).unwrap_or(u32::MAX).max(1),
                };
            }
            let epoch = s.epoch;
            let next = match step.poll(&mut s.session, now, work) {
                Action::SendApi(api) => {
                    let mut cursor = 0;
                    let value = api.authorization.unwrap_or_default().as_bytes();
                    match copy_at(side, &mut cursor, value) {
                        Some(_) => Next::Api(cursor),
                        None => Next::TooSmall(BufferTooSmall {
                            needed: value.len(),
                        }),
                    }
                }
                Action::SendToken { request, .. } => match Detached::new(&request, work_at, side) {
                    Some(detached) => Next::Token(detached, Flight(s.session.poll_timeout())),
                    None => {
                        let needed = request.path.len()
                            + request.content_type.map_or(0, str::len)
                            + request.authorization.map_or(0, str::len);
                        // This poll put the request in flight; it will not be sent: it counts
                        // as unanswered.
                        let _ = s.session.handle_no_answer(now);
                        s.bump();
                        Next::TooSmall(BufferTooSmall { needed })
                    }
                },
                Action::Save(token) => {
                    let mut cursor = 0;
                    match copy_at(body, &mut cursor, token.expose().as_bytes()) {
                        Some(_) => {
                            s.saving = true;
                            Next::Save(cursor)
                        }
                        // The body buffer is smaller than a refresh token: not saved.
                        None => {
                            step.handle_saved(&mut s.session, false);
                            Next::Again
                        }
                    }
                }
                Action::ClearStore => Next::Clear,
                Action::Sleep { ms, .. } => {
                    if s.session.is_refreshing() {
                        Next::Wait { epoch, ms }
                    } else {
                        Next::Sleep(ms)
                    }
                }
                Action::Done => Next::Done,
            };
            next
        });
        wait.unwrap_or(Next::Done)
    }

    /// After the API request: wipes the copy of the `Authorization` value in `side[..len]`
    /// (the only bytes written there) and reports the answer or failure.
    fn after_api<E>(
        &self,
        step: &mut SendStep<'_, E>,
        sent: Result<Response, E>,
        side: &mut [u8],
        len: usize,
    ) {
        wipe::bytes(side.get_mut(..len).unwrap_or_default());
        let _ = self.shared.lock(|s| match sent {
            Ok(response) => step.handle_api_response(&mut s.session, self.clock.now(), response),
            Err(e) => step.handle_api_error(&mut s.session, e),
        });
    }

    /// After the token request: wipes the work and side areas (the request carried the refresh
    /// token or the password), reports the answer (in `body`) or failure, wakes the waiters,
    /// and wipes `body`.
    fn after_token<E: TransportError>(
        &self,
        step: &mut SendStep<'_, E>,
        flight: Flight,
        sent: Option<Result<Response, E>>,
        [work, side, body]: [&mut [u8]; 3],
    ) {
        wipe::bytes(work);
        wipe::bytes(side);
        let _ = self.shared.lock(|s| {
            let (now, wall) = (self.clock.now(), self.clock.unix_time());
            match sent {
                // An answer, even to a request the session has given up on: it tells the
                // answers apart itself.
                Some(Ok(response)) => {
                    step.handle_token_response(&mut s.session, now, wall, response, body)
                }
                Some(Err(e)) if s.owns(flight) => step.handle_token_error(&mut s.session, now, e),
                None if s.owns(flight) => {
                    let _ = s.session.handle_no_answer(now);
                }
                // No answer to a request the session gave up on while another caller's is in
                // flight: that one decides.
                Some(Err(_)) | None => {}
            }
            s.bump();
        });
        // The answer carried the new tokens (the session has copied them), or part of them.
        wipe::bytes(body);
    }

    /// Saves the refresh token in `body[..len]`, wipes it, reports, and wakes the waiters (also
    /// if the caller is dropped or panics mid-save).
    fn save<E>(&self, step: &mut SendStep<'_, E>, body: &mut [u8], len: usize) {
        let mut guard = self.unfinished(None);
        let saved = match str_at(body, (0, len)) {
            Some(token) => self.store.lock(|slot| slot.save(token)).unwrap_or(false),
            None => false,
        };
        wipe::bytes(body);
        let _ = self.shared.lock(|s| {
            step.handle_saved(&mut s.session, saved);
            s.saving = false;
            s.bump();
        });
        guard.armed = false;
    }

    /// Clears the store and reports.
    fn clear<E>(&self, step: &mut SendStep<'_, E>) {
        let cleared = self.store.lock(StoreSlot::clear).unwrap_or(false);
        let _ = self
            .shared
            .lock(|s| step.handle_cleared(&mut s.session, cleared));
    }

    /// A guard that cancels an unfinished exchange (`Some`) or save (`None`) when dropped
    /// armed.
    fn unfinished(&self, exchange: Option<Flight>) -> Unfinished<'_, 'c, M, C, S, A, R, W> {
        Unfinished {
            client: self,
            exchange,
            armed: true,
        }
    }
}

/// The caller's API request with the `Authorization` value copied to `side[..len]`.
fn with_authorization<'x>(
    request: &Request<'x>,
    side: &'x [u8],
    len: usize,
) -> Option<Request<'x>> {
    Some(Request {
        authorization: Some(str_at(side, (0, len))?),
        ..*request
    })
}

/// The error for buffers too small to detach a request, after wiping them.
fn too_small<T, S>(e: BufferTooSmall, work: &mut [u8], side: &mut [u8]) -> Error<T, S> {
    wipe::bytes(work);
    wipe::bytes(side);
    Error::Fatal(SessionError::BufferTooSmall(e))
}

/// `[start, end)` addresses of `buf`.
fn range_of(buf: &[u8]) -> (usize, usize) {
    let range = buf.as_ptr_range();
    (range.start as usize, range.end as usize)
}

/// The elapsed milliseconds between two instants, as a `u32`.
#[cfg(feature = "async")]
fn elapsed_ms(from: Instant, to: Instant) -> u32 {
    u32::try_from(to.saturating_duration_since(from).as_millis()).unwrap_or(u32::MAX)
}

#[cfg(feature = "std")]
mod blocking {
    use std::sync::Arc;
    use std::task::Wake;

    use embedded_hal::delay::DelayNs;

    use super::*;
    use crate::transport::Transport;

    /// Wakes a parked thread.
    struct Unpark(std::thread::Thread);

    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }

        fn wake_by_ref(self: &Arc<Self>) {
            self.0.unpark();
        }
    }

    impl<M, C, S, const A: usize, const R: usize, const W: usize> SharedClient<'_, M, C, S, A, R, W>
    where
        M: RawMutex,
        C: Clock,
        S: TokenStore,
    {
        /// Sends `request` to the API with a valid access token, from any thread (feature
        /// `std`), as [`Client::send`](crate::Client::send) does: refreshing first when the
        /// session says so (one caller at a time; the others wait for it or send with the
        /// token still valid), sleeping through backoffs with `delay`, retrying once after a
        /// 401.
        ///
        /// `scratch` is a [`Client`](crate::Client)'s scratch buffer plus `A + 7` bytes (391
        /// by default; 2 KiB in all is ample for SimpleJWT): its first `A + 7` bytes hold a
        /// copy of the `Authorization` value while the request is sent (the lock released), and
        /// of a token request's path and headers; the rest receives refresh and login request
        /// bodies. The answer goes into `body`, which also receives token endpoint answers.
        pub fn send<T: Transport, D: DelayNs>(
            &self,
            transport: &mut T,
            delay: &mut D,
            request: &Request<'_>,
            scratch: &mut [u8],
            body: &mut [u8],
        ) -> Result<Response, Error<T::Error, S::Error>> {
            let (side, work) =
                Self::split(scratch).map_err(|e| Error::Fatal(SessionError::BufferTooSmall(e)))?;
            let mut step = SendStep::new(self.clock.now(), *request, self.config);
            loop {
                match self.next(&mut step, work, side, body) {
                    Next::Api(len) => {
                        let sent = match with_authorization(request, side, len) {
                            Some(api) => transport.send(&api, body),
                            None => return Err(Error::RetryLater { last: None }),
                        };
                        self.after_api(&mut step, sent, side, len);
                    }
                    Next::Token(detached, flight) => {
                        let mut guard = self.unfinished(Some(flight));
                        let sent = detached
                            .request(work, side)
                            .map(|token_request| transport.send(&token_request, body));
                        self.after_token(&mut step, flight, sent, [work, side, body]);
                        guard.armed = false;
                    }
                    Next::Save(len) => self.save(&mut step, body, len),
                    Next::Clear => self.clear(&mut step),
                    Next::Sleep(ms) => delay.delay_ms(ms),
                    Next::Wait { epoch, ms } => {
                        let slept = self.wait(epoch, ms);
                        step.handle_woken(slept);
                    }
                    Next::Again => {}
                    Next::TooSmall(e) => return Err(too_small(e, work, side)),
                    Next::Done => return step.finish().map_err(Error::with_store),
                }
            }
        }

        /// Parks this thread until the epoch moves on from `epoch`, at most `ms` milliseconds
        /// (real time). Returns the milliseconds waited.
        fn wait(&self, epoch: u32, ms: u32) -> u32 {
            let start = std::time::Instant::now();
            let deadline = start + std::time::Duration::from_millis(u64::from(ms));
            let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
            while let Some(Some(registered)) = self
                .shared
                .lock(|s| (s.epoch == epoch).then(|| s.register(&waker)))
            {
                let left = deadline.saturating_duration_since(std::time::Instant::now());
                if left.is_zero() {
                    break;
                }
                let poll = std::time::Duration::from_millis(u64::from(UNREGISTERED_POLL_MS));
                std::thread::park_timeout(if registered { left } else { left.min(poll) });
            }
            u32::try_from(start.elapsed().as_millis()).unwrap_or(u32::MAX)
        }
    }
}

#[cfg(feature = "async")]
mod nonblocking {
    use core::future::{poll_fn, Future};
    use core::pin::pin;
    use core::task::Poll;

    use embedded_hal_async::delay::DelayNs;

    use super::*;
    use crate::transport::AsyncTransport;

    impl<M, C, S, const A: usize, const R: usize, const W: usize> SharedClient<'_, M, C, S, A, R, W>
    where
        M: RawMutex,
        C: Clock,
        S: TokenStore,
    {
        /// The async [`send`](SharedClient::send) (feature `async`), from any task: on tokio
        /// with [`StdRawMutex`], on embassy with [`EmbassyRawMutex`]. Same rules and buffers.
        ///
        /// If the future is dropped while it performs a refresh or login, that refresh counts
        /// as unanswered and the next caller tries again.
        pub async fn send_async<T: AsyncTransport, D: DelayNs>(
            &self,
            transport: &mut T,
            delay: &mut D,
            request: &Request<'_>,
            scratch: &mut [u8],
            body: &mut [u8],
        ) -> Result<Response, Error<T::Error, S::Error>> {
            let (side, work) =
                Self::split(scratch).map_err(|e| Error::Fatal(SessionError::BufferTooSmall(e)))?;
            let mut step = SendStep::new(self.clock.now(), *request, self.config);
            loop {
                match self.next(&mut step, work, side, body) {
                    Next::Api(len) => {
                        let sent = match with_authorization(request, side, len) {
                            Some(api) => transport.send(&api, body).await,
                            None => return Err(Error::RetryLater { last: None }),
                        };
                        self.after_api(&mut step, sent, side, len);
                    }
                    Next::Token(detached, flight) => {
                        let mut guard = self.unfinished(Some(flight));
                        let sent = match detached.request(work, side) {
                            Some(token_request) => Some(transport.send(&token_request, body).await),
                            None => None,
                        };
                        self.after_token(&mut step, flight, sent, [work, side, body]);
                        guard.armed = false;
                    }
                    Next::Save(len) => self.save(&mut step, body, len),
                    Next::Clear => self.clear(&mut step),
                    Next::Sleep(ms) => delay.delay_ms(ms).await,
                    Next::Wait { epoch, ms } => {
                        let slept = self.wait_async(epoch, ms, delay).await;
                        step.handle_woken(slept);
                    }
                    Next::Again => {}
                    Next::TooSmall(e) => return Err(too_small(e, work, side)),
                    Next::Done => return step.finish().map_err(Error::with_store),
                }
            }
        }

        /// Waits until the epoch moves on from `epoch`, at most `ms` milliseconds of `delay`.
        /// Returns the milliseconds waited, by the clock.
        async fn wait_async<D: DelayNs>(&self, epoch: u32, ms: u32, delay: &mut D) -> u32 {
            let start = self.clock.now();
            let mut left = ms;
            while left > 0 {
                let registered = poll_fn(|cx| {
                    Poll::Ready(
                        self.shared
                            .lock(|s| (s.epoch == epoch).then(|| s.register(cx.waker()))),
                    )
                })
                .await;
                let Some(Some(registered)) = registered else {
                    break;
                };
                let nap = if registered {
                    left
                } else {
                    left.min(UNREGISTERED_POLL_MS)
                };
                let mut sleep = pin!(delay.delay_ms(nap));
                let woken = poll_fn(|cx| {
                    let moved = self
                        .shared
                        .lock(|s| {
                            if s.epoch != epoch {
                                return true;
                            }
                            // Woken by the delay or spuriously: stay registered.
                            let _ = s.register(cx.waker());
                            false
                        })
                        .unwrap_or(true);
                    if moved {
                        return Poll::Ready(true);
                    }
                    sleep.as_mut().poll(cx).map(|()| false)
                })
                .await;
                if woken {
                    break;
                }
                left -= nap;
            }
            elapsed_ms(start, self.clock.now())
        }
    }
}
