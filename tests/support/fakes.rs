//! Fakes for the driver tests: a clock the test moves, a delay that moves it, a transport that
//! plays a script (writing an answer into the body before it fails, as a real one does when a
//! connection breaks mid-answer), and a store in memory that can be told to fail.
#![allow(dead_code, reason = "each test file uses part of it")]

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;

use jwt_refresh::transport::{ErrorKind, ErrorType, Response};
use jwt_refresh::{AsyncTransport, Clock, Instant, Request, TokenStore, Transport};

#[derive(Clone, Default)]
pub struct FakeClock(pub Rc<Cell<u64>>);

impl Clock for FakeClock {
    fn now(&self) -> Instant {
        Instant::from_millis(self.0.get())
    }
}

/// Sleeps by moving the fake clock.
pub struct Delay(pub FakeClock);

impl embedded_hal::delay::DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let clock = &self.0 .0;
        clock.set(clock.get() + u64::from(ns).div_ceil(1_000_000));
    }
}

impl embedded_hal_async::delay::DelayNs for Delay {
    async fn delay_ns(&mut self, ns: u32) {
        embedded_hal::delay::DelayNs::delay_ns(self, ns);
    }
}

/// What the transport does with the next request.
pub enum Step {
    /// Answers with this status and body (the body overflows when it does not fit: the part
    /// that fits is written, then `BufferTooSmall`).
    Answer(u16, String),
    /// Writes `body` (what arrived before the failure), then fails with `kind`.
    FailAfter(String, ErrorKind),
}

#[derive(Clone)]
pub struct Script {
    pub steps: Rc<RefCell<VecDeque<Step>>>,
    /// Each request as `<path> <body>`.
    pub sent: Rc<RefCell<Vec<String>>>,
    clock: FakeClock,
}

impl Script {
    pub fn new(clock: &FakeClock, steps: Vec<Step>) -> Self {
        Script {
            steps: Rc::new(RefCell::new(steps.into())),
            sent: Rc::default(),
            clock: clock.clone(),
        }
    }

    fn exchange(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        let text = String::from_utf8_lossy(request.body);
        self.sent
            .borrow_mut()
            .push(format!("{} {text}", request.path));
        self.clock.0.set(self.clock.0.get() + 5);
        let step = self.steps.borrow_mut().pop_front().expect("script ran out");
        let (text, failure) = match step {
            Step::Answer(status, text) => (text, (status, None)),
            Step::FailAfter(text, kind) => (text, (0, Some(kind))),
        };
        let n = text.len().min(body.len());
        body[..n].copy_from_slice(&text.as_bytes()[..n]);
        match failure {
            (_, Some(kind)) => Err(kind),
            _ if n < text.len() => Err(ErrorKind::BufferTooSmall),
            (status, None) => Ok(Response::new(status, n)),
        }
    }
}

impl ErrorType for Script {
    type Error = ErrorKind;
}

impl Transport for Script {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}

impl AsyncTransport for Script {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}

/// A store in memory, shared by its clones (a "flash" that survives a reboot), whose saves and
/// clears can be made to fail.
#[derive(Clone, Default)]
pub struct Store {
    pub token: Rc<RefCell<Option<String>>>,
    pub fail_saves: Rc<Cell<bool>>,
    pub fail_clears: Rc<Cell<bool>>,
}

impl Store {
    pub fn holding(token: &str) -> Self {
        let store = Store::default();
        store.set(Some(token));
        store
    }

    pub fn set(&self, token: Option<&str>) {
        *self.token.borrow_mut() = token.map(str::to_owned);
    }

    pub fn get(&self) -> Option<String> {
        self.token.borrow().clone()
    }
}

impl TokenStore for Store {
    type Error = &'static str;
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, &'static str> {
        let Some(token) = self.get() else {
            return Ok(None);
        };
        let dst = buf.get_mut(..token.len()).ok_or("too long")?;
        dst.copy_from_slice(token.as_bytes());
        Ok(std::str::from_utf8(dst).ok())
    }
    fn save(&mut self, token: &str) -> Result<(), &'static str> {
        if self.fail_saves.get() {
            return Err("flash write failed");
        }
        self.set(Some(token));
        Ok(())
    }
    fn clear(&mut self) -> Result<(), &'static str> {
        if self.fail_clears.get() {
            return Err("flash erase failed");
        }
        self.set(None);
        Ok(())
    }
}
