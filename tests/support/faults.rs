//! Fault injection for the client's transport, in two layers (like smoltcp's `FaultInjector`,
//! which sits between an interface and a device):
//!
//! - [`FaultInjector`] wraps any [`Transport`] and acts on whole exchanges: it drops a request
//!   before it leaves, loses an answer after the server acted on the request, delays it,
//!   truncates it, fails in the middle of writing it, pretends it is too large, replays an
//!   older answer (a caching proxy), withholds one and delivers it in place of the next
//!   (reordering), or answers by itself (a captive portal, a proxy's 502).
//! - [`FaultProxy`] is a TCP proxy between the HTTP transport and a server that acts on bytes:
//!   one byte per TCP segment (so every `read` returns one byte), a connection cut after N
//!   bytes of the answer, the answer sent twice, a delay before the answer.
//!
//! Both pick the exchanges they hit with a [`When`], count what they did, and keep a log for
//! the test to print. Include with `#[path = "support/faults.rs"] mod faults;`.

#![allow(dead_code, reason = "each test uses a different part")]

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration as StdDuration;

use jwt_refresh::transport::{Endpoint, Error as _, ErrorKind, ErrorType, Request, Response};
use jwt_refresh::{Duration, Transport};

// ---------------------------------------------------------------------------------------------
// Which exchanges a fault hits
// ---------------------------------------------------------------------------------------------

/// Which exchange a fault hits; counts are 1-based.
#[derive(Clone, Debug)]
pub enum When {
    /// The `n`th request to this endpoint.
    Nth(Endpoint, usize),
    /// The `n`th request to this path (e.g. the first refresh).
    NthOnPath(&'static str, usize),
    /// Every request to this path.
    EveryOnPath(&'static str),
    /// Every request to this endpoint.
    Every(Endpoint),
    /// Every request to this path while the flag is set (an outage the test ends).
    While(Arc<AtomicBool>, &'static str),
}

impl When {
    fn hits(&self, endpoint: Endpoint, endpoint_no: usize, path: &str, path_no: usize) -> bool {
        match self {
            When::Nth(e, n) => *e == endpoint && *n == endpoint_no,
            When::NthOnPath(p, n) => *p == path && *n == path_no,
            When::EveryOnPath(p) => *p == path,
            When::Every(e) => *e == endpoint,
            When::While(flag, p) => *p == path && flag.load(Ordering::SeqCst),
        }
    }
}

/// `1st`, `2nd`, `3rd`, `4th`...
pub fn ordinal(n: usize) -> String {
    match n {
        1 => "1st".to_string(),
        2 => "2nd".to_string(),
        3 => "3rd".to_string(),
        n => format!("{n}th"),
    }
}

impl fmt::Display for When {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            When::Nth(Endpoint::Api, n) => write!(f, "{} API request", ordinal(*n)),
            When::Nth(Endpoint::Auth, n) => write!(f, "{} token request", ordinal(*n)),
            When::NthOnPath(p, n) => write!(f, "{} {p}", ordinal(*n)),
            When::EveryOnPath(p) => write!(f, "every {p}"),
            When::Every(Endpoint::Api) => f.write_str("every API request"),
            When::Every(Endpoint::Auth) => f.write_str("every token request"),
            When::While(_, p) => write!(f, "every {p} during an outage"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Message-level faults
// ---------------------------------------------------------------------------------------------

/// What a [`FaultInjector`] does to an exchange.
#[derive(Clone, Debug)]
pub enum Fault {
    /// The request never leaves (connection refused, no route): this error, nothing sent.
    Drop(ErrorKind),
    /// The request is sent and the server acts on it, but the answer is lost: this error.
    LoseAnswer(ErrorKind),
    /// The answer arrives after this delay (the injector sleeps through its [`Sleeper`]).
    Delay(StdDuration),
    /// Only the first `n` bytes of the body arrive, and the transport takes them for the whole
    /// answer (a close-delimited body cut short).
    Truncate(usize),
    /// `n` bytes of the body are written, then the connection fails (reset mid-answer).
    FailMidAnswer(usize),
    /// The answer does not fit the caller's buffer (the transport's `BufferTooSmall`).
    TooLarge,
    /// The request does not leave; the last answer seen on this endpoint is delivered again
    /// (a caching proxy). With no earlier answer, the request is sent.
    ReplayPrevious,
    /// The request is sent, its answer is withheld (the client sees this timeout) and delivered
    /// in place of the answer to the next request on the same endpoint, which is sent and whose
    /// own answer is dropped: the two answers arrive out of order.
    HoldForNext,
    /// The request is sent; in its answer's body, `from` is replaced by `to` (a server or
    /// proxy that writes the same JSON differently).
    Rewrite {
        from: &'static str,
        to: &'static str,
    },
    /// The request does not leave; this answer comes instead (a captive portal, a proxy).
    Answer {
        status: u16,
        body: &'static str,
        retry_after: Option<u64>,
    },
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::Drop(kind) => write!(f, "dropped before sending ({kind:?})"),
            Fault::LoseAnswer(kind) => write!(f, "answer lost after the server acted ({kind:?})"),
            Fault::Delay(d) => write!(f, "answer delayed {} ms", d.as_millis()),
            Fault::Truncate(n) => write!(f, "body cut to {n} bytes, taken as complete"),
            Fault::FailMidAnswer(n) => write!(f, "reset after {n} body bytes"),
            Fault::TooLarge => f.write_str("answer larger than the buffer"),
            Fault::ReplayPrevious => f.write_str("older answer replayed by a cache"),
            Fault::HoldForNext => f.write_str("answer withheld, delivered for the next request"),
            Fault::Rewrite { from, to } => write!(f, "answer rewritten: {from} -> {to}"),
            Fault::Answer { status, body, .. } => {
                let what = if body.starts_with('<') {
                    "HTML"
                } else {
                    "JSON"
                };
                write!(f, "intercepted: {status} {what}")
            }
        }
    }
}

/// A fault and the exchanges it hits.
#[derive(Clone, Debug)]
pub struct Rule {
    pub when: When,
    pub fault: Fault,
}

impl Rule {
    pub fn new(when: When, fault: Fault) -> Rule {
        Rule { when, fault }
    }
}

/// How the injector waits (real sleep over TCP, a fake clock's advance in scripted tests).
pub trait Sleeper {
    fn sleep(&mut self, d: StdDuration);
}

/// `std::thread::sleep`.
pub struct RealSleep;

impl Sleeper for RealSleep {
    fn sleep(&mut self, d: StdDuration) {
        thread::sleep(d);
    }
}

/// The injector's error: the inner transport's, or one it made up.
#[derive(Debug)]
pub enum FaultError<E> {
    Inner(E),
    Injected(ErrorKind),
}

impl<E: jwt_refresh::transport::Error> jwt_refresh::transport::Error for FaultError<E> {
    fn kind(&self) -> ErrorKind {
        match self {
            FaultError::Inner(e) => e.kind(),
            FaultError::Injected(kind) => *kind,
        }
    }
}

/// One exchange as the injector saw it.
#[derive(Clone, Debug)]
pub struct Seen {
    pub endpoint: Endpoint,
    pub path: String,
    /// The fault applied, if any.
    pub fault: Option<String>,
    /// The status delivered to the client, or the error kind.
    pub delivered: Result<u16, ErrorKind>,
}

#[derive(Clone)]
struct Stored {
    response: Response,
    body: Vec<u8>,
}

/// A [`Transport`] that injects [`Fault`]s into an inner one. The first matching rule wins.
pub struct FaultInjector<T, S = RealSleep> {
    inner: T,
    sleeper: S,
    rules: Vec<Rule>,
    counts: [usize; 2],
    per_path: Vec<(String, usize)>,
    /// The last answer delivered per endpoint (for `ReplayPrevious`).
    last: [Option<Stored>; 2],
    /// An answer withheld by `HoldForNext`, per endpoint.
    held: [Option<Stored>; 2],
    /// Every exchange, shared so that the test can read it while the client owns the injector.
    pub log: Arc<Mutex<Vec<Seen>>>,
}

fn slot(endpoint: Endpoint) -> usize {
    match endpoint {
        Endpoint::Api => 0,
        Endpoint::Auth => 1,
    }
}

impl<T: Transport> FaultInjector<T, RealSleep> {
    pub fn new(inner: T, rules: Vec<Rule>) -> Self {
        FaultInjector::with_sleeper(inner, rules, RealSleep)
    }
}

impl<T: Transport, S: Sleeper> FaultInjector<T, S> {
    pub fn with_sleeper(inner: T, rules: Vec<Rule>, sleeper: S) -> Self {
        FaultInjector {
            inner,
            sleeper,
            rules,
            counts: [0; 2],
            per_path: Vec::new(),
            last: [None, None],
            held: [None, None],
            log: Arc::default(),
        }
    }

    pub fn inner_mut(&mut self) -> &mut T {
        &mut self.inner
    }

    fn forward(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Stored, FaultError<T::Error>> {
        // Read the answer into a scratch buffer as large as the caller's, so that a fault can
        // still decide what the caller gets.
        let mut scratch = vec![0u8; body.len()];
        let response = self
            .inner
            .send(request, &mut scratch)
            .map_err(FaultError::Inner)?;
        scratch.truncate(response.body_len);
        Ok(Stored {
            response,
            body: scratch,
        })
    }

    fn deliver(stored: &Stored, body: &mut [u8]) -> Result<Response, ErrorKind> {
        let dst = body
            .get_mut(..stored.body.len())
            .ok_or(ErrorKind::BufferTooSmall)?;
        dst.copy_from_slice(&stored.body);
        Ok(stored.response)
    }

    fn exchange(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> (Option<String>, Result<Response, FaultError<T::Error>>) {
        let endpoint = request.endpoint;
        let i = slot(endpoint);
        self.counts[i] += 1;
        let path_no = match self.per_path.iter_mut().find(|(p, _)| p == request.path) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                self.per_path.push((request.path.to_owned(), 1));
                1
            }
        };
        let fault = self
            .rules
            .iter()
            .find(|r| r.when.hits(endpoint, self.counts[i], request.path, path_no))
            .map(|r| r.fault.clone());
        // An answer held by `HoldForNext` comes now, whatever this request's own fate.
        if let Some(held) = self.held[i].take() {
            let own = self.forward(request, body);
            let note = format!(
                "held answer delivered; this request's own answer ({}) dropped",
                match &own {
                    Ok(s) => s.response.status.to_string(),
                    Err(e) => format!("{:?}", e.kind()),
                }
            );
            let result = Self::deliver(&held, body).map_err(FaultError::Injected);
            return (Some(note), result);
        }
        let Some(fault) = fault else {
            let result = self.forward(request, body).and_then(|stored| {
                let r = Self::deliver(&stored, body).map_err(FaultError::Injected);
                self.last[i] = Some(stored);
                r
            });
            return (None, result);
        };
        let note = Some(fault.to_string());
        let result = match fault {
            Fault::Drop(kind) => Err(FaultError::Injected(kind)),
            Fault::LoseAnswer(kind) => match self.forward(request, body) {
                Ok(_) => Err(FaultError::Injected(kind)),
                Err(e) => Err(e),
            },
            Fault::Delay(d) => {
                let stored = self.forward(request, body);
                self.sleeper.sleep(d);
                stored.and_then(|s| Self::deliver(&s, body).map_err(FaultError::Injected))
            }
            Fault::Truncate(n) => self.forward(request, body).and_then(|mut s| {
                s.body.truncate(n);
                s.response.body_len = s.body.len();
                Self::deliver(&s, body).map_err(FaultError::Injected)
            }),
            Fault::FailMidAnswer(n) => self.forward(request, body).and_then(|s| {
                let n = n.min(s.body.len());
                body[..n].copy_from_slice(&s.body[..n]);
                Err(FaultError::Injected(ErrorKind::Other))
            }),
            Fault::TooLarge => self
                .forward(request, body)
                .and_then(|_| Err(FaultError::Injected(ErrorKind::BufferTooSmall))),
            Fault::ReplayPrevious => match self.last[i].clone() {
                Some(old) => Self::deliver(&old, body).map_err(FaultError::Injected),
                None => self.forward(request, body).and_then(|stored| {
                    let r = Self::deliver(&stored, body).map_err(FaultError::Injected);
                    self.last[i] = Some(stored);
                    r
                }),
            },
            Fault::HoldForNext => match self.forward(request, body) {
                Ok(stored) => {
                    self.held[i] = Some(stored);
                    Err(FaultError::Injected(ErrorKind::TimedOut))
                }
                Err(e) => Err(e),
            },
            Fault::Rewrite { from, to } => self.forward(request, body).and_then(|mut s| {
                let text = String::from_utf8_lossy(&s.body).replace(from, to);
                s.body = text.into_bytes();
                s.response.body_len = s.body.len();
                Self::deliver(&s, body).map_err(FaultError::Injected)
            }),
            Fault::Answer {
                status,
                body: text,
                retry_after,
            } => {
                let mut response = Response::new(status, text.len());
                response.retry_after = retry_after.map(Duration::from_secs);
                let stored = Stored {
                    response,
                    body: text.as_bytes().to_vec(),
                };
                Self::deliver(&stored, body).map_err(FaultError::Injected)
            }
        };
        (note, result)
    }
}

impl<T: Transport, S> ErrorType for FaultInjector<T, S> {
    type Error = FaultError<T::Error>;
}

impl<T: Transport, S: Sleeper> Transport for FaultInjector<T, S> {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, Self::Error> {
        let (fault, result) = self.exchange(request, body);
        self.log.lock().unwrap().push(Seen {
            endpoint: request.endpoint,
            path: request.path.to_owned(),
            fault,
            delivered: match &result {
                Ok(r) => Ok(r.status),
                Err(e) => Err(e.kind()),
            },
        });
        result
    }
}

// ---------------------------------------------------------------------------------------------
// Byte-level faults: a TCP proxy
// ---------------------------------------------------------------------------------------------

/// What a [`FaultProxy`] does to the bytes of an answer.
#[derive(Clone, Copy, Debug)]
pub enum ByteFault {
    /// One byte per TCP segment (`TCP_NODELAY`, a flush and a pause after each), so the
    /// client's every `read` returns one byte.
    OneByteSegments,
    /// The connection is cut (both ways) after this many bytes of the answer.
    CutAfter(usize),
    /// The whole answer is sent twice on the same connection.
    Duplicate,
    /// The answer is held back this long before the first byte goes out.
    Delay(StdDuration),
}

impl fmt::Display for ByteFault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ByteFault::OneByteSegments => f.write_str("1-byte TCP segments (1-byte reads)"),
            ByteFault::CutAfter(n) => write!(f, "TCP cut after {n} answer bytes"),
            ByteFault::Duplicate => f.write_str("answer bytes sent twice"),
            ByteFault::Delay(d) => write!(f, "TCP answer held {} ms", d.as_millis()),
        }
    }
}

/// A TCP proxy on `127.0.0.1:0` that forwards one request per connection to `upstream` and
/// applies a [`ByteFault`] to the answers of the requests its [`When`] picks (it reads the
/// request line to know the path; `When::Nth` counts by API or token endpoint through
/// `auth_paths`).
pub struct FaultProxy {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
    /// How many answers were faulted.
    pub hits: Arc<Mutex<usize>>,
}

struct ProxyRule {
    when: When,
    fault: ByteFault,
    auth_paths: Vec<&'static str>,
}

impl FaultProxy {
    /// `auth_paths` are the token endpoint's paths (for `When::Nth(Endpoint::Auth, _)`).
    pub fn start(
        upstream: SocketAddr,
        when: When,
        fault: ByteFault,
        auth_paths: &[&'static str],
    ) -> io::Result<FaultProxy> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let hits = Arc::new(Mutex::new(0));
        let rule = Arc::new(ProxyRule {
            when,
            fault,
            auth_paths: auth_paths.to_vec(),
        });
        let (stop2, hits2) = (Arc::clone(&stop), Arc::clone(&hits));
        let accept = thread::spawn(move || {
            let counts = Arc::new(Mutex::new((0usize, 0usize, Vec::<(String, usize)>::new())));
            let mut workers = Vec::new();
            for conn in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let (rule, counts, hits) =
                    (Arc::clone(&rule), Arc::clone(&counts), Arc::clone(&hits2));
                workers.push(thread::spawn(move || {
                    let _ = relay(client, upstream, &rule, &counts, &hits);
                }));
            }
            for w in workers {
                let _ = w.join();
            }
        });
        Ok(FaultProxy {
            addr,
            stop,
            accept: Some(accept),
            hits,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, StdDuration::from_secs(1));
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

type Counts = Mutex<(usize, usize, Vec<(String, usize)>)>;

fn relay(
    mut client: TcpStream,
    upstream: SocketAddr,
    rule: &ProxyRule,
    counts: &Counts,
    hits: &Mutex<usize>,
) -> io::Result<()> {
    client.set_read_timeout(Some(StdDuration::from_secs(10)))?;
    // The whole request: the head, then `Content-Length` bytes.
    let mut request = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            return Ok(());
        }
        request.extend_from_slice(&chunk[..n]);
        if let Some(at) = request.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&request[..head_end]).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0);
    while request.len() < head_end + length {
        let n = client.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        request.extend_from_slice(&chunk[..n]);
    }
    let path = head
        .split_whitespace()
        .nth(1)
        .unwrap_or("")
        .split('?')
        .next()
        .unwrap_or("")
        .to_owned();
    let faulted = {
        let mut c = counts.lock().unwrap();
        let endpoint = if rule.auth_paths.contains(&path.as_str()) {
            c.1 += 1;
            Endpoint::Auth
        } else {
            c.0 += 1;
            Endpoint::Api
        };
        let endpoint_no = if endpoint == Endpoint::Auth { c.1 } else { c.0 };
        let path_no = match c.2.iter_mut().find(|(p, _)| *p == path) {
            Some((_, n)) => {
                *n += 1;
                *n
            }
            None => {
                c.2.push((path.clone(), 1));
                1
            }
        };
        rule.when.hits(endpoint, endpoint_no, &path, path_no)
    };
    let mut server = TcpStream::connect(upstream)?;
    server.set_read_timeout(Some(StdDuration::from_secs(10)))?;
    server.write_all(&request)?;
    // The server closes after its answer (`Connection: close`).
    let mut answer = Vec::new();
    server.read_to_end(&mut answer)?;
    client.set_nodelay(true)?;
    if !faulted {
        client.write_all(&answer)?;
        let _ = client.shutdown(Shutdown::Write);
        return drain(client);
    }
    *hits.lock().unwrap() += 1;
    match rule.fault {
        ByteFault::OneByteSegments => {
            for b in &answer {
                client.write_all(std::slice::from_ref(b))?;
                client.flush()?;
                thread::sleep(StdDuration::from_micros(300));
            }
        }
        ByteFault::CutAfter(n) => {
            client.write_all(&answer[..n.min(answer.len())])?;
            client.flush()?;
            // Let the bytes arrive, then reset the connection rather than closing it cleanly.
            thread::sleep(StdDuration::from_millis(20));
            let _ = client.shutdown(Shutdown::Both);
            return Ok(());
        }
        ByteFault::Duplicate => {
            client.write_all(&answer)?;
            client.write_all(&answer)?;
        }
        ByteFault::Delay(d) => {
            thread::sleep(d);
            client.write_all(&answer)?;
        }
    }
    let _ = client.shutdown(Shutdown::Write);
    drain(client)
}

/// Reads what the client still sends so that closing does not reset the connection before the
/// client has read the answer.
fn drain(mut client: TcpStream) -> io::Result<()> {
    client.set_read_timeout(Some(StdDuration::from_millis(200)))?;
    let mut sink = [0u8; 1024];
    while let Ok(n) = client.read(&mut sink) {
        if n == 0 {
            break;
        }
    }
    Ok(())
}
