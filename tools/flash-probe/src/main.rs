//! A minimal Cortex-M firmware image whose reset handler optionally decodes a JWT, so that
//! the size difference against the baseline (no feature) is the flash cost of the decoder.
//!
//! Every variant reads its input through a volatile load of a `static` (so nothing is
//! const-folded) and stores its result with a volatile store (so nothing is dead code):
//!
//! - no feature: only that load and store (the baseline);
//! - `decode`: `jwt_refresh::Claims::decode`, storing `exp`;
//! - `times`: `jwt_refresh::TimeClaims::decode`, storing `exp`;
//! - `decode` or `times` with `float-dates`: the same with jwt-refresh's `float-dates` feature,
//!   which reads NumericDates through `f64` (the token's dates are integers either way: the
//!   float parser is linked whatever the input);
//! - `f64`: `str::parse::<f64>` on a NumericDate text, storing it as whole seconds: what float
//!   parsing costs on its own.
//!
//! jwt-refresh reads the payload with serde-json-core and base64url-decodes it with the base64
//! crate, so the decoders' deltas include the code of both libraries that they use.

#![no_std]
#![no_main]

use core::hint::black_box;
use core::ptr::{read_volatile, write_volatile};

use cortex_m_rt::entry;
use panic_halt as _;

#[cfg(any(
    all(feature = "decode", feature = "times"),
    all(feature = "decode", feature = "f64"),
    all(feature = "times", feature = "f64"),
))]
compile_error!("enable at most one of the features `decode`, `times` and `f64`");

#[cfg(all(
    feature = "float-dates",
    not(any(feature = "decode", feature = "times"))
))]
compile_error!("`float-dates` changes jwt-refresh's decoders: enable `decode` or `times` with it");

/// A 339-byte HS256 access token (SimpleJWT claims plus `iss`, `aud` and `scope`), the same
/// shape as the one in `benches/decode.rs`. Kept (`#[used]`) in every variant, like
/// [`NUMBER`], so the inputs weigh the same everywhere and the deltas are code and tables only.
#[used]
static TOKEN: &str = "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjBiNjZjYzQyZjk2YjRmNzM5ZWQ3MDY2ZDY0ZjY1ZjU1IiwidXNlcl9pZCI6IjQyNzEiLCJpc3MiOiJodHRwczovL2F1dGguZXhhbXBsZS5jb20iLCJhdWQiOiJhcGkuZXhhbXBsZS5jb20iLCJzY29wZSI6InJlYWQgd3JpdGUifQ.iGtJ1wO0hsW6Pz2eCKrtmMr_egmpHLMJCVZMoEA6djA";

/// A NumericDate as it appears in a payload, with a fraction as RFC 7519 allows: the `f64`
/// variant's input.
#[used]
static NUMBER: &str = "1700000300.25";

/// Where the result goes.
static mut OUTPUT: u64 = 0;

#[entry]
fn main() -> ! {
    #[cfg(not(feature = "f64"))]
    let input = &raw const TOKEN;
    #[cfg(feature = "f64")]
    let input = &raw const NUMBER;
    // SAFETY: `input` points to a valid, initialised `&'static str` static; a volatile read of
    // it is an ordinary read whose value the optimiser cannot see through.
    let input: &str = black_box(unsafe { read_volatile(input) });

    let result: u64 = compute(input);

    // SAFETY: single-threaded reset handler, no interrupt touches `OUTPUT`.
    unsafe { write_volatile(&raw mut OUTPUT, black_box(result)) };
    loop {
        core::hint::spin_loop();
    }
}

#[cfg(feature = "decode")]
fn compute(input: &str) -> u64 {
    jwt_refresh::Claims::decode(input)
        .ok()
        .and_then(|claims| claims.exp)
        .map_or(0, jwt_refresh::UnixTime::as_secs)
}

#[cfg(feature = "times")]
fn compute(input: &str) -> u64 {
    jwt_refresh::TimeClaims::decode(input)
        .ok()
        .and_then(|times| times.exp)
        .map_or(0, jwt_refresh::UnixTime::as_secs)
}

#[cfg(feature = "f64")]
fn compute(input: &str) -> u64 {
    // `as u64` saturates and floors, as a NumericDate reader would want.
    input.parse::<f64>().map_or(0, |secs| secs as u64)
}

#[cfg(not(any(feature = "decode", feature = "times", feature = "f64")))]
fn compute(input: &str) -> u64 {
    input.len() as u64
}
