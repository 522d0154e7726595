//! When to refresh: pure functions from a token's lifetime, the policy and a random draw to its
//! deadlines (`usable_at <= refresh_at <= expires_at`, like a DHCP lease), and the backoff
//! after a failed refresh.
//!
//! # Why these defaults
//! The common browser recipe refreshes when less than a fixed 300 s remain. Against SimpleJWT's
//! default 5-minute access tokens that threshold is always crossed, so it refreshes before
//! *every* request. Here the margin scales with the lifetime instead: 10 % of it, at least 1 s,
//! at most 5 minutes, and never more than half the lifetime. Without jitter, a 5-minute token is
//! refreshed about 30 s before it expires (and used for about 4.5 minutes); a 1-hour token 5
//! minutes early.
//!
//! A fleet whose devices log in together (mass provisioning, a mass re-login) would refresh
//! together at every lifetime. So the refresh instant is moved earlier by a random jitter: up to
//! 80 % of the lifetime on the first lease after a login or a provisioning (which scatters a
//! synchronised fleet in one step: its first refreshes spread over most of a lifetime, never
//! before a tenth of it), and up to 10 % on routine refreshes (which keeps it scattered at little
//! cost, never before half the lifetime). `examples/fleet` measures the
//! effect on 100,000 devices: the token endpoint's peak after a mass provisioning stays within
//! 2x its steady-state mean.
//!
//! A failed refresh is retried on the token's own time scale ([`RefreshPolicy::backoff_for`]).
//! The first retry comes a quarter to half of the token's remaining life later (DHCP retries a
//! renewal at half the time left): a passing failure is mended before the token expires. After
//! that a device retries about once per refresh interval (the lifetime less the margin, give or
//! take half a margin: 254 to 284 s for a 5-minute token, at most `backoff_max`), so a fleet
//! that meets an outage offers the endpoint about its steady load, plus that one early retry,
//! and comes back from it spread as evenly as it refreshes. A fixed, short base would retry
//! log2(interval / base) times per interval instead (9x the steady load with 1 s). The lease
//! after a transient failure keeps the routine jitter: the retries are already spread. Without
//! a known lifetime the backoff is the classic one, exponential from `backoff_base` with full
//! jitter.
//!
//! Lifetimes derived from whole-second values (`expires_in`, `exp - iat`) lose one second:
//! servers floor `iat`, so a token can die up to a second earlier than `exp - iat` suggests. A
//! lifetime of one second therefore cannot be scheduled at all (a typed error, not a loop).

use core::fmt;

use crate::claims::TimeClaims;
use crate::time::{Duration, Instant, UnixTime};

/// How a session schedules refreshes and retries. [`RefreshPolicy::default`] documents the
/// defaults; every field is public so that a fleet can tune them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RefreshPolicy {
    /// Refresh margin before expiry, in per mille of the lifetime (default 100: 10 %).
    pub margin_permille: u16,
    /// Smallest margin (default 1 s), still capped at half the lifetime.
    pub min_margin: Duration,
    /// Largest margin (default 5 minutes).
    pub max_margin: Duration,
    /// Jitter window of routine refreshes, in per mille of the lifetime (default 100: 10 %).
    pub jitter_permille: u16,
    /// Jitter window of the first lease after a login or a provisioning, in per mille of the
    /// lifetime (default 800: 80 %; such a refresh never comes before a tenth of the lifetime).
    /// A transient failure keeps the routine window: its backoff spreads a fleet already.
    pub first_jitter_permille: u16,
    /// Largest jitter window (default 30 minutes).
    pub max_jitter: Duration,
    /// Shortest backoff after a transient failure, and the first one when no usable token is
    /// left (default 1 s). Without a known lifetime, backoff doubles from it per failure, with
    /// full jitter.
    pub backoff_base: Duration,
    /// Largest backoff (default 5 minutes): the longest a device waits between attempts, and so
    /// the longest it can take to notice that the token endpoint is back.
    pub backoff_max: Duration,
    /// Largest `Retry-After` honoured (default 1 hour): a hostile answer cannot park the client.
    pub max_retry_after: Duration,
    /// A refresh or login with no answer after this long counts as failed (default 30 s).
    pub request_timeout: Duration,
    /// Lifetime assumed for a token with neither `exp` nor `expires_in` (default `None`: use it
    /// until the API answers 401, and never refresh it proactively).
    pub assumed_lifetime: Option<Duration>,
    /// An `iat` further than this ahead of a trusted wall clock is flagged
    /// [`LeaseWarning::IssuedInFuture`] (default 5 minutes).
    pub max_clock_skew: Duration,
    /// Seed of the jitter generator. Give every device its own (a serial number, a hardware
    /// random number): devices sharing a seed share their jitter.
    pub seed: u64,
}

impl Default for RefreshPolicy {
    fn default() -> Self {
        RefreshPolicy {
            margin_permille: 100,
            min_margin: Duration::from_secs(1),
            max_margin: Duration::from_secs(300),
            jitter_permille: 100,
            first_jitter_permille: 800,
            max_jitter: Duration::from_secs(1800),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            max_retry_after: Duration::from_secs(3600),
            request_timeout: Duration::from_secs(30),
            assumed_lifetime: None,
            max_clock_skew: Duration::from_secs(300),
            seed: 0x6a77_742d_7265_6672, // "jwt-refr"
        }
    }
}

/// Where a lease's lifetime came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LifetimeSource {
    /// The token endpoint's `expires_in`.
    ExpiresIn,
    /// The token's `exp - iat`.
    IssuedAt,
    /// The token's `exp` against the caller's trusted wall clock: the only lifetime known, or
    /// shorter than `expires_in` or `exp - iat` (an old answer replayed by a cache, say).
    WallClock,
    /// [`RefreshPolicy::assumed_lifetime`].
    Assumed,
    /// None: the token is used until the API rejects it.
    Unknown,
}

/// Something implausible in a token that did not stop it from being scheduled.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LeaseWarning {
    /// `iat` lies more than [`RefreshPolicy::max_clock_skew`] ahead of the trusted wall clock:
    /// one of the two clocks is wrong. The schedule uses `exp - iat`, which does not depend on
    /// either.
    IssuedInFuture,
}

/// Why a token cannot be scheduled at all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum LeaseError {
    /// `expires_in` or `exp - iat` is at most one second: with whole-second claims that the
    /// server floors, what is left may be nothing.
    NonPositiveLifetime,
    /// `exp` is already past by the trusted wall clock (whatever `expires_in` or `exp - iat`
    /// say: an old answer replayed by a cache).
    Expired,
    /// `nbf` is not before the end of the token's life: it would never be usable.
    NeverUsable,
}

impl fmt::Display for LeaseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LeaseError::NonPositiveLifetime => "the token's lifetime is zero or negative",
            LeaseError::Expired => "the token has already expired by the wall clock",
            LeaseError::NeverUsable => "the token's nbf is not before its expiry",
        })
    }
}

impl core::error::Error for LeaseError {}

/// A token's schedule on the monotonic clock: use it from `usable_at`, refresh from
/// `refresh_at`, never send it from `expires_at` on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Lease {
    /// When the request that fetched the token was sent: the anchor of its expiry and refresh.
    pub fetched_at: Instant,
    /// When the token becomes usable: `fetched_at`, or with an `nbf` in the future the wait
    /// until it counted from the arrival of the answer.
    pub usable_at: Instant,
    /// When to refresh; [`Instant::MAX`] when the lifetime is unknown.
    pub refresh_at: Instant,
    /// When the token must no longer be sent; [`Instant::MAX`] when the lifetime is unknown.
    pub expires_at: Instant,
    /// Where the lifetime came from.
    pub source: LifetimeSource,
    /// Anything implausible that was noticed.
    pub warning: Option<LeaseWarning>,
}

impl Lease {
    /// Whether the token may be sent at `now`.
    pub fn is_usable(&self, now: Instant) -> bool {
        now >= self.usable_at && now < self.expires_at
    }

    /// Whether the lifetime is known (the lease has real deadlines).
    pub fn is_scheduled(&self) -> bool {
        self.source != LifetimeSource::Unknown
    }
}

/// What is known about a freshly fetched token.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TokenFacts {
    /// The token endpoint's `expires_in`, in seconds.
    pub expires_in: Option<u64>,
    /// The access token's time claims, when it is a readable JWT.
    pub times: Option<TimeClaims>,
    /// The caller's trusted wall clock at the time the token arrived, if it has one. It bounds
    /// the lease: a token is never kept more than a second past its `exp` by this clock (its
    /// whole-second resolution).
    pub wall_now: Option<UnixTime>,
}

impl RefreshPolicy {
    /// The margin before expiry for a token living `lifetime`.
    pub fn margin(&self, lifetime: Duration) -> Duration {
        lifetime
            .mul_div(u32::from(self.margin_permille), 1000)
            .max(self.min_margin)
            .min(self.max_margin)
            .min(lifetime.mul_div(1, 2))
    }

    /// The schedule of a token fetched by a request sent at `fetched_at`, whose answer arrived
    /// at `arrived_at`.
    ///
    /// The server issued the token between the two instants, so each deadline takes the one that
    /// errs on the safe side: the expiry (and the refresh) counts from `fetched_at`, the wait for
    /// an `nbf` in the future from `arrived_at`. With a trusted wall clock (`facts.wall_now`,
    /// read at the arrival) the lifetime is also at most `exp - wall`, so that an old answer
    /// replayed by a cache does not live again from the new request.
    ///
    /// `first` selects the wide jitter window (first lease after a login or a provisioning);
    /// `draw` is a random number (the session's generator supplies it).
    pub fn lease(
        &self,
        fetched_at: Instant,
        arrived_at: Instant,
        facts: &TokenFacts,
        first: bool,
        draw: u64,
    ) -> Result<Lease, LeaseError> {
        let times = facts.times.unwrap_or_default();
        let mut warning = None;
        if let (Some(iat), Some(wall)) = (times.iat, facts.wall_now) {
            if iat.checked_secs_since(wall).map(Duration::from_secs) > Some(self.max_clock_skew) {
                warning = Some(LeaseWarning::IssuedInFuture);
            }
        }
        // What a trusted wall clock leaves of the token's life: `exp` is its own end, whatever
        // `expires_in` or `exp - iat` say.
        let wall_left = match (times.exp, facts.wall_now) {
            (Some(exp), Some(wall)) => match exp.checked_secs_since(wall) {
                Some(secs) if secs > 0 => Some(secs),
                _ => return Err(LeaseError::Expired),
            },
            _ => None,
        };
        let (source, whole_secs) = match (facts.expires_in, times.exp, times.iat, wall_left) {
            (Some(secs), ..) => (LifetimeSource::ExpiresIn, Some(secs)),
            (None, Some(exp), Some(iat), _) => (
                LifetimeSource::IssuedAt,
                Some(exp.checked_secs_since(iat).unwrap_or(0)),
            ),
            (None, _, None, Some(left)) => (LifetimeSource::WallClock, Some(left)),
            _ if self.assumed_lifetime.is_some() => (LifetimeSource::Assumed, None),
            _ => (LifetimeSource::Unknown, None),
        };
        // The lifetime counts from the request's send: an answer a cache replayed would live
        // again from there. The wall clock caps it, once it says more than a second less: a
        // fresh answer reads one second less whenever a wall-clock second began since `iat`
        // (whole seconds on both sides), and capping those would refresh short tokens twice
        // as often for nothing.
        let (source, whole_secs) = match (whole_secs, wall_left) {
            (Some(secs), Some(left)) if left.saturating_add(1) < secs => {
                (LifetimeSource::WallClock, Some(left))
            }
            _ => (source, whole_secs),
        };
        let lifetime = match (whole_secs, source) {
            // Whole seconds, floored by the server: one second off. What is left of a 1-second
            // token may be nothing (issued at x.9 s, it dies at x+1 s): it cannot be scheduled.
            (Some(secs), _) if secs <= 1 => return Err(LeaseError::NonPositiveLifetime),
            (Some(secs), _) => floored_lifetime(secs),
            (None, LifetimeSource::Assumed) => self.assumed_lifetime.unwrap_or(Duration::MAX),
            (None, _) => Duration::MAX,
        };
        // `nbf` after `iat` (or after the wall clock at the arrival), counted from the arrival:
        // the server issued the token at the latest then. From the send, a token whose answer
        // came late would be used that much before its `nbf`.
        let wait = match (times.nbf, times.iat, facts.wall_now) {
            (Some(nbf), Some(iat), _) => nbf.checked_secs_since(iat),
            (Some(nbf), None, Some(wall)) => nbf.checked_secs_since(wall),
            _ => None,
        }
        .map_or(Duration::ZERO, Duration::from_secs);
        let usable_at = if wait == Duration::ZERO {
            fetched_at
        } else {
            arrived_at.max(fetched_at).saturating_add(wait)
        };
        if source == LifetimeSource::Unknown {
            return Ok(Lease {
                fetched_at,
                usable_at,
                refresh_at: Instant::MAX,
                expires_at: Instant::MAX,
                source,
                warning,
            });
        }
        let expires_at = fetched_at.saturating_add(lifetime);
        if usable_at >= expires_at {
            return Err(LeaseError::NeverUsable);
        }
        let margin = self.margin(lifetime);
        let permille = if first {
            self.first_jitter_permille
        } else {
            self.jitter_permille
        };
        // Jitter never moves a routine refresh before half the lifetime; the first lease's
        // (after a login or a provisioning) may go down to a tenth of it, so that its
        // window spans about one refresh interval and scatters a synchronised fleet at once.
        let earliest = lifetime.mul_div(1, if first { 10 } else { 2 });
        let window = lifetime
            .mul_div(u32::from(permille), 1000)
            .min(self.max_jitter)
            .min(lifetime.saturating_sub(earliest).saturating_sub(margin));
        let jitter = uniform(draw, window);
        let refresh_at = expires_at
            .saturating_sub(margin)
            .saturating_sub(jitter)
            .max(usable_at);
        Ok(Lease {
            fetched_at,
            usable_at,
            refresh_at,
            expires_at,
            source,
            warning,
        })
    }

    /// The wait after the `failures`-th consecutive transient failure (1 for the first) of a
    /// session whose access token lives `lifetime` (`None` when unknown, or when there has been
    /// none) and, when it may still be sent, has `left` to live:
    ///
    /// - the first failure while the token is usable: a quarter to half of `left`, so that a
    ///   passing failure is retried, and mended, before the token expires;
    /// - every later one: about one refresh interval, `lifetime - margin` give or take
    ///   `margin / 2`. A fleet that keeps failing then offers the token endpoint about its
    ///   steady load, and comes back from an outage spread as evenly as it refreshes;
    /// - the first failure with no usable token, or any failure when the lifetime is unknown:
    ///   [`RefreshPolicy::backoff`], exponential from `backoff_base`.
    ///
    /// The latest retry is capped at `backoff_max`, the window before it at half of that; the
    /// wait is at least `backoff_base`, and at least the server's `Retry-After` (capped at
    /// `max_retry_after`). `draw` is a random number.
    pub fn backoff_for(
        &self,
        failures: u32,
        lifetime: Option<Duration>,
        left: Option<Duration>,
        retry_after: Option<Duration>,
        draw: u64,
    ) -> Duration {
        // The shortest wait, and the span above it from which the rest is drawn.
        let (shortest, span) = match (lifetime, left) {
            (Some(lifetime), left) if failures > 1 || left.is_some() => {
                // The latest retry, capped, and at most half of it drawn.
                let (latest, span) = match left {
                    Some(left) if failures <= 1 => (left.mul_div(1, 2), left.mul_div(1, 4)),
                    _ => {
                        let margin = self.margin(lifetime);
                        (lifetime.saturating_sub(margin.mul_div(1, 2)), margin)
                    }
                };
                let latest = latest.min(self.backoff_max);
                let span = span.min(latest.mul_div(1, 2));
                (latest.saturating_sub(span), span)
            }
            _ => {
                // Doubling by addition: no 64-bit multiply or shift on 32-bit targets.
                let mut ceiling = self.backoff_base;
                for _ in 1..failures.min(64) {
                    if ceiling >= self.backoff_max {
                        break;
                    }
                    ceiling = ceiling.saturating_add(ceiling);
                }
                let ceiling = ceiling.min(self.backoff_max).max(self.backoff_base);
                (self.backoff_base, ceiling.saturating_sub(self.backoff_base))
            }
        };
        let delay = shortest
            .saturating_add(uniform(draw, span))
            .max(self.backoff_base);
        match retry_after {
            Some(after) => delay.max(after.min(self.max_retry_after)),
            None => delay,
        }
    }

    /// The wait after the token endpoint named a configuration problem (a 404, a redirect, a
    /// 400, `invalid_client` on a refresh...): half to all of `backoff_max` (at least
    /// `backoff_base`). One forged answer, from a captive portal or a misconfigured proxy, must
    /// not stop a device for good, and a real misconfiguration is not hammered meanwhile.
    pub fn configuration_backoff(&self, draw: u64) -> Duration {
        let longest = self.backoff_max.max(self.backoff_base).as_millis();
        let half = longest / 2;
        let span = longest.saturating_sub(half).saturating_add(1);
        Duration::from_millis(half.saturating_add(draw % span)).max(self.backoff_base)
    }

    /// The wait after the `failures`-th consecutive transient failure (1 for the first) when
    /// the token's lifetime is unknown: exponential with full jitter, between `backoff_base`
    /// and `min(backoff_max, backoff_base * 2^(failures-1))`, and at least the server's
    /// `Retry-After` (capped at `max_retry_after`).
    pub fn backoff(&self, failures: u32, retry_after: Option<Duration>, draw: u64) -> Duration {
        self.backoff_for(failures, None, None, retry_after, draw)
    }
}

/// A lifetime given in whole seconds, which the server floored: one second off (a token issued
/// at 100.9 s saying `iat` 100 and `exp` 103 lives 2.1 s, not 3; one with `exp - iat` = 1 may
/// live 0.1 s, so it gets nothing).
pub(crate) fn floored_lifetime(secs: u64) -> Duration {
    Duration::from_secs(secs.saturating_sub(1))
}

/// A duration uniformly drawn from `[0, max]` (millisecond resolution).
fn uniform(draw: u64, max: Duration) -> Duration {
    match max.as_millis().checked_add(1) {
        Some(n) => Duration::from_millis(draw % n),
        None => Duration::from_millis(draw),
    }
}

/// SplitMix64: a tiny, well-mixed generator for jitter (not for secrets).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) struct Jitter(u64);

impl Jitter {
    pub(crate) const fn new(seed: u64) -> Self {
        Jitter(seed)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }
    fn at(s: u64) -> Instant {
        Instant::from_secs(s)
    }
    fn unix(s: u64) -> Option<UnixTime> {
        UnixTime::from_secs(s)
    }
    fn times(exp: Option<u64>, iat: Option<u64>, nbf: Option<u64>) -> Option<TimeClaims> {
        Some(TimeClaims {
            exp: exp.and_then(UnixTime::from_secs),
            iat: iat.and_then(UnixTime::from_secs),
            nbf: nbf.and_then(UnixTime::from_secs),
        })
    }
    fn no_jitter() -> RefreshPolicy {
        RefreshPolicy {
            jitter_permille: 0,
            first_jitter_permille: 0,
            ..RefreshPolicy::default()
        }
    }

    #[test]
    fn five_minute_token_is_not_refreshed_on_every_request() {
        // The fixed-300 s rule would refresh a 300 s token at once; the policy waits ~4.5 min.
        let p = no_jitter();
        let facts = TokenFacts {
            times: times(Some(1_000_300), Some(1_000_000), None),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(10), at(10), &facts, true, 0).unwrap();
        assert_eq!(lease.source, LifetimeSource::IssuedAt);
        assert_eq!(lease.expires_at, at(10 + 299));
        assert_eq!(
            lease.refresh_at,
            Instant::from_millis((10 + 299) * 1000 - 29_900)
        );
        assert!(lease.refresh_at > at(10 + 240));
    }

    #[test]
    fn one_hour_token_is_refreshed_five_minutes_early() {
        let p = no_jitter();
        let facts = TokenFacts {
            expires_in: Some(3600),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(0), at(0), &facts, false, 0).unwrap();
        assert_eq!(lease.source, LifetimeSource::ExpiresIn);
        assert_eq!(lease.expires_at, at(3599));
        assert_eq!(lease.refresh_at, at(3599 - 300));
    }

    #[test]
    fn margin_is_clamped_and_at_most_half_the_lifetime() {
        let p = RefreshPolicy::default();
        assert_eq!(p.margin(secs(299)), Duration::from_millis(29_900));
        assert_eq!(p.margin(secs(86_400)), secs(300));
        assert_eq!(p.margin(secs(5)), secs(1)); // min margin
        assert_eq!(p.margin(secs(1)), Duration::from_millis(500)); // half the lifetime
        assert_eq!(p.margin(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn expires_in_wins_over_claims() {
        let p = no_jitter();
        let facts = TokenFacts {
            expires_in: Some(60),
            times: times(Some(1_000_300), Some(1_000_000), None),
            wall_now: None,
        };
        assert_eq!(
            p.lease(at(0), at(0), &facts, false, 0).unwrap().expires_at,
            at(59)
        );
    }

    #[test]
    fn wall_clock_is_the_last_resort() {
        let p = no_jitter();
        let facts = TokenFacts {
            times: times(Some(1_000_100), None, None),
            wall_now: unix(1_000_000),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(5), at(5), &facts, false, 0).unwrap();
        assert_eq!(lease.source, LifetimeSource::WallClock);
        assert_eq!(lease.expires_at, at(5 + 99));
        let stale = TokenFacts {
            wall_now: unix(1_000_100),
            ..facts
        };
        assert_eq!(
            p.lease(at(5), at(5), &stale, false, 0),
            Err(LeaseError::Expired)
        );
        // Without a wall clock, `exp` alone cannot be scheduled.
        let blind = TokenFacts {
            wall_now: None,
            ..facts
        };
        assert_eq!(
            p.lease(at(5), at(5), &blind, false, 0).unwrap().source,
            LifetimeSource::Unknown
        );
    }

    #[test]
    fn unknown_lifetime_is_reactive_not_a_loop() {
        let p = RefreshPolicy::default();
        let lease = p
            .lease(at(5), at(5), &TokenFacts::default(), true, 7)
            .unwrap();
        assert_eq!(lease.source, LifetimeSource::Unknown);
        assert_eq!(
            (lease.refresh_at, lease.expires_at),
            (Instant::MAX, Instant::MAX)
        );
        assert!(lease.is_usable(at(1_000_000)));
        let assumed = RefreshPolicy {
            assumed_lifetime: Some(secs(600)),
            ..no_jitter()
        };
        let lease = assumed
            .lease(at(0), at(0), &TokenFacts::default(), true, 7)
            .unwrap();
        assert_eq!(lease.source, LifetimeSource::Assumed);
        assert_eq!(lease.expires_at, at(600));
        assert_eq!(lease.refresh_at, at(540));
    }

    #[test]
    fn non_positive_lifetimes_are_errors() {
        let p = RefreshPolicy::default();
        for facts in [
            TokenFacts {
                expires_in: Some(0),
                ..TokenFacts::default()
            },
            TokenFacts {
                times: times(Some(100), Some(100), None),
                ..TokenFacts::default()
            },
            TokenFacts {
                times: times(Some(99), Some(100), None),
                ..TokenFacts::default()
            },
            // One second, floored: possibly already dead on arrival.
            TokenFacts {
                expires_in: Some(1),
                ..TokenFacts::default()
            },
            TokenFacts {
                times: times(Some(101), Some(100), None),
                ..TokenFacts::default()
            },
        ] {
            assert_eq!(
                p.lease(at(0), at(0), &facts, false, 0),
                Err(LeaseError::NonPositiveLifetime)
            );
        }
    }

    #[test]
    fn not_before_delays_use_and_must_precede_expiry() {
        let p = no_jitter();
        let facts = TokenFacts {
            times: times(Some(1300), Some(1000), Some(1010)),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(0), at(0), &facts, false, 0).unwrap();
        assert_eq!(lease.usable_at, at(10));
        assert!(!lease.is_usable(at(9)) && lease.is_usable(at(10)));
        let never = TokenFacts {
            times: times(Some(1300), Some(1000), Some(1299)),
            ..TokenFacts::default()
        };
        assert_eq!(
            p.lease(at(0), at(0), &never, false, 0),
            Err(LeaseError::NeverUsable)
        );
    }

    #[test]
    fn not_before_counts_from_the_arrival_and_expiry_from_the_send() {
        // Sent at 0 s, answered at 4 s; `nbf` 10 s after `iat`: usable from 14 s, dead at 299 s.
        let p = no_jitter();
        let facts = TokenFacts {
            times: times(Some(1300), Some(1000), Some(1010)),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(0), at(4), &facts, false, 0).unwrap();
        assert_eq!(
            (lease.fetched_at, lease.usable_at, lease.expires_at),
            (at(0), at(14), at(299))
        );
        // Without `nbf` the token is usable from the send, as before.
        let plain = TokenFacts {
            times: times(Some(1300), Some(1000), None),
            ..TokenFacts::default()
        };
        assert_eq!(
            p.lease(at(0), at(4), &plain, false, 0).unwrap().usable_at,
            at(0)
        );
        // `nbf - wall` (no `iat`): the wall clock was read at the arrival.
        let walled = TokenFacts {
            times: times(Some(1300), None, Some(1010)),
            wall_now: unix(1005),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(0), at(4), &walled, false, 0).unwrap();
        assert_eq!((lease.usable_at, lease.expires_at), (at(9), at(294)));
        // A wait that only the latency pushes past the expiry: never usable.
        let late = TokenFacts {
            times: times(Some(1300), Some(1000), Some(1290)),
            ..TokenFacts::default()
        };
        assert!(p.lease(at(0), at(0), &late, false, 0).is_ok());
        assert_eq!(
            p.lease(at(0), at(9), &late, false, 0),
            Err(LeaseError::NeverUsable)
        );
    }

    #[test]
    fn a_trusted_wall_clock_caps_the_lifetime_at_exp() {
        let p = no_jitter();
        // `exp - iat` says 300 s, but by the wall clock only 30 s are left (an old answer
        // replayed): 30 s less the floored second, from the send.
        let replayed = TokenFacts {
            times: times(Some(1_000_300), Some(1_000_000), None),
            wall_now: unix(1_000_270),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(500), at(501), &replayed, false, 0).unwrap();
        assert_eq!(lease.source, LifetimeSource::WallClock);
        assert_eq!(lease.expires_at, at(529));
        // `expires_in` longer than `exp - wall`: capped too.
        let long = TokenFacts {
            expires_in: Some(3600),
            ..replayed
        };
        let lease = p.lease(at(500), at(500), &long, false, 0).unwrap();
        assert_eq!(
            (lease.source, lease.expires_at),
            (LifetimeSource::WallClock, at(529))
        );
        // Shorter than `exp - wall`: the other source stands.
        let short = TokenFacts {
            expires_in: Some(20),
            ..replayed
        };
        let lease = p.lease(at(500), at(500), &short, false, 0).unwrap();
        assert_eq!(
            (lease.source, lease.expires_at),
            (LifetimeSource::ExpiresIn, at(519))
        );
        let fresh = TokenFacts {
            wall_now: unix(1_000_000),
            ..replayed
        };
        let lease = p.lease(at(500), at(500), &fresh, false, 0).unwrap();
        assert_eq!(
            (lease.source, lease.expires_at),
            (LifetimeSource::IssuedAt, at(799))
        );
        // A fresh answer read after a wall-clock second began since `iat` leaves one second
        // less by the wall clock: that is the clock's resolution, not a stale answer.
        let next_second = TokenFacts {
            wall_now: unix(1_000_001),
            ..replayed
        };
        let lease = p.lease(at(500), at(500), &next_second, false, 0).unwrap();
        assert_eq!(
            (lease.source, lease.expires_at),
            (LifetimeSource::IssuedAt, at(799))
        );
        // Two seconds less is a capped lease.
        let older = TokenFacts {
            wall_now: unix(1_000_002),
            ..replayed
        };
        let lease = p.lease(at(500), at(500), &older, false, 0).unwrap();
        assert_eq!(
            (lease.source, lease.expires_at),
            (LifetimeSource::WallClock, at(797))
        );
        // Past `exp` by the wall clock, or at it: expired, whatever else the answer says.
        for wall in [1_000_300, 1_000_301, 2_000_000] {
            for facts in [
                TokenFacts {
                    wall_now: unix(wall),
                    ..replayed
                },
                TokenFacts {
                    wall_now: unix(wall),
                    ..long
                },
            ] {
                assert_eq!(
                    p.lease(at(500), at(500), &facts, false, 0),
                    Err(LeaseError::Expired),
                    "{wall}"
                );
            }
        }
        // One second left by the wall clock is nothing once floored.
        let last = TokenFacts {
            wall_now: unix(1_000_299),
            ..replayed
        };
        assert_eq!(
            p.lease(at(500), at(500), &last, false, 0),
            Err(LeaseError::NonPositiveLifetime)
        );
    }

    #[test]
    fn iat_far_in_the_future_is_a_warning() {
        let p = no_jitter();
        let facts = TokenFacts {
            times: times(Some(2_000_300), Some(2_000_000), None),
            wall_now: unix(1_000_000),
            ..TokenFacts::default()
        };
        let lease = p.lease(at(0), at(0), &facts, false, 0).unwrap();
        assert_eq!(lease.warning, Some(LeaseWarning::IssuedInFuture));
        assert_eq!(lease.expires_at, at(299)); // scheduled from exp - iat all the same
        let near = TokenFacts {
            wall_now: unix(2_000_000 - 299),
            ..facts
        };
        assert_eq!(
            p.lease(at(0), at(0), &near, false, 0).unwrap().warning,
            None
        );
    }

    #[test]
    fn jitter_moves_refresh_earlier_within_its_window() {
        let p = RefreshPolicy::default();
        let facts = TokenFacts {
            expires_in: Some(301),
            ..TokenFacts::default()
        };
        // Lifetime 300 s, margin 30 s. Routine window 30 s (10 %, never before half the lifetime);
        // first window 240 s (80 %, never before a tenth of the lifetime).
        let mut g = Jitter::new(1);
        let (mut lo, mut hi) = (Instant::MAX, Instant::ZERO);
        for _ in 0..2000 {
            let r = p
                .lease(at(0), at(0), &facts, false, g.next_u64())
                .unwrap()
                .refresh_at;
            lo = lo.min(r);
            hi = hi.max(r);
        }
        assert!(lo >= at(240) && lo < at(242), "{lo}");
        assert!(hi <= at(270) && hi > at(268), "{hi}");
        let (mut lo, mut hi) = (Instant::MAX, Instant::ZERO);
        for _ in 0..2000 {
            let r = p
                .lease(at(0), at(0), &facts, true, g.next_u64())
                .unwrap()
                .refresh_at;
            lo = lo.min(r);
            hi = hi.max(r);
        }
        assert!(lo >= at(30) && lo < at(33), "{lo}");
        assert!(hi <= at(270) && hi > at(267), "{hi}");
    }

    #[test]
    fn backoff_doubles_with_full_jitter_and_a_cap() {
        let p = RefreshPolicy::default();
        assert_eq!(p.backoff(1, None, 12345), secs(1));
        for failures in 1..=20u32 {
            let ceiling = secs(1u64 << (failures - 1).min(20)).min(secs(300));
            let mut g = Jitter::new(u64::from(failures));
            let mut max_seen = Duration::ZERO;
            for _ in 0..500 {
                let d = p.backoff(failures, None, g.next_u64());
                assert!(d >= secs(1) && d <= ceiling, "{failures}: {d}");
                max_seen = max_seen.max(d);
            }
            assert!(max_seen.as_millis() * 10 >= ceiling.as_millis() * 9);
        }
        assert!(p.backoff(u32::MAX, None, u64::MAX) <= secs(300));
    }

    #[test]
    fn backoff_follows_the_token_lifetime() {
        let p = RefreshPolicy::default();
        let life = Some(secs(299)); // a 5-minute SimpleJWT token; margin 29.9 s
        let mut g = Jitter::new(5);
        let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
        for _ in 0..2000 {
            // The first failure with 40 s left: a retry 10 to 20 s later, before expiry.
            let d = p.backoff_for(1, life, Some(secs(40)), None, g.next_u64());
            lo = lo.min(d);
            hi = hi.max(d);
        }
        assert!(lo >= secs(10) && lo < Duration::from_millis(10_100), "{lo}");
        assert!(hi <= secs(20) && hi > Duration::from_millis(19_900), "{hi}");
        for left in [Some(secs(10)), None] {
            let (mut lo, mut hi) = (Duration::MAX, Duration::ZERO);
            for failures in 2..40 {
                // Later failures, token valid or not: about one refresh interval,
                // 299 - 15 s give or take 15 s.
                let d = p.backoff_for(failures, life, left, None, g.next_u64());
                lo = lo.min(d);
                hi = hi.max(d);
            }
            assert!(lo >= Duration::from_millis(254_150), "{lo}");
            assert!(hi <= Duration::from_millis(284_050), "{hi}");
        }
        // The first failure with no usable token: `backoff_base`, then the same.
        assert_eq!(p.backoff_for(1, life, None, None, 12345), secs(1));
        // A 1-hour token: within `backoff_max`, the window at most half the wait.
        for _ in 0..500 {
            let d = p.backoff_for(3, Some(secs(3599)), None, None, g.next_u64());
            assert!(d >= secs(150) && d <= secs(300), "{d}");
            let d = p.backoff_for(1, Some(secs(3599)), Some(secs(3000)), None, g.next_u64());
            assert!(d >= secs(150) && d <= secs(300), "{d}");
        }
        // Short tokens: never below `backoff_base`.
        for failures in 1..5 {
            let d = p.backoff_for(failures, Some(secs(1)), Some(secs(1)), None, u64::MAX);
            assert_eq!(d, secs(1), "{failures}");
        }
        // An unknown lifetime: the exponential backoff.
        for failures in 1..20 {
            let draw = g.next_u64();
            assert_eq!(
                p.backoff_for(failures, None, Some(secs(40)), None, draw),
                p.backoff(failures, None, draw)
            );
        }
        // `Retry-After` is honoured whatever the schedule.
        assert_eq!(
            p.backoff_for(1, life, Some(secs(40)), Some(secs(120)), 0),
            secs(120)
        );
        assert_eq!(
            p.backoff_for(2, life, None, Some(secs(10_000_000)), 0),
            secs(3600)
        );
    }

    #[test]
    fn retry_after_is_honoured_up_to_a_cap() {
        let p = RefreshPolicy::default();
        assert_eq!(p.backoff(1, Some(secs(120)), 0), secs(120));
        assert_eq!(p.backoff(1, Some(secs(10_000_000)), 0), secs(3600));
        assert_eq!(p.backoff(1, Some(Duration::ZERO), 0), secs(1));
    }

    #[test]
    fn splitmix_is_deterministic() {
        let mut a = Jitter::new(42);
        let mut b = Jitter::new(42);
        let mut c = Jitter::new(43);
        let xs: [u64; 3] = [a.next_u64(), a.next_u64(), a.next_u64()];
        assert_eq!(xs, [b.next_u64(), b.next_u64(), b.next_u64()]);
        assert_ne!(xs[0], c.next_u64());
    }
}
