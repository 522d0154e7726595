//! A clock the test moves: [`MockClock`], a shared handle on monotonic time (and an optional
//! wall time) that is also a `DelayNs` advancing itself, and [`AdvancingDelay`], which puts
//! another delay (such as `embedded-hal-mock`'s `CheckedDelay`) in front of it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::clock::Clock;
use crate::time::{Duration, Instant, UnixTime};

const NANOS_PER_MS: u64 = 1_000_000;

#[derive(Debug, Default)]
struct State {
    /// Monotonic time in nanoseconds (a `DelayNs` may sleep less than a millisecond).
    nanos: u64,
    /// Unix milliseconds at monotonic zero, when the clock has a wall time.
    wall_origin_ms: Option<i128>,
    /// Every sleep, in nanoseconds.
    sleeps: Vec<u64>,
}

/// A clock that moves only when the test (or a sleep) moves it. Clones share the same time,
/// so the test keeps one handle and gives others to the client.
///
/// It implements [`Clock`] and both `DelayNs` traits (blocking and async): a sleep advances the
/// clock at once and is recorded, so a test that sleeps through a backoff takes no real time.
///
/// ```
/// use embedded_hal::delay::DelayNs;
/// use jwt_refresh::mock::{MockClock, EPOCH};
/// use jwt_refresh::{Clock, Instant, UnixTime};
///
/// let clock = MockClock::new();
/// assert_eq!(clock.now(), Instant::ZERO);
/// clock.advance_secs(270);
/// assert_eq!(clock.now(), Instant::from_secs(270));
///
/// let mut delay = clock.clone(); // the same clock, as the client's delay
/// delay.delay_ms(1500);
/// assert_eq!(clock.now(), Instant::from_millis(271_500));
/// assert_eq!(clock.sleeps_ms(), [1500]);
///
/// // No wall time unless asked for; then it moves with the monotonic time.
/// assert_eq!(clock.unix_time(), None);
/// let clock = MockClock::with_wall(UnixTime::from_secs(EPOCH).unwrap());
/// clock.advance_secs(60);
/// assert_eq!(clock.unix_time().map(|t| t.as_secs()), Some(EPOCH + 60));
/// clock.set(Instant::ZERO); // a clock may be set back, to test that too
/// assert_eq!(clock.unix_time().map(|t| t.as_secs()), Some(EPOCH));
/// ```
#[derive(Clone, Debug, Default)]
pub struct MockClock(Arc<Mutex<State>>);

impl MockClock {
    /// A clock at [`Instant::ZERO`], without a wall time.
    pub fn new() -> Self {
        MockClock::default()
    }

    /// A clock at [`Instant::ZERO`] whose wall time is `wall` now and moves with it.
    pub fn with_wall(wall: UnixTime) -> Self {
        let clock = MockClock::new();
        clock.set_wall(Some(wall));
        clock
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panicking test may have poisoned the lock; the time is still right.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.advance_nanos(by.as_millis().saturating_mul(NANOS_PER_MS));
    }

    /// Moves the clock forward by `secs` seconds.
    pub fn advance_secs(&self, secs: u64) {
        self.advance(Duration::from_secs(secs));
    }

    /// Moves the clock forward by `ms` milliseconds.
    pub fn advance_ms(&self, ms: u64) {
        self.advance(Duration::from_millis(ms));
    }

    fn advance_nanos(&self, nanos: u64) {
        let mut state = self.state();
        state.nanos = state.nanos.saturating_add(nanos);
    }

    /// Sets the monotonic time, forwards or backwards (a broken clock, for a test). The wall
    /// time moves with it.
    pub fn set(&self, now: Instant) {
        self.state().nanos = now.as_millis().saturating_mul(NANOS_PER_MS);
    }

    /// Sets the wall time to `wall` now (`None`: the device has no trusted calendar time). It
    /// then moves with the monotonic time.
    pub fn set_wall(&self, wall: Option<UnixTime>) {
        let mut state = self.state();
        let now_ms = i128::from(state.nanos / NANOS_PER_MS);
        state.wall_origin_ms = wall.map(|w| i128::from(w.as_secs()) * 1000 - now_ms);
    }

    /// Every sleep so far, in whole milliseconds (rounded down), oldest first.
    pub fn sleeps_ms(&self) -> Vec<u64> {
        self.state()
            .sleeps
            .iter()
            .map(|ns| ns / NANOS_PER_MS)
            .collect()
    }

    /// The total time slept.
    pub fn slept(&self) -> Duration {
        let total: u64 = self.state().sleeps.iter().sum();
        Duration::from_millis(total / NANOS_PER_MS)
    }

    /// Records a sleep of `nanos` and advances the clock by it.
    fn sleep(&self, nanos: u64) {
        let mut state = self.state();
        state.nanos = state.nanos.saturating_add(nanos);
        state.sleeps.push(nanos);
    }

    /// A delay that first hands every sleep to `inner` (which may check it, as
    /// `embedded-hal-mock`'s `CheckedDelay` does), then advances this clock by it.
    ///
    /// ```
    /// use embedded_hal::delay::DelayNs;
    /// use embedded_hal_mock::eh1::delay::{CheckedDelay, Transaction};
    /// use jwt_refresh::mock::MockClock;
    /// use jwt_refresh::{Clock, Instant};
    ///
    /// let clock = MockClock::new();
    /// let mut expected = CheckedDelay::new(&[Transaction::delay_ms(1000), Transaction::delay_ms(2000)]);
    /// let mut delay = clock.delay_with(expected.clone());
    /// delay.delay_ms(1000);
    /// delay.delay_ms(2000);
    /// assert_eq!(clock.now(), Instant::from_secs(3));
    /// expected.done(); // every sleep came, exactly as expected
    /// ```
    pub fn delay_with<D>(&self, inner: D) -> AdvancingDelay<D> {
        AdvancingDelay {
            inner,
            clock: self.clone(),
        }
    }
}

impl Clock for MockClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.state().nanos / NANOS_PER_MS)
    }

    fn unix_time(&self) -> Option<UnixTime> {
        let state = self.state();
        let origin = state.wall_origin_ms?;
        let ms = origin.saturating_add(i128::from(state.nanos / NANOS_PER_MS));
        UnixTime::from_secs(u64::try_from(ms.div_euclid(1000)).ok()?)
    }
}

impl embedded_hal::delay::DelayNs for MockClock {
    fn delay_ns(&mut self, ns: u32) {
        self.sleep(u64::from(ns));
    }

    fn delay_us(&mut self, us: u32) {
        self.sleep(u64::from(us).saturating_mul(1000));
    }

    fn delay_ms(&mut self, ms: u32) {
        self.sleep(u64::from(ms).saturating_mul(NANOS_PER_MS));
    }
}

impl embedded_hal_async::delay::DelayNs for MockClock {
    async fn delay_ns(&mut self, ns: u32) {
        self.sleep(u64::from(ns));
    }

    async fn delay_us(&mut self, us: u32) {
        self.sleep(u64::from(us).saturating_mul(1000));
    }

    async fn delay_ms(&mut self, ms: u32) {
        self.sleep(u64::from(ms).saturating_mul(NANOS_PER_MS));
    }
}

/// A delay that hands each sleep to another delay, then advances a [`MockClock`] by it; made by
/// [`MockClock::delay_with`]. Blocking and async, as `inner` is.
#[derive(Debug)]
pub struct AdvancingDelay<D> {
    inner: D,
    clock: MockClock,
}

impl<D> AdvancingDelay<D> {
    /// The inner delay (for example to call `done()` on a `CheckedDelay`).
    pub fn inner_mut(&mut self) -> &mut D {
        &mut self.inner
    }
}

impl<D: embedded_hal::delay::DelayNs> embedded_hal::delay::DelayNs for AdvancingDelay<D> {
    fn delay_ns(&mut self, ns: u32) {
        self.inner.delay_ns(ns);
        self.clock.sleep(u64::from(ns));
    }

    fn delay_us(&mut self, us: u32) {
        self.inner.delay_us(us);
        self.clock.sleep(u64::from(us).saturating_mul(1000));
    }

    fn delay_ms(&mut self, ms: u32) {
        self.inner.delay_ms(ms);
        self.clock.sleep(u64::from(ms).saturating_mul(NANOS_PER_MS));
    }
}

impl<D: embedded_hal_async::delay::DelayNs> embedded_hal_async::delay::DelayNs
    for AdvancingDelay<D>
{
    async fn delay_ns(&mut self, ns: u32) {
        self.inner.delay_ns(ns).await;
        self.clock.sleep(u64::from(ns));
    }

    async fn delay_us(&mut self, us: u32) {
        self.inner.delay_us(us).await;
        self.clock.sleep(u64::from(us).saturating_mul(1000));
    }

    async fn delay_ms(&mut self, ms: u32) {
        self.inner.delay_ms(ms).await;
        self.clock.sleep(u64::from(ms).saturating_mul(NANOS_PER_MS));
    }
}
