//! Logging shim: the drivers' log lines go to `defmt` when the feature is on, and nowhere
//! otherwise (the arguments are then only borrowed, so nothing is formatted). Declared first in
//! `lib.rs` so every module can use the macros. Never pass a secret.

#[cfg(feature = "defmt")]
macro_rules! log_debug {
    ($($arg:tt)*) => { defmt::debug!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! log_debug {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}

#[cfg(feature = "defmt")]
macro_rules! log_warn {
    ($($arg:tt)*) => { defmt::warn!($($arg)*) };
}

#[cfg(not(feature = "defmt"))]
macro_rules! log_warn {
    ($fmt:literal $(, $arg:expr)* $(,)?) => {{ $( let _ = &$arg; )* }};
}

pub(crate) use log_debug;
pub(crate) use log_warn;
