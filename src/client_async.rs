//! The async driver (feature `async`): [`AsyncClient`] runs the same loop as
//! [`Client`](crate::Client), over an [`AsyncTransport`] and sleeping through
//! `embedded_hal_async::delay::DelayNs`, for embassy and other executors.

use core::fmt;

use embedded_hal_async::delay::DelayNs;

use crate::client::{drive, restore, ClientConfig, Error};
use crate::clock::Clock;
use crate::fmt::log_warn;
use crate::protocol::{Endpoint, RefreshError, Request, TokenResponse};
use crate::session::{ApiVerdict, Output, Session};
use crate::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use crate::store::TokenStore;
use crate::transport::{AsyncTransport, BearerError, Error as _, ErrorKind, Response};

/// The async driver. Its methods mirror [`Client`](crate::Client)'s.
pub struct AsyncClient<
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
    session: Session<'c, A, R>,
    transport: T,
    clock: C,
    delay: D,
    store: S,
    scratch: &'b mut [u8],
    config: ClientConfig,
    store_error: Option<<S as TokenStore>::Error>,
}

impl<T, C, D, S: TokenStore, const A: usize, const R: usize> fmt::Debug
    for AsyncClient<'_, '_, T, C, D, S, A, R>
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncClient")
            .field("session", &self.session)
            .field("config", &self.config)
            .field("store_failed", &self.store_error.is_some())
            .finish_non_exhaustive()
    }
}

impl<'c, 'b, T, C, D, S, const A: usize, const R: usize> AsyncClient<'c, 'b, T, C, D, S, A, R>
where
    T: AsyncTransport,
    C: Clock,
    D: DelayNs,
    S: TokenStore,
{
    /// An async client around `session`; the buffers are used as by
    /// [`Client::new`](crate::Client::new).
    pub fn new(
        session: Session<'c, A, R>,
        transport: T,
        clock: C,
        delay: D,
        store: S,
        scratch: &'b mut [u8],
    ) -> Self {
        AsyncClient {
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

    /// Loads the refresh token saved by an earlier run, as [`Client::restore`](crate::Client::restore).
    pub fn restore(&mut self) -> Result<bool, Error<T::Error, S::Error>> {
        restore(
            &mut self.session,
            &self.clock,
            &mut self.store,
            self.scratch,
        )
        .map_err(Error::Store)
    }

    /// Sends `request` with a valid access token, as [`Client::send`](crate::Client::send).
    pub async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Error<T::Error, S::Error>> {
        drive!(self, request, body, .await)
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

    /// The transport.
    pub fn transport_mut(&mut self) -> &mut T {
        &mut self.transport
    }

    /// The last failure to save a refresh token, if any (the tokens stayed usable in RAM).
    pub fn take_store_error(&mut self) -> Option<S::Error> {
        self.store_error.take()
    }
}
