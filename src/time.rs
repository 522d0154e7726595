//! Time types: the monotonic [`Instant`] and [`Duration`] that deadlines live on, and the calendar
//! [`UnixTime`] that JWT claims speak.
//!
//! Every operation is checked or saturating: no clock reading or claim value can overflow or
//! panic. The crate never reads a clock itself; callers pass `Instant`s in.

use core::fmt;

/// A calendar instant: whole seconds since 1970-01-01T00:00:00Z, as in a JWT NumericDate
/// (RFC 7519 section 2).
///
/// Values are bounded by [`UnixTime::MAX`] (the last second of year 9999): the claims decoder
/// rejects anything later as implausible, so arithmetic on decoded times has ample headroom.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct UnixTime(u64);

impl UnixTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: UnixTime = UnixTime(0);

    /// The latest NumericDate the decoder accepts: 9999-12-31T23:59:59Z.
    pub const MAX: UnixTime = UnixTime(253_402_300_799);

    /// A time `secs` seconds after the epoch, or `None` past [`UnixTime::MAX`].
    pub const fn from_secs(secs: u64) -> Option<UnixTime> {
        if secs <= Self::MAX.0 {
            Some(UnixTime(secs))
        } else {
            None
        }
    }

    /// Seconds since the epoch.
    pub const fn as_secs(self) -> u64 {
        self.0
    }

    /// Seconds from `earlier` to `self`, or `None` when `earlier` is later than `self`.
    pub const fn checked_secs_since(self, earlier: UnixTime) -> Option<u64> {
        self.0.checked_sub(earlier.0)
    }
}

impl fmt::Display for UnixTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A point on the caller's monotonic clock, in milliseconds since an arbitrary origin (boot,
/// say), like smoltcp's `Instant`. It never goes backwards on a correct clock; the session
/// copes when it does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Instant(u64);

/// A span of monotonic time in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Duration(u64);

impl Instant {
    /// The clock's origin.
    pub const ZERO: Instant = Instant(0);
    /// The far future: a deadline that never comes.
    pub const MAX: Instant = Instant(u64::MAX);

    /// An instant `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Instant {
        Instant(millis)
    }

    /// An instant `secs` seconds after the origin (saturating).
    pub const fn from_secs(secs: u64) -> Instant {
        Instant(secs.saturating_mul(1000))
    }

    /// Milliseconds since the origin.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at [`Instant::MAX`].
    #[must_use]
    pub const fn saturating_add(self, d: Duration) -> Instant {
        Instant(self.0.saturating_add(d.0))
    }

    /// `self - d`, saturating at [`Instant::ZERO`].
    #[must_use]
    pub const fn saturating_sub(self, d: Duration) -> Instant {
        Instant(self.0.saturating_sub(d.0))
    }

    /// The time from `earlier` to `self`, or zero when `earlier` is later.
    pub const fn saturating_duration_since(self, earlier: Instant) -> Duration {
        Duration(self.0.saturating_sub(earlier.0))
    }
}

impl Duration {
    /// No time at all.
    pub const ZERO: Duration = Duration(0);
    /// The longest span.
    pub const MAX: Duration = Duration(u64::MAX);

    /// `millis` milliseconds.
    pub const fn from_millis(millis: u64) -> Duration {
        Duration(millis)
    }

    /// `secs` seconds (saturating).
    pub const fn from_secs(secs: u64) -> Duration {
        Duration(secs.saturating_mul(1000))
    }

    /// In milliseconds.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// In whole seconds, rounded down.
    pub const fn as_secs(self) -> u64 {
        self.0 / 1000
    }

    /// `self + other`, saturating.
    #[must_use]
    pub const fn saturating_add(self, other: Duration) -> Duration {
        Duration(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating at zero.
    #[must_use]
    pub const fn saturating_sub(self, other: Duration) -> Duration {
        Duration(self.0.saturating_sub(other.0))
    }

    /// `self * n / d`, rounded down and saturating; `d = 0` gives zero. Exact without 128-bit
    /// arithmetic (costly on 32-bit targets): `self * n / d == q * n + r * n / d` with
    /// `q, r = self / d, self % d`, and `r * n < 2^64` because `n` and `d` are 32-bit.
    #[must_use]
    pub const fn mul_div(self, n: u32, d: u32) -> Duration {
        if d == 0 {
            return Duration::ZERO;
        }
        let (n, d) = (n as u64, d as u64);
        let (q, r) = (self.0 / d, self.0 % d);
        Duration(q.saturating_mul(n).saturating_add(r * n / d))
    }

    /// The smaller of two spans.
    #[must_use]
    pub const fn min(self, other: Duration) -> Duration {
        if self.0 <= other.0 {
            self
        } else {
            other
        }
    }

    /// The larger of two spans.
    #[must_use]
    pub const fn max(self, other: Duration) -> Duration {
        if self.0 >= other.0 {
            self
        } else {
            other
        }
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:03}s", self.0 / 1000, self.0 % 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_secs_bounds() {
        assert_eq!(UnixTime::from_secs(0), Some(UnixTime::EPOCH));
        assert_eq!(
            UnixTime::from_secs(253_402_300_799).map(UnixTime::as_secs),
            Some(253_402_300_799)
        );
        assert_eq!(UnixTime::from_secs(253_402_300_800), None);
        assert_eq!(UnixTime::from_secs(u64::MAX), None);
    }

    #[test]
    fn secs_since_is_checked() {
        let a = UnixTime::from_secs(100).unwrap();
        let b = UnixTime::from_secs(160).unwrap();
        assert_eq!(b.checked_secs_since(a), Some(60));
        assert_eq!(a.checked_secs_since(b), None);
    }

    #[test]
    fn instant_and_duration_saturate() {
        let t = Instant::from_secs(5);
        assert_eq!(t.as_millis(), 5000);
        assert_eq!(
            Instant::MAX.saturating_add(Duration::from_secs(1)),
            Instant::MAX
        );
        assert_eq!(
            Instant::ZERO.saturating_sub(Duration::from_secs(1)),
            Instant::ZERO
        );
        assert_eq!(
            t.saturating_duration_since(Instant::from_secs(7)),
            Duration::ZERO
        );
        assert_eq!(Instant::from_secs(u64::MAX), Instant::MAX);
        assert_eq!(
            Duration::from_secs(300).mul_div(1, 10),
            Duration::from_secs(30)
        );
        assert_eq!(Duration::MAX.mul_div(3, 2), Duration::MAX);
        assert_eq!(Duration::from_secs(1).mul_div(1, 0), Duration::ZERO);
        // Exact where the product overflows u64: (2^64 - 1) * 3 / 4.
        assert_eq!(
            Duration::MAX.mul_div(3, 4).as_millis(),
            (u128::from(u64::MAX) * 3 / 4) as u64
        );
        assert_eq!(
            Duration::from_millis(999_999_999_999)
                .mul_div(u32::MAX, u32::MAX - 1)
                .as_millis(),
            (999_999_999_999u128 * u128::from(u32::MAX) / u128::from(u32::MAX - 1)) as u64
        );
        assert_eq!(Duration::from_millis(1500).as_secs(), 1);
    }
}
