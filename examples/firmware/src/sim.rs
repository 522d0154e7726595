//! The simulated world the client runs in: a millisecond clock that only moves when the script,
//! the network latency or a backoff sleep moves it (so every run makes the same decisions), the
//! delay that sleeps by advancing it, and the log of everything the client was seen doing.

use core::cell::{Cell, RefCell};

use jwt_refresh::{Clock, Instant};

use crate::stack;

/// A simulated monotonic counter in milliseconds, standing in for SysTick: on real hardware
/// `now()` would read a tick counter. Simulated time keeps the run deterministic (QEMU's
/// SysTick follows the host's clock) and lets the script jump minutes ahead without waiting.
pub struct SimClock {
    ms: Cell<u64>,
}

impl SimClock {
    pub const fn new() -> Self {
        SimClock { ms: Cell::new(0) }
    }

    pub fn now_ms(&self) -> u64 {
        self.ms.get()
    }

    /// Moves the clock to `ms` (the script's next request); never backwards.
    pub fn set_ms(&self, ms: u64) {
        self.ms.set(self.ms.get().max(ms));
    }

    pub fn advance_ms(&self, ms: u64) {
        self.ms.set(self.ms.get().saturating_add(ms));
    }
}

impl Clock for SimClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.ms.get())
    }
}

/// Sleeps through backoffs by advancing the simulated clock, and logs each sleep.
#[derive(Clone, Copy)]
pub struct SimDelay<'a> {
    pub clock: &'a SimClock,
    pub log: &'a Log,
}

impl embedded_hal::delay::DelayNs for SimDelay<'_> {
    #[inline(never)]
    fn delay_ns(&mut self, ns: u32) {
        stack::note_callback();
        let ms = ns.div_ceil(1_000_000);
        self.log.push(Event::Sleep { ms });
        self.clock.advance_ms(u64::from(ms));
    }

    #[inline(never)]
    fn delay_ms(&mut self, ms: u32) {
        stack::note_callback();
        self.log.push(Event::Sleep { ms });
        self.clock.advance_ms(u64::from(ms));
    }
}

/// A token the scripted server issued, by kind and issue number.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    /// SimpleJWT access token `n`.
    A(u8),
    /// SimpleJWT refresh token `n`.
    R(u8),
    /// OAuth 2.0 access token `n`.
    OA(u8),
    /// OAuth 2.0 refresh token `n`.
    OR(u8),
    /// Not a token the server issued.
    Unknown,
}

impl Tok {
    pub fn prefix(self) -> &'static str {
        match self {
            Tok::A(_) => "A",
            Tok::R(_) => "R",
            Tok::OA(_) => "OA",
            Tok::OR(_) => "OR",
            Tok::Unknown => "?",
        }
    }

    pub fn number(self) -> u8 {
        match self {
            Tok::A(n) | Tok::R(n) | Tok::OA(n) | Tok::OR(n) => n,
            Tok::Unknown => 0,
        }
    }
}

/// The token endpoint's status for a request that got no answer (the transport timed out).
pub const NO_ANSWER: u16 = 0;

/// How one `Client::send` ended.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// `Ok(response)` with this status.
    Ok(u16),
    /// `Err(Error::Unauthorized(response))` with this status.
    Unauthorized(u16),
    LoginRequired,
    RetryLater,
    Fatal,
    Transport,
    Store,
    Other,
}

/// One thing the client was seen doing, by the server, the store, the delay or the script.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Event {
    /// The script calls `Client::send` (step number).
    Send { step: u8 },
    /// The script restarts the device: a new session and client, `Client::restore()`.
    Reboot,
    /// A login at the token endpoint, answered with `status` ([`NO_ANSWER`]: none).
    Login { status: u16 },
    /// A refresh at the token endpoint with refresh token `with`, answered with `status`.
    Refresh { with: Tok, status: u16 },
    /// An API request sent with access token `with`, answered with `status`.
    Api { with: Tok, status: u16 },
    /// The store saved refresh token `tok` to the flash page.
    Save { tok: Tok },
    /// The store erased the flash page.
    Clear,
    /// The store read the flash page: the token found, if any.
    Load { found: Option<Tok> },
    /// A backoff sleep.
    Sleep { ms: u32 },
    /// `Client::send` returned.
    Done { outcome: Outcome },
    /// The session's counters when the script is done with a client.
    Stats {
        logins: u32,
        refreshes: u32,
        failures: u32,
    },
}

/// Capacity of the log (the script makes 78 entries).
const LOG_CAPACITY: usize = 128;

/// The events in order. A fixed array: no allocator.
pub struct Log {
    events: RefCell<[Event; LOG_CAPACITY]>,
    len: Cell<usize>,
    overflowed: Cell<bool>,
}

impl Log {
    pub const fn new() -> Self {
        Log {
            events: RefCell::new([Event::Clear; LOG_CAPACITY]),
            len: Cell::new(0),
            overflowed: Cell::new(false),
        }
    }

    #[inline(never)]
    pub fn push(&self, event: Event) {
        let len = self.len.get();
        match self.events.borrow_mut().get_mut(len) {
            Some(slot) => {
                *slot = event;
                self.len.set(len + 1);
            }
            None => self.overflowed.set(true),
        }
    }

    pub fn len(&self) -> usize {
        self.len.get()
    }

    pub fn get(&self, i: usize) -> Option<Event> {
        if i < self.len.get() {
            self.events.borrow().get(i).copied()
        } else {
            None
        }
    }

    pub fn overflowed(&self) -> bool {
        self.overflowed.get()
    }
}
