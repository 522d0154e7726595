//! The async driver (feature `async`): [`AsyncClient`] runs the same loop as [`Client`] around
//! the same sans-IO [`SendStep`], over an [`AsyncTransport`] and sleeping through
//! `embedded_hal_async::delay::DelayNs`, for embassy and other executors.

use core::ops::{Deref, DerefMut};

use embedded_hal_async::delay::DelayNs;

use crate::client::{Client, ClientConfig, Error};
use crate::clock::Clock;
use crate::driver::{Action, SendStep};
use crate::protocol::Request;
use crate::session::Session;
use crate::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use crate::store::TokenStore;
use crate::transport::{AsyncTransport, Response};
use crate::wipe;

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

    /// Ends the client and gives back its session, as [`Client::into_session`].
    pub fn into_session(self) -> Session<'c, A, R> {
        self.0.into_session()
    }

    /// Sends `request` with a valid access token, as [`Client::send`]: the same loop around a
    /// [`SendStep`], awaiting the transport and the delay.
    pub async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, Error<T::Error, S::Error>> {
        let c = &mut self.0;
        let mut step = SendStep::new(c.clock.now(), *request, c.config);
        loop {
            match step.poll(&mut c.session, c.clock.now(), c.scratch) {
                Action::SendApi(api) => match c.transport.send(&api, body).await {
                    Ok(response) => {
                        step.handle_api_response(&mut c.session, c.clock.now(), response)
                    }
                    Err(e) => step.handle_api_error(&mut c.session, e),
                },
                Action::SendToken { request, .. } => {
                    let sent = c.transport.send(&request, body).await;
                    // The request carried the refresh token or the password.
                    wipe::bytes(c.scratch);
                    let (now, wall) = (c.clock.now(), c.clock.unix_time());
                    match sent {
                        Ok(response) => {
                            step.handle_token_response(&mut c.session, now, wall, response, body)
                        }
                        Err(e) => step.handle_token_error(&mut c.session, now, e),
                    }
                    // The answer carried the new tokens (the session has copied them), or part
                    // of them before the transport failed.
                    wipe::bytes(body);
                }
                Action::Save(token) => {
                    let saved = c.store.save(token.expose());
                    step.handle_saved(&mut c.session, saved.is_ok());
                    if let Err(e) = saved {
                        c.store_error = Some(e);
                    }
                }
                Action::ClearStore => {
                    let cleared = c.store.clear();
                    step.handle_cleared(&mut c.session, cleared.is_ok());
                    if let Err(e) = cleared {
                        c.store_error = Some(e);
                    }
                }
                Action::Sleep { ms, .. } => c.delay.delay_ms(ms).await,
                Action::Done => return step.finish().map_err(Error::with_store),
            }
        }
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
