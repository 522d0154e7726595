//! Time types shared by the claims decoder and, later, the session state machine.
//!
//! `UnixTime` is a calendar instant in whole seconds (a JWT NumericDate). Every operation on it
//! is checked or saturating: no clock reading or claim value can overflow or panic.

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
}
