//! The async driver (feature `async`): [`AsyncClient`] runs the same loop as
//! [`Client`], over an [`AsyncTransport`] and sleeping through
//! `embedded_hal_async::delay::DelayNs`, for embassy and other executors.

use core::ops::{Deref, DerefMut};

use embedded_hal_async::delay::DelayNs;

use crate::client::{drive, Client, ClientConfig, Error};
use crate::clock::Clock;
use crate::fmt::log_warn;
use crate::protocol::{Endpoint, RefreshError, Request, TokenResponse};
use crate::session::{ApiVerdict, Output, Session};
use crate::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use crate::store::TokenStore;
use crate::transport::{AsyncTransport, BearerError, Error as _, ErrorKind, Response};

/// The async driver: a [`Client`] whose `send` is `async`. It dereferences to the `Client` for
/// everything else (`restore`, `logout`, `session`, `take_store_error`, ...).
#[derive(Debug)]
pub struct AsyncClient<
    'c,
    'b,
    T,
    C,
    D,
    S,
    const A: usize = DEFAULT_ACCESS_CAPACITY,
    const R: usize = DEFAULT_REFRESH_CAPACITY,
>(Client<'c, 'b, T, C, D, S, A, R>)
where
    S: TokenStore;

impl<'c, 'b, T, C, D, S, const A: usize, const R: usize> AsyncClient<'c, 'b, T, C, D, S, A, R>
where
    T: AsyncTransport,
    C: Clock,
    D: DelayNs,
    S: TokenStore,
{
    /// An async client around `session`; the buffers are used as by [`Client::new`].
    pub fn new(
        session: Session<'c, A, R>,
        transport: T,
        clock: C,
        delay: D,
        store: S,
        scratch: &'b mut [u8],
    ) -> Self {
        AsyncClient(Client::new(
            session, transport, clock, delay, store, scratch,
        ))
    }

    /// Replaces the configuration.
    #[must_use]
    pub fn with_config(self, config: ClientConfig) -> Self {
        AsyncClient(self.0.with_config(config))
    }

    /// Sends `request` with a valid access token, as [`Client::send`].
    pub async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Error<T::Error, S::Error>> {
        let inner = &mut self.0;
        drive!(inner, request, body, .await)
    }
}

impl<'c, 'b, T, C, D, S: TokenStore, const A: usize, const R: usize> Deref
    for AsyncClient<'c, 'b, T, C, D, S, A, R>
{
    type Target = Client<'c, 'b, T, C, D, S, A, R>;

    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl<T, C, D, S: TokenStore, const A: usize, const R: usize> DerefMut
    for AsyncClient<'_, '_, T, C, D, S, A, R>
{
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}
