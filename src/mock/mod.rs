//! The host test kit (feature `mock`, std only): what a firmware author needs to unit-test their
//! own token handling on a laptop. It owns a transport mock with expectations, a clock the test
//! moves, an in-memory token store, a JWT builder and canned server answers.
//!
//! Turn it on in your `[dev-dependencies]` only; it is never part of an embedded build:
//!
//! ```toml
//! [dependencies]
//! jwt-refresh = "0.1"
//! [dev-dependencies]
//! jwt-refresh = { version = "0.1", features = ["mock"] }
//! ```
//!
//! - [`MockTransport`] plays a list of [`Transaction`]s, in `embedded-hal-mock`'s style: each
//!   expects a request (any field may be left out) and gives an answer or a transport error;
//!   `done()` panics when expectations remain or a request nobody expected came. Blocking and
//!   async.
//! - [`MockClock`] is a shared handle on a clock the test moves (`advance`, `set`, an optional
//!   wall time). It is also a `DelayNs` that advances itself, so a backoff takes no real time;
//!   [`MockClock::delay_with`] puts `embedded-hal-mock`'s `CheckedDelay` in front of it.
//! - [`MemStore`] is an in-memory [`TokenStore`](crate::TokenStore) that can be told to fail
//!   its next load, save or clear.
//! - [`TokenBuilder`] mints compact JWTs with the claims you choose (the crate never verifies a
//!   signature).
//! - [`simplejwt`] and [`oauth2`] hold canned server answers.
//!
//! ```
//! use jwt_refresh::mock::{simplejwt, MemStore, MockClock, MockTransport, TokenBuilder, Transaction};
//! use jwt_refresh::protocol::{Credentials, SimpleJwt};
//! use jwt_refresh::{Client, Protocol, RefreshPolicy, Request, Session};
//!
//! let (access, refresh) = (TokenBuilder::access(0, 300).build(), TokenBuilder::refresh(0, 86_400).build());
//! let mut transport = MockTransport::new(&[
//!     simplejwt::login(&access, &refresh),
//!     Transaction::get("/api/data/").bearer(&access).respond(200, "[]"),
//! ]);
//! let (clock, store) = (MockClock::new(), MemStore::new());
//! let protocol = Protocol::SimpleJwt(SimpleJwt {
//!     credentials: Some(Credentials { username: "device-7", password: "secret" }),
//!     ..SimpleJwt::default()
//! });
//! let session: Session<'_> = Session::new(protocol, RefreshPolicy::default());
//! let mut scratch = [0u8; 512];
//! let mut client = Client::new(session, transport.clone(), clock.clone(), clock.clone(), store.clone(), &mut scratch);
//! let mut body = [0u8; 1024];
//! assert_eq!(client.send(&Request::get("/api/data/"), &mut body).unwrap().status, 200);
//! assert_eq!(store.token().as_deref(), Some(refresh.as_str()));
//! transport.done();
//! ```
//!
//! Every mismatch panics, as in `embedded-hal-mock`: that is the kit's job, so the no-panic
//! rules of the library do not apply here. Messages never show a secret: token text, passwords
//! and JSON or form values are replaced by `<redacted N bytes>`, keeping the names and lengths
//! that show which field differs.

#![allow(
    clippy::panic,
    reason = "a mock fails a test by panicking on a broken expectation, as embedded-hal-mock does"
)]

mod answers;
mod clock;
mod redact;
mod store;
mod token;
mod transport;

pub use answers::{oauth2, simplejwt};
pub use clock::{AdvancingDelay, MockClock};
pub use store::{MemStore, StoreError};
pub use token::{TokenBuilder, EPOCH};
pub use transport::{MockTransport, SentRequest, Transaction};

/// `embedded-hal-mock`, which the kit is built on, for its `CheckedDelay` (and the rest) at the
/// same version.
pub use embedded_hal_mock;
