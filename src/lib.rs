//! `jwt-refresh` keeps a device or service authenticated against an HTTP API that uses
//! short-lived JWT access tokens and longer-lived refresh tokens.
//!
//! It is `no_std`, never allocates, and runs the same on a Cortex-M microcontroller and on a
//! Linux server. Every buffer has a capacity fixed at compile time: a token that does not fit
//! is a typed error, never a truncation or a panic.
//!
//! **The client never verifies signatures.** The server does. This crate reads a token's claims
//! only to decide *when* to refresh (RFC 8725 section 3.10): never use them for authorization.
//!
//! # Layers
//! - [`claims`]: reads a token's registered claims (`exp`, `nbf`, `iat`, `iss`, `sub`, `jti`,
//!   `aud`) into fixed-size buffers, with [`Claims::decode`], or only its times with
//!   [`TimeClaims::decode`].
//! - [`policy`]: when to refresh ([`RefreshPolicy`]): margins, jitter, backoff.
//! - [`protocol`]: the SimpleJWT and OAuth 2.0 request bodies and answers.
//! - [`session`]: the sans-IO state machine ([`Session`]) that decides, before every request,
//!   whether to send, refresh, log in, wait or give up.
//! - [`driver`]: one `send` call as a sans-IO step ([`SendStep`]) that answers with an
//!   [`Action`]: send the API or token request, save or clear the refresh token, sleep, done.
//!   [`Client`] (blocking) and `AsyncClient` (feature `async`) are short loops that perform
//!   those actions with your [`Transport`], [`Clock`], delay and [`TokenStore`]; an RTOS task
//!   or an executor of your own can drive the step too.
//! - [`time`]: [`Instant`] and [`Duration`] on the caller's monotonic clock, [`UnixTime`].
//! - `shared` (features `std` or `async`): `SharedClient`, one session for many threads or
//!   tasks; its lock is never held across I/O, and one caller performs each refresh.
//! - `reqwest` (feature `reqwest`, host only): `ReqwestTransport`, a ready `AsyncTransport`
//!   over reqwest on tokio, and `TokioDelay`.
//! - `reqwless` (feature `reqwless`, firmware): `ReqwlessTransport`, a ready `AsyncTransport`
//!   over reqwless on any `embedded-nal-async` stack (embassy-net), no std, no alloc.
//! - `ureq` (feature `ureq`, host only): `UreqTransport`, a ready blocking [`Transport`] over
//!   ureq 3.
//! - `mock` (feature `mock`, host only): a kit for unit-testing your own code that uses the
//!   client: a transport mock with expectations, a clock the test moves, an in-memory store,
//!   a JWT builder and canned server answers.
//!
//! # Call protocol
//! **A [`Session`] never reads a clock, sleeps or does I/O: `now` is an argument everywhere.
//! Before each API request call [`Session::poll`] and act on its [`Output`]: send the refresh or
//! login request it gives and feed the answer back with [`Session::handle_token_response`] (or
//! [`Session::handle_no_answer`]), save a [`Output::Persist`]ed refresh token and confirm with
//! [`Session::handle_persisted`], then poll again, until it answers [`Output::Send`] (or
//! [`Output::Timeout`], [`Output::LoginRequired`], [`Output::Failed`]). Report the API's status
//! with [`Session::handle_api_status`]. Calling `poll` early or twice is harmless.**
//!
//! ```
//! use jwt_refresh::protocol::{Credentials, SimpleJwt};
//! use jwt_refresh::{Instant, Output, Protocol, RefreshPolicy, Session, TokenResponse};
//!
//! let protocol = Protocol::SimpleJwt(SimpleJwt {
//!     credentials: Some(Credentials { username: "device-7", password: "secret" }),
//!     ..SimpleJwt::default()
//! });
//! let mut session: Session<'_> = Session::new(protocol, RefreshPolicy::default());
//! let mut buf = [0u8; 512];
//! let now = Instant::from_secs(0);
//!
//! // No tokens yet: the session asks for a login and gives the request to send.
//! let Output::Login(request) = session.poll(now, &mut buf) else { unreachable!() };
//! assert_eq!(request.path, "/api/token/");
//! assert_eq!(request.body, br#"{"username":"device-7","password":"secret"}"#);
//!
//! // The server's answer (real ones carry JWTs; opaque tokens are used until rejected).
//! let body = br#"{"refresh":"r-1","access":"a-1"}"#;
//! let answer = TokenResponse { status: 200, body, retry_after: None };
//! session.handle_token_response(now, None, &answer)?;
//!
//! // A new refresh token is handed over for saving before the access token is used.
//! let Output::Persist(refresh) = session.poll(now, &mut buf) else { unreachable!() };
//! assert_eq!(refresh.expose(), "r-1");
//! session.handle_persisted(true);
//!
//! let Output::Send { authorization, .. } = session.poll(now, &mut buf) else { unreachable!() };
//! assert_eq!(authorization, "Bearer a-1");
//! # Ok::<(), jwt_refresh::RefreshError>(())
//! ```
//!
//! # Features
//! - `defmt`: `defmt::Format` for the public types. Errors, claims and session state never
//!   contain token text.
//! - `embassy-sync`: `shared::EmbassyRawMutex`, the `SharedClient` for embassy tasks on
//!   embassy-sync's blocking mutex (no std, no alloc).
//! - `reqwest` (host only): the module `reqwest` with `ReqwestTransport`, a ready
//!   `AsyncTransport` over reqwest, and `TokioDelay`, to run `AsyncClient` on tokio.
//! - `reqwless`: the module `reqwless` with `ReqwlessTransport` (no std, no alloc; needs Rust
//!   1.91, reqwless's own minimum, above the crate's 1.88). Plain `http://` unless your own
//!   `Cargo.toml` turns on reqwless's `embedded-tls`.
//! - `std` (host only): `SystemClock`, `StdDelay` (a `DelayNs` over `thread::sleep`) and
//!   `FileStore` (the refresh token in a file, replaced atomically).
//! - `ureq` (host only, implies `std`): `ureq::UreqTransport`. Plain `http://` unless your own
//!   `Cargo.toml` turns on ureq's `rustls` or `native-tls` feature.

#![cfg_attr(not(feature = "std"), no_std)]
#![forbid(unsafe_code)]
#![deny(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing,
        clippy::unreachable,
        clippy::todo,
        clippy::unimplemented
    )
)]

// The logging macros first, so that every module can use them.
mod fmt;

pub mod claims;
pub mod client;
#[cfg(feature = "async")]
pub mod client_async;
pub mod clock;
pub mod driver;
mod json;
#[cfg(feature = "mock")]
pub mod mock;
pub mod policy;
pub mod protocol;
#[cfg(feature = "reqwest")]
pub mod reqwest;
#[cfg(feature = "reqwless")]
pub mod reqwless;
pub mod session;
#[cfg(any(feature = "std", feature = "async"))]
pub mod shared;
pub mod store;
pub mod time;
pub mod transport;
#[cfg(feature = "ureq")]
pub mod ureq;
mod wipe;

pub use claims::{ClaimName, Claims, DecodeError, TimeClaims};
pub use client::{Client, ClientConfig, Error};
#[cfg(feature = "async")]
pub use client_async::AsyncClient;
pub use clock::Clock;
#[cfg(feature = "std")]
pub use clock::{StdDelay, SystemClock};
pub use driver::{Action, SendStep};
// Every type in the public signatures of `Session`, `Client`, `AsyncClient` and `SendStep`
// is reachable from the crate root.
pub use policy::{Lease, LeaseError, LeaseWarning, LifetimeSource, RefreshPolicy, TokenFacts};
pub use protocol::{
    AnswerError, BufferTooSmall, Endpoint, EndpointError, FailureClass, Grant, Method,
    OAuthErrorCode, Protocol, Request, TokenKind, TokenResponse,
};
pub use session::{
    ApiVerdict, LoginReason, Output, RefreshError, Secret, Session, SessionError, Stats,
    TokenError, TokenId,
};
#[cfg(any(feature = "std", feature = "async"))]
pub use shared::SharedClient;
#[cfg(feature = "std")]
pub use store::FileStore;
pub use store::{Never, NoStore, TokenStore};
pub use time::{Duration, Instant, UnixTime};
#[cfg(feature = "async")]
pub use transport::AsyncTransport;
pub use transport::{BearerError, ErrorKind, ErrorType, Response, Transport};

/// The README's Rust examples, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
