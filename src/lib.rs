//! `jwt-refresh` keeps a device or service authenticated against an HTTP API that uses
//! short-lived JWT access tokens and longer-lived refresh tokens.
//!
//! It is `#![no_std]`, never allocates, and runs the same on a Cortex-M microcontroller and on
//! a Linux server. Every buffer has a capacity fixed at compile time: a token that does not fit
//! is a typed error, never a truncation or a panic.
//!
//! **The client never verifies signatures.** The server does. This crate reads a token's claims
//! only to decide *when* to refresh (RFC 8725 section 3.10): never use them for authorization.
//!
//! # What is here so far
//! - [`claims`]: reads a token's registered claims (`exp`, `nbf`, `iat`, `iss`, `sub`, `jti`,
//!   `aud`) into fixed-size buffers, with [`Claims::decode`], or only its times with
//!   [`TimeClaims::decode`].
//! - [`time`]: [`UnixTime`], the NumericDate type.
//!
//! ```
//! use jwt_refresh::Claims;
//! // A SimpleJWT access token (HS256; the signature is not checked here).
//! let token = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
//!     eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjBiNjZjYzQyZjk2YjRmNzM5ZWQ3MDY2ZDY0ZjY1ZjU1IiwidXNlcl9pZCI6IjEifQ.\
//!     c2lnbmF0dXJl";
//! let claims = Claims::decode(token)?;
//! let lifetime = claims.exp.zip(claims.iat).and_then(|(exp, iat)| exp.checked_secs_since(iat));
//! assert_eq!(lifetime, Some(300));
//! assert_eq!(claims.jti.as_deref(), Some("0b66cc42f96b4f739ed7066d64f65f55"));
//! # Ok::<(), jwt_refresh::DecodeError>(())
//! ```
//!
//! # Features
//! - `defmt`: `defmt::Format` for the public types. Errors and claims never contain token text.

#![no_std]
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

pub mod claims;
mod json;
pub mod time;

pub use claims::{ClaimName, Claims, DecodeError, TimeClaims};
pub use time::UnixTime;
