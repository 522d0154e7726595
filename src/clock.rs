//! The clock a driver reads: a monotonic [`Instant`] and, optionally, a trusted wall clock.
//!
//! Only the drivers call it; the [`Session`](crate::Session) is handed `now` instead. On a
//! microcontroller, back it with SysTick or an RTC counter; on a host, [`SystemClock`] (feature
//! `std`), with [`StdDelay`] as the blocking driver's sleep.

use crate::time::{Instant, UnixTime};

/// A source of time for the drivers.
pub trait Clock {
    /// The monotonic time: never goes backwards on a correct clock.
    fn now(&self) -> Instant;

    /// The calendar time, when the device has a clock it trusts (set by NTP, GNSS, an RTC).
    /// The default, `None`, is right for devices whose calendar clock may be unset: token
    /// lifetimes then come from `expires_in` or `exp - iat` alone.
    fn unix_time(&self) -> Option<UnixTime> {
        None
    }
}

impl<C: Clock + ?Sized> Clock for &C {
    fn now(&self) -> Instant {
        (**self).now()
    }

    fn unix_time(&self) -> Option<UnixTime> {
        (**self).unix_time()
    }
}

/// The host's clocks: `std::time::Instant` for monotonic time (from the clock's creation) and
/// `SystemTime` as the trusted wall clock.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug)]
pub struct SystemClock {
    origin: std::time::Instant,
    trust_wall_clock: bool,
}

#[cfg(feature = "std")]
impl SystemClock {
    /// A clock whose monotonic origin is now, trusting the system's calendar time.
    pub fn new() -> Self {
        SystemClock {
            origin: std::time::Instant::now(),
            trust_wall_clock: true,
        }
    }

    /// A clock that does not report calendar time (as on a device without NTP).
    pub fn monotonic_only() -> Self {
        SystemClock {
            trust_wall_clock: false,
            ..SystemClock::new()
        }
    }
}

#[cfg(feature = "std")]
impl Default for SystemClock {
    fn default() -> Self {
        SystemClock::new()
    }
}

#[cfg(feature = "std")]
impl Clock for SystemClock {
    fn now(&self) -> Instant {
        let millis = self.origin.elapsed().as_millis();
        Instant::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn unix_time(&self) -> Option<UnixTime> {
        if !self.trust_wall_clock {
            return None;
        }
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        UnixTime::from_secs(since.as_secs())
    }
}

/// The blocking driver's sleep on a host: an `embedded_hal::delay::DelayNs` over
/// `std::thread::sleep` (feature `std`). It sleeps at least as long as asked, as the OS allows.
#[cfg(feature = "std")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StdDelay;

#[cfg(feature = "std")]
impl embedded_hal::delay::DelayNs for StdDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(std::time::Duration::from_nanos(u64::from(ns)));
    }

    // One sleep each, not the trait's chunks of `delay_ns`.
    fn delay_us(&mut self, us: u32) {
        std::thread::sleep(std::time::Duration::from_micros(u64::from(us)));
    }

    fn delay_ms(&mut self, ms: u32) {
        std::thread::sleep(std::time::Duration::from_millis(u64::from(ms)));
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;

    #[test]
    fn system_clock_is_monotonic_and_trusted_on_request() {
        let clock = SystemClock::new();
        let a = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(clock.now().saturating_duration_since(a).as_millis() >= 5);
        assert!(clock
            .unix_time()
            .is_some_and(|t| t.as_secs() > 1_700_000_000));
        assert_eq!(SystemClock::monotonic_only().unix_time(), None);
    }

    #[test]
    fn std_delay_sleeps_at_least_as_long_as_asked() {
        use embedded_hal::delay::DelayNs;
        let clock = SystemClock::new();
        let mut delay = StdDelay;
        let start = clock.now();
        delay.delay_ms(3);
        delay.delay_us(2_000);
        delay.delay_ns(1_000_000);
        // A lower bound only: sleeping never ends early, however loaded the machine.
        assert!(clock.now().saturating_duration_since(start).as_millis() >= 6);
    }
}
