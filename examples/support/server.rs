//! A small std-only HTTP/1.1 server that answers like a Django REST Framework SimpleJWT server
//! (see `wire.md`), and optionally like an OAuth 2.0 token endpoint (RFC 6749), for the demo and
//! the integration tests.
//!
//! Include it with `#[path = "support/server.rs"] mod server;` (examples) or
//! `#[path = "../examples/support/server.rs"] mod server;` (tests).
//!
//! - Request heads are parsed with `httparse`; the body is read by `Content-Length`.
//! - Binds `127.0.0.1:0` (loopback only), one thread per connection, one request per connection:
//!   every answer carries `Connection: close` and the server closes after it.
//! - Tokens are real HS256 JWTs (`jsonwebtoken`) with the SimpleJWT claims `token_type`, `exp`,
//!   `iat`, `jti` (32 hex digits) and `user_id`; `iat` is the server time floored to whole
//!   seconds and `exp = iat + lifetime` (lifetimes are truncated to whole seconds). The server
//!   verifies the signature and rejects a token once `now >= exp` (float seconds, no leeway).
//! - Every request is logged as an [`Event`], so a test can count logins and refreshes and prove
//!   that no expired access token was presented.
//! - Answers can be framed with `Content-Length`, `Transfer-Encoding: chunked` (upper-case hex
//!   sizes) or by closing the connection, and scripted [`Fault`]s inject 503s, truncated bodies,
//!   dropped connections and delays.
//!
//! This is a test double: the secret is fixed by default and the `jti` is not cryptographically
//! random. Never expose it beyond loopback.
#![allow(dead_code)]

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The SimpleJWT login endpoint.
pub const TOKEN_PATH: &str = "/api/token/";
/// The SimpleJWT refresh endpoint.
pub const REFRESH_PATH: &str = "/api/token/refresh/";
/// A protected view: `GET` with `Authorization: Bearer <access>`.
pub const PROTECTED_PATH: &str = "/api/protected/";

/// How answer bodies are delimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Framing {
    /// `Content-Length: N`.
    #[default]
    ContentLength,
    /// `Transfer-Encoding: chunked`, with upper-case hex chunk sizes (chunks of at most 0xFA
    /// bytes, so a body of a few hundred bytes comes in several chunks).
    Chunked,
    /// No length at all: the body ends when the server closes the connection.
    Close,
    /// Cycles `ContentLength`, `Chunked`, `Close` over the server's successive answers.
    RoundRobin,
}

/// The OAuth 2.0 token endpoint (RFC 6749) served next to the SimpleJWT endpoints.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OAuth2Config {
    /// The registered client id.
    pub client_id: String,
    /// The registered client secret (client authentication is always required).
    pub client_secret: String,
    /// The token endpoint's path, e.g. `/token` (the crate's default).
    pub token_path: String,
    /// Whether the client-credentials grant also issues a refresh token (RFC 6749 section 4.4.3
    /// says it SHOULD NOT; default `false`).
    pub refresh_on_client_credentials: bool,
}

impl Default for OAuth2Config {
    fn default() -> Self {
        OAuth2Config {
            client_id: "device".into(),
            client_secret: "device-secret".into(),
            token_path: "/token".into(),
            refresh_on_client_credentials: false,
        }
    }
}

/// Which request a [`Fault`] hits. Counts are 1-based and count every parsed request,
/// including the faulted ones.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultWhen {
    /// The Nth request the server receives (1 = the first).
    Request(usize),
    /// The Nth request to this exact path (query excluded; 1 = the first).
    OnPath { path: String, nth: usize },
    /// Every request to this exact path.
    EveryOnPath(String),
}

/// What a [`Fault`] does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FaultAction {
    /// 503 with `Retry-After: <secs>`; the request is not processed.
    Unavailable { retry_after_secs: u32 },
    /// This status and body (sent as JSON; a 401 also gets `WWW-Authenticate`); the request is
    /// not processed.
    Status { status: u16, body: String },
    /// The request is processed (a refresh rotates and blacklists), the head is sent in full but
    /// only half of the framed body, then the connection is closed.
    TruncatedBody,
    /// The request is read, not processed, and the connection is closed without a byte.
    CloseWithoutAnswer,
    /// The request is processed normally after this delay (cut short by `stop`).
    Delay(Duration),
}

/// A scripted fault: the first fault in [`ServerConfig::faults`] whose trigger matches wins.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fault {
    pub when: FaultWhen,
    pub action: FaultAction,
}

impl Fault {
    /// The `n`th request the server receives (1-based).
    pub fn on_request(n: usize, action: FaultAction) -> Fault {
        Fault {
            when: FaultWhen::Request(n),
            action,
        }
    }

    /// The `nth` request to `path` (1-based).
    pub fn on_path(path: &str, nth: usize, action: FaultAction) -> Fault {
        Fault {
            when: FaultWhen::OnPath {
                path: path.into(),
                nth,
            },
            action,
        }
    }

    /// Every request to `path`.
    pub fn every(path: &str, action: FaultAction) -> Fault {
        Fault {
            when: FaultWhen::EveryOnPath(path.into()),
            action,
        }
    }

    fn matches(&self, request_no: usize, path: &str, path_no: usize) -> bool {
        match &self.when {
            FaultWhen::Request(n) => *n == request_no,
            FaultWhen::OnPath { path: p, nth } => p == path && *nth == path_no,
            FaultWhen::EveryOnPath(p) => p == path,
        }
    }
}

/// The server's behaviour. `Default`: access 2 s, refresh 1 day, rotation and blacklist on,
/// `Content-Length` framing, user `device` / `device-password`, no OAuth 2.0, no faults.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Access-token lifetime (whole seconds are used).
    pub access_lifetime: Duration,
    /// Refresh-token lifetime (whole seconds are used).
    pub refresh_lifetime: Duration,
    /// `ROTATE_REFRESH_TOKENS`: a refresh also returns a new refresh token.
    pub rotate: bool,
    /// `BLACKLIST_AFTER_ROTATION`: a rotated refresh token is dead after one use.
    pub blacklist: bool,
    pub username: String,
    pub password: String,
    /// The `user_id` claim (a string, as SimpleJWT with a string primary key).
    pub user_id: String,
    /// The HS256 key.
    pub secret: String,
    /// Serve an OAuth 2.0 token endpoint too.
    pub oauth2: Option<OAuth2Config>,
    pub framing: Framing,
    pub faults: Vec<Fault>,
    /// Seconds added to the system clock for everything the server does (tokens, checks,
    /// `Date`): simulates a server whose clock differs from the client's.
    pub clock_offset_secs: i64,
    /// How long a connection may take to deliver its whole request before it is dropped.
    pub read_timeout: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            access_lifetime: Duration::from_secs(2),
            refresh_lifetime: Duration::from_secs(24 * 60 * 60),
            rotate: true,
            blacklist: true,
            username: "device".into(),
            password: "device-password".into(),
            user_id: "1".into(),
            secret: "jwt-refresh-demo-server-secret".into(),
            oauth2: None,
            framing: Framing::ContentLength,
            faults: Vec::new(),
            clock_offset_secs: 0,
            read_timeout: Duration::from_secs(5),
        }
    }
}

/// What a request was for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `POST /api/token/`, or an OAuth 2.0 grant other than `refresh_token`.
    Login,
    /// `POST /api/token/refresh/`, or the OAuth 2.0 `refresh_token` grant.
    Refresh,
    /// `GET /api/protected/`.
    Protected,
    /// Anything else (redirects, 404, 405, unparseable requests).
    Other,
}

/// One logged request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When the request had been read, since the server started.
    pub at: Duration,
    pub method: String,
    /// The request target without its query.
    pub path: String,
    /// The status sent; 0 when the connection was closed without an answer.
    pub status: u16,
    pub kind: EventKind,
    /// The presented token (Protected: the bearer access token; Refresh: the refresh token) had
    /// a valid signature and was expired on arrival (`now >= exp`).
    pub presented_expired: bool,
    /// The `jti` of the presented token (when its signature was valid).
    pub token_jti: Option<String>,
    /// The `jti` of the access token issued by a successful login or refresh.
    pub issued_jti: Option<String>,
    /// A scripted fault hit this request.
    pub faulted: bool,
}

/// A running server. Dropping it stops it.
pub struct Server {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `127.0.0.1:0` and starts the accept thread.
    pub fn start(config: ServerConfig) -> io::Result<Server> {
        let listener = TcpListener::bind(("127.0.0.1", 0))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            enc: EncodingKey::from_secret(config.secret.as_bytes()),
            dec: DecodingKey::from_secret(config.secret.as_bytes()),
            config,
            started: Instant::now(),
            stop: AtomicBool::new(false),
            state: Mutex::new(State::default()),
            hasher: RandomState::new(),
            jti_seq: AtomicU64::new(0),
        });
        let accept_shared = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("demo-server-accept".into())
            .spawn(move || accept_loop(listener, accept_shared))?;
        Ok(Server {
            shared,
            addr,
            accept: Some(accept),
        })
    }

    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn config(&self) -> &ServerConfig {
        &self.shared.config
    }

    /// A snapshot of the request log, in the order the answers were decided.
    pub fn events(&self) -> Vec<Event> {
        self.shared.lock().events.clone()
    }

    /// How many logged requests are of this kind.
    pub fn count(&self, kind: EventKind) -> usize {
        self.shared
            .lock()
            .events
            .iter()
            .filter(|e| e.kind == kind)
            .count()
    }

    /// `(access, refresh)` as a login would issue them (not logged): e.g. a provisioned OAuth
    /// 2.0 refresh token.
    pub fn issue_tokens(&self) -> (String, String) {
        let c = &self.shared.config;
        let refresh = self
            .shared
            .mint("refresh", c.refresh_lifetime, &c.user_id)
            .0;
        let access = self.shared.mint("access", c.access_lifetime, &c.user_id).0;
        (access, refresh)
    }

    /// A token of this `token_type` (`"access"` or `"refresh"`) and lifetime, signed with the
    /// server's key; `Duration::ZERO` gives a token that is already expired.
    pub fn mint_token(&self, token_type: &str, lifetime: Duration) -> String {
        let user_id = &self.shared.config.user_id;
        self.shared.mint(token_type, lifetime, user_id).0
    }

    /// Stops accepting, waits for every connection thread and the accept thread. Idempotent;
    /// the event log stays readable.
    pub fn stop(&mut self) {
        let Some(accept) = self.accept.take() else {
            return;
        };
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept; it sees the flag and returns, dropping the listener.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        let _ = accept.join();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

// ---------------------------------------------------------------------------------------------
// Internals

const POLL: Duration = Duration::from_millis(20);
const MAX_HEAD: usize = 16 * 1024;
const MAX_BODY: usize = 1024 * 1024;
const CHUNK: usize = 0xFA;
const WWW_AUTHENTICATE: &str = "Bearer realm=\"api\"";

struct Shared {
    config: ServerConfig,
    started: Instant,
    stop: AtomicBool,
    state: Mutex<State>,
    enc: EncodingKey,
    dec: DecodingKey,
    hasher: RandomState,
    jti_seq: AtomicU64,
}

#[derive(Default)]
struct State {
    events: Vec<Event>,
    blacklist: HashSet<String>,
    requests: usize,
    per_path: HashMap<String, usize>,
    answers: usize,
}

fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut workers: Vec<JoinHandle<()>> = Vec::new();
    loop {
        let accepted = listener.accept();
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        match accepted {
            Ok((stream, _)) => {
                let worker_shared = Arc::clone(&shared);
                let spawned = thread::Builder::new()
                    .name("demo-server-conn".into())
                    .spawn(move || worker_shared.serve(stream));
                if let Ok(handle) = spawned {
                    workers.push(handle);
                }
            }
            Err(_) => thread::sleep(Duration::from_millis(5)),
        }
        let (done, running): (Vec<_>, Vec<_>) = workers.into_iter().partition(|h| h.is_finished());
        for handle in done {
            let _ = handle.join();
        }
        workers = running;
    }
    drop(listener);
    for handle in workers {
        let _ = handle.join();
    }
}

/// A parsed request.
struct Request {
    method: String,
    path: String,
    query: Option<String>,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Request {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn content_type_is(&self, mime: &str) -> bool {
        self.header("content-type").is_some_and(|ct| {
            ct.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case(mime))
        })
    }
}

enum ReadError {
    /// The peer went away, timed out or the server is stopping: close silently.
    Gone,
    /// Answer this status with `{"detail": msg}`.
    Bad(u16, String),
}

#[derive(Clone)]
struct Response {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl Response {
    fn json(status: u16, body: impl Into<String>) -> Response {
        let mut headers = vec![
            ("Content-Type", "application/json".to_string()),
            ("Vary", "Accept".to_string()),
        ];
        if status == 401 {
            headers.push(("WWW-Authenticate", WWW_AUTHENTICATE.to_string()));
        }
        Response {
            status,
            headers,
            body: body.into().into_bytes(),
        }
    }

    fn detail(status: u16, detail: &str) -> Response {
        Response::json(status, format!("{{\"detail\":{}}}", json_str(detail)))
    }

    fn with(mut self, name: &'static str, value: impl Into<String>) -> Response {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers.push((name, value.into()));
        self
    }
}

/// An answer and what to log about it.
struct Outcome {
    response: Response,
    kind: EventKind,
    presented_expired: bool,
    token_jti: Option<String>,
    issued_jti: Option<String>,
}

impl Outcome {
    fn new(kind: EventKind, response: Response) -> Outcome {
        Outcome {
            response,
            kind,
            presented_expired: false,
            token_jti: None,
            issued_jti: None,
        }
    }

    fn presented(mut self, checked: &Checked) -> Outcome {
        self.presented_expired = checked.expired;
        self.token_jti = checked.claims.as_ref().map(|c| c.jti.clone());
        self
    }
}

#[derive(Serialize)]
struct MintClaims<'a> {
    token_type: &'a str,
    exp: i64,
    iat: i64,
    jti: &'a str,
    user_id: &'a str,
}

#[derive(Deserialize)]
struct TokenClaims {
    token_type: String,
    exp: f64,
    jti: String,
    user_id: Value,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Problem {
    Invalid,
    Expired,
    WrongType,
}

impl Problem {
    fn message(self) -> &'static str {
        match self {
            Problem::Invalid => "Token is invalid",
            Problem::Expired => "Token is expired",
            Problem::WrongType => "Token has wrong type",
        }
    }
}

struct Checked {
    /// The claims, when the signature was valid.
    claims: Option<TokenClaims>,
    expired: bool,
    problem: Option<Problem>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }

    /// Seconds since the epoch, with the configured offset.
    fn now(&self) -> f64 {
        let wall = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        wall + self.config.clock_offset_secs as f64
    }

    fn new_jti(&self) -> String {
        let seq = self.jti_seq.fetch_add(1, Ordering::Relaxed);
        let half = |salt: u8| {
            let mut h = self.hasher.build_hasher();
            h.write_u64(seq);
            h.write_u8(salt);
            h.finish()
        };
        format!("{:016x}{:016x}", half(1), half(2))
    }

    /// `(token, jti)`.
    fn mint(&self, token_type: &str, lifetime: Duration, user_id: &str) -> (String, String) {
        let iat = self.now().floor() as i64;
        let jti = self.new_jti();
        let claims = MintClaims {
            token_type,
            exp: iat + lifetime.as_secs() as i64,
            iat,
            jti: &jti,
            user_id,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.enc)
            .expect("HS256 signing cannot fail");
        (token, jti)
    }

    /// Signature, then `exp`, then `token_type`, in SimpleJWT's order.
    fn check(&self, token: &str, expected_type: &str) -> Checked {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.validate_exp = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        let claims = match jsonwebtoken::decode::<TokenClaims>(token, &self.dec, &validation) {
            Ok(data) => data.claims,
            Err(_) => {
                return Checked {
                    claims: None,
                    expired: false,
                    problem: Some(Problem::Invalid),
                }
            }
        };
        let expired = self.now() >= claims.exp;
        let problem = if expired {
            Some(Problem::Expired)
        } else if claims.token_type != expected_type {
            Some(Problem::WrongType)
        } else {
            None
        };
        Checked {
            claims: Some(claims),
            expired,
            problem,
        }
    }

    fn log(&self, at: Duration, method: &str, path: &str, outcome: &Outcome, faulted: bool) {
        let event = Event {
            at,
            method: method.to_string(),
            path: path.to_string(),
            status: outcome.response.status,
            kind: outcome.kind,
            presented_expired: outcome.presented_expired,
            token_jti: outcome.token_jti.clone(),
            issued_jti: outcome.issued_jti.clone(),
            faulted,
        };
        self.lock().events.push(event);
    }

    fn serve(&self, mut stream: TcpStream) {
        let _ = stream.set_nonblocking(false);
        let _ = stream.set_nodelay(true);
        let _ = stream.set_read_timeout(Some(POLL));
        let _ = stream.set_write_timeout(Some(Duration::from_secs(2)));
        let request = match self.read_request(&mut stream) {
            Ok(request) => request,
            Err(ReadError::Gone) => return,
            Err(ReadError::Bad(status, message)) => {
                let at = self.started.elapsed();
                let outcome = Outcome::new(EventKind::Other, Response::detail(status, &message));
                self.log(at, "", "", &outcome, false);
                self.write(&mut stream, &outcome.response, false);
                self.finish(stream);
                return;
            }
        };
        let at = self.started.elapsed();
        let fault = {
            let mut state = self.lock();
            state.requests += 1;
            let request_no = state.requests;
            let count = state.per_path.entry(request.path.clone()).or_default();
            *count += 1;
            let path_no = *count;
            self.config
                .faults
                .iter()
                .find(|f| f.matches(request_no, &request.path, path_no))
                .map(|f| f.action.clone())
        };
        let faulted = fault.is_some();
        let mut truncate = false;
        let outcome = match fault {
            None => self.route(&request),
            Some(FaultAction::CloseWithoutAnswer) => {
                let mut outcome = Outcome::new(self.kind_of(&request), Response::json(0, ""));
                outcome.response.status = 0;
                self.log(at, &request.method, &request.path, &outcome, true);
                let _ = stream.shutdown(Shutdown::Both);
                return;
            }
            Some(FaultAction::Unavailable { retry_after_secs }) => {
                let response =
                    Response::detail(503, "Service temporarily unavailable, try again later.")
                        .with("Retry-After", retry_after_secs.to_string());
                Outcome::new(self.kind_of(&request), response)
            }
            Some(FaultAction::Status { status, body }) => {
                Outcome::new(self.kind_of(&request), Response::json(status, body))
            }
            Some(FaultAction::TruncatedBody) => {
                truncate = true;
                self.route(&request)
            }
            Some(FaultAction::Delay(delay)) => {
                let until = Instant::now() + delay;
                loop {
                    let now = Instant::now();
                    if now >= until {
                        break;
                    }
                    if self.stopping() {
                        return;
                    }
                    thread::sleep((until - now).min(Duration::from_millis(5)));
                }
                self.route(&request)
            }
        };
        // Logged before the answer goes out, so a client that has read its answer sees it.
        self.log(at, &request.method, &request.path, &outcome, faulted);
        self.write(&mut stream, &outcome.response, truncate);
        self.finish(stream);
    }

    /// Head until CRLFCRLF, then `Content-Length` bytes of body.
    fn read_request(&self, stream: &mut TcpStream) -> Result<Request, ReadError> {
        let deadline = Instant::now() + self.config.read_timeout;
        let mut buf: Vec<u8> = Vec::with_capacity(1024);
        // The head, parsed by `httparse` once it is complete.
        let (head_end, method, target, headers) = loop {
            let mut slots = [httparse::EMPTY_HEADER; 64];
            let mut parsed = httparse::Request::new(&mut slots);
            match parsed.parse(&buf) {
                Ok(httparse::Status::Complete(end)) => {
                    let method = parsed.method.unwrap_or_default().to_string();
                    let target = parsed.path.unwrap_or_default().to_string();
                    let headers: Vec<(String, String)> = parsed
                        .headers
                        .iter()
                        .map(|h| {
                            let value = String::from_utf8_lossy(h.value);
                            (h.name.to_string(), value.trim().to_string())
                        })
                        .collect();
                    break (end, method, target, headers);
                }
                Ok(httparse::Status::Partial) => {}
                Err(httparse::Error::TooManyHeaders) => {
                    return Err(ReadError::Bad(431, "Too many header fields.".into()));
                }
                Err(e) => return Err(ReadError::Bad(400, format!("Malformed request: {e}."))),
            }
            if buf.len() > MAX_HEAD {
                return Err(ReadError::Bad(
                    431,
                    "Request header fields too large.".into(),
                ));
            }
            if self.read_some(stream, &mut buf, deadline)? == 0 {
                return Err(if buf.is_empty() {
                    ReadError::Gone
                } else {
                    ReadError::Bad(400, "Incomplete request head.".into())
                });
            }
        };
        if !target.starts_with('/') {
            return Err(ReadError::Bad(400, "Only origin-form targets.".into()));
        }
        let (path, query) = match target.split_once('?') {
            Some((p, q)) => (p.to_string(), Some(q.to_string())),
            None => (target, None),
        };
        let mut request = Request {
            method,
            path,
            query,
            headers,
            body: Vec::new(),
        };
        if request.header("transfer-encoding").is_some() {
            return Err(ReadError::Bad(411, "Send a Content-Length.".into()));
        }
        let mut length = None;
        for (name, value) in &request.headers {
            if name.eq_ignore_ascii_case("content-length") {
                let n: usize = value
                    .parse()
                    .map_err(|_| ReadError::Bad(400, "Bad Content-Length.".into()))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ReadError::Bad(400, "Conflicting Content-Length.".into()));
                }
                length = Some(n);
            }
        }
        let length = length.unwrap_or(0);
        if length > MAX_BODY {
            return Err(ReadError::Bad(413, "Request body too large.".into()));
        }
        let mut body = buf.split_off(head_end);
        while body.len() < length {
            if self.read_some(stream, &mut body, deadline)? == 0 {
                return Err(ReadError::Bad(400, "Incomplete request body.".into()));
            }
        }
        body.truncate(length);
        request.body = body;
        Ok(request)
    }

    /// One read, retried over the short socket timeout until the deadline or `stop`.
    fn read_some(
        &self,
        stream: &mut TcpStream,
        buf: &mut Vec<u8>,
        deadline: Instant,
    ) -> Result<usize, ReadError> {
        let mut chunk = [0u8; 4096];
        loop {
            match stream.read(&mut chunk) {
                Ok(n) => {
                    buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    if self.stopping() || Instant::now() >= deadline {
                        return Err(ReadError::Gone);
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => return Err(ReadError::Gone),
            }
        }
    }

    fn next_framing(&self) -> Framing {
        let mut state = self.lock();
        let n = state.answers;
        state.answers += 1;
        match self.config.framing {
            Framing::RoundRobin => {
                [Framing::ContentLength, Framing::Chunked, Framing::Close][n % 3]
            }
            framing => framing,
        }
    }

    fn write(&self, stream: &mut TcpStream, response: &Response, truncate: bool) {
        let framing = self.next_framing();
        let mut head = format!(
            "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: jwt-refresh-demo\r\n",
            response.status,
            reason(response.status),
            http_date(self.now())
        );
        for (name, value) in &response.headers {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        let body = match framing {
            Framing::Chunked => {
                head.push_str("Transfer-Encoding: chunked\r\n");
                let mut out = Vec::with_capacity(response.body.len() + 32);
                for chunk in response.body.chunks(CHUNK) {
                    out.extend_from_slice(format!("{:X}\r\n", chunk.len()).as_bytes());
                    out.extend_from_slice(chunk);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(b"0\r\n\r\n");
                out
            }
            Framing::Close => response.body.clone(),
            _ => {
                head.push_str(&format!("Content-Length: {}\r\n", response.body.len()));
                response.body.clone()
            }
        };
        head.push_str("Connection: close\r\n\r\n");
        let mut bytes = head.into_bytes();
        let head_len = bytes.len();
        bytes.extend_from_slice(&body);
        if truncate {
            bytes.truncate(if body.is_empty() {
                head_len / 2
            } else {
                head_len + body.len() / 2
            });
        }
        let _ = stream.write_all(&bytes);
        let _ = stream.flush();
    }

    /// Half-close, then drain what the client still sends (briefly) so that closing does not
    /// reset the connection before the client has read the answer.
    fn finish(&self, mut stream: TcpStream) {
        let _ = stream.shutdown(Shutdown::Write);
        let until = Instant::now() + Duration::from_millis(250);
        let mut sink = [0u8; 1024];
        while Instant::now() < until && !self.stopping() {
            match stream.read(&mut sink) {
                Ok(0) => break,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
    }

    fn oauth_path(&self) -> Option<&str> {
        self.config.oauth2.as_ref().map(|o| o.token_path.as_str())
    }

    /// The event kind of a request, from its method and path alone.
    fn kind_of(&self, request: &Request) -> EventKind {
        let path = request.path.as_str();
        let method = request.method.as_str();
        if self.oauth_path() == Some(path) && method == "POST" {
            let refresh = request.content_type_is("application/x-www-form-urlencoded")
                && parse_form(&request.body)
                    .iter()
                    .any(|(k, v)| k == "grant_type" && v == "refresh_token");
            return if refresh {
                EventKind::Refresh
            } else {
                EventKind::Login
            };
        }
        match (method, path) {
            ("POST", TOKEN_PATH) => EventKind::Login,
            ("POST", REFRESH_PATH) => EventKind::Refresh,
            ("GET", PROTECTED_PATH) => EventKind::Protected,
            _ => EventKind::Other,
        }
    }

    fn route(&self, request: &Request) -> Outcome {
        let path = request.path.as_str();
        let method = request.method.as_str();
        if self.oauth_path() == Some(path) {
            if method != "POST" {
                return Outcome::new(EventKind::Other, not_allowed(method, "POST, OPTIONS"));
            }
            return self.oauth2(request);
        }
        match path {
            TOKEN_PATH | REFRESH_PATH if method != "POST" => {
                Outcome::new(EventKind::Other, not_allowed(method, "POST, OPTIONS"))
            }
            PROTECTED_PATH if method != "GET" => {
                Outcome::new(EventKind::Other, not_allowed(method, "GET, HEAD, OPTIONS"))
            }
            TOKEN_PATH => self.login(request),
            REFRESH_PATH => self.refresh(request),
            PROTECTED_PATH => self.protected(request),
            _ => {
                let slashed = format!("{path}/");
                if [TOKEN_PATH, REFRESH_PATH, PROTECTED_PATH].contains(&slashed.as_str()) {
                    // Django's APPEND_SLASH (CommonMiddleware): a permanent redirect, empty body.
                    let location = match &request.query {
                        Some(q) => format!("{slashed}?{q}"),
                        None => slashed,
                    };
                    let response = Response {
                        status: 301,
                        headers: vec![
                            ("Content-Type", "text/html; charset=utf-8".to_string()),
                            ("Location", location),
                        ],
                        body: Vec::new(),
                    };
                    Outcome::new(EventKind::Other, response)
                } else {
                    Outcome::new(EventKind::Other, Response::detail(404, "Not found."))
                }
            }
        }
    }

    /// `POST /api/token/`.
    fn login(&self, request: &Request) -> Outcome {
        let kind = EventKind::Login;
        let data = match parse_data(request) {
            Ok(data) => data,
            Err(response) => return Outcome::new(kind, response),
        };
        let mut errors = Vec::new();
        let username = char_field(&data, "username", &mut errors);
        let password = char_field(&data, "password", &mut errors);
        let (Some(username), Some(password)) = (username, password) else {
            return Outcome::new(kind, field_errors(&errors));
        };
        if username != self.config.username || password != self.config.password {
            let response =
                Response::detail(401, "No active account found with the given credentials");
            return Outcome::new(kind, response);
        }
        let c = &self.config;
        let (refresh, _) = self.mint("refresh", c.refresh_lifetime, &c.user_id);
        let (access, access_jti) = self.mint("access", c.access_lifetime, &c.user_id);
        let body = format!("{{\"refresh\":\"{refresh}\",\"access\":\"{access}\"}}");
        let mut outcome = Outcome::new(kind, Response::json(200, body));
        outcome.issued_jti = Some(access_jti);
        outcome
    }

    /// Checks a refresh token and, with rotation, consumes it: `(access, access jti, new
    /// refresh)`, or the problem.
    fn use_refresh(
        &self,
        checked: &Checked,
    ) -> Result<(String, String, Option<String>), &'static str> {
        if let Some(problem) = checked.problem {
            return Err(problem.message());
        }
        let Some(claims) = &checked.claims else {
            return Err(Problem::Invalid.message());
        };
        let c = &self.config;
        {
            // Check and blacklist under one lock: of two concurrent uses, only one wins.
            let mut state = self.lock();
            if c.blacklist && state.blacklist.contains(&claims.jti) {
                return Err("Token is blacklisted");
            }
            if c.rotate && c.blacklist {
                state.blacklist.insert(claims.jti.clone());
            }
        }
        let user_id = value_as_string(&claims.user_id);
        let (access, access_jti) = self.mint("access", c.access_lifetime, &user_id);
        let refresh = c
            .rotate
            .then(|| self.mint("refresh", c.refresh_lifetime, &user_id).0);
        Ok((access, access_jti, refresh))
    }

    /// `POST /api/token/refresh/`.
    fn refresh(&self, request: &Request) -> Outcome {
        let kind = EventKind::Refresh;
        let data = match parse_data(request) {
            Ok(data) => data,
            Err(response) => return Outcome::new(kind, response),
        };
        let mut errors = Vec::new();
        let Some(token) = char_field(&data, "refresh", &mut errors) else {
            return Outcome::new(kind, field_errors(&errors));
        };
        let checked = self.check(&token, "refresh");
        match self.use_refresh(&checked) {
            Err(message) => {
                let body = format!(
                    "{{\"detail\":{},\"code\":\"token_not_valid\"}}",
                    json_str(message)
                );
                Outcome::new(kind, Response::json(401, body)).presented(&checked)
            }
            Ok((access, access_jti, refresh)) => {
                let body = match refresh {
                    Some(r) => format!("{{\"access\":\"{access}\",\"refresh\":\"{r}\"}}"),
                    None => format!("{{\"access\":\"{access}\"}}"),
                };
                let mut outcome = Outcome::new(kind, Response::json(200, body)).presented(&checked);
                outcome.issued_jti = Some(access_jti);
                outcome
            }
        }
    }

    /// `GET /api/protected/` behind SimpleJWT's `JWTAuthentication`.
    fn protected(&self, request: &Request) -> Outcome {
        let kind = EventKind::Protected;
        let not_provided = || {
            let response = Response::detail(401, "Authentication credentials were not provided.");
            Outcome::new(kind, response)
        };
        let Some(header) = request.header("authorization") else {
            return not_provided();
        };
        let parts: Vec<&str> = header.split_whitespace().collect();
        if parts.first() != Some(&"Bearer") {
            return not_provided();
        }
        if parts.len() != 2 {
            let body = "{\"detail\":\"Authorization header must contain two space-delimited \
                        values\",\"code\":\"bad_authorization_header\"}";
            return Outcome::new(kind, Response::json(401, body));
        }
        let checked = self.check(parts[1], "access");
        if let Some(problem) = checked.problem {
            let body = format!(
                "{{\"detail\":\"Given token not valid for any token type\",\"code\":\
                 \"token_not_valid\",\"messages\":[{{\"token_class\":\"AccessToken\",\
                 \"token_type\":\"access\",\"message\":{}}}]}}",
                json_str(problem.message())
            );
            return Outcome::new(kind, Response::json(401, body)).presented(&checked);
        }
        let user_id = checked
            .claims
            .as_ref()
            .map(|c| value_as_string(&c.user_id))
            .unwrap_or_default();
        let body = format!("{{\"ok\":true,\"user_id\":{}}}", json_str(&user_id));
        Outcome::new(kind, Response::json(200, body)).presented(&checked)
    }

    /// The OAuth 2.0 token endpoint (RFC 6749 sections 2.3.1, 4.4, 5 and 6).
    fn oauth2(&self, request: &Request) -> Outcome {
        let Some(config) = &self.config.oauth2 else {
            return Outcome::new(EventKind::Other, Response::detail(404, "Not found."));
        };
        let kind = self.kind_of(request);
        let error = |status: u16, code: &str, description: &str| {
            let body = format!(
                "{{\"error\":{},\"error_description\":{}}}",
                json_str(code),
                json_str(description)
            );
            let mut response = Response::json(status, body)
                .with("Cache-Control", "no-store")
                .with("Pragma", "no-cache");
            if status == 401 {
                response = response.with("WWW-Authenticate", "Basic realm=\"oauth\"");
            }
            Outcome::new(kind, response)
        };
        if !request.content_type_is("application/x-www-form-urlencoded") {
            return error(
                400,
                "invalid_request",
                "the body must be application/x-www-form-urlencoded",
            );
        }
        let form = parse_form(&request.body);
        let mut params: HashMap<&str, &str> = HashMap::new();
        for (name, value) in &form {
            if params.insert(name, value).is_some() {
                return error(400, "invalid_request", "a parameter was repeated");
            }
        }
        // Client authentication: HTTP Basic with form-encoded id and secret, or the body.
        let basic = request.header("authorization").and_then(|h| {
            let (scheme, creds) = h.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("basic").then(|| creds.trim())
        });
        let client = match basic {
            Some(encoded) => {
                if params.contains_key("client_secret") {
                    return error(
                        400,
                        "invalid_request",
                        "more than one client authentication method",
                    );
                }
                base64_decode(encoded)
                    .and_then(|raw| String::from_utf8(raw).ok())
                    .and_then(|text| {
                        let (id, secret) = text.split_once(':')?;
                        Some((form_decode(id), form_decode(secret)))
                    })
            }
            None => params.get("client_id").map(|id| {
                (
                    id.to_string(),
                    params.get("client_secret").unwrap_or(&"").to_string(),
                )
            }),
        };
        match client {
            Some((id, secret)) if id == config.client_id && secret == config.client_secret => {}
            _ => return error(401, "invalid_client", "client authentication failed"),
        }
        let c = &self.config;
        let scope = params.get("scope").map(|s| s.to_string());
        let (access, access_jti, refresh, checked) = match params.get("grant_type").copied() {
            None => return error(400, "invalid_request", "grant_type is missing"),
            Some("refresh_token") => {
                let Some(token) = params.get("refresh_token") else {
                    return error(400, "invalid_request", "refresh_token is missing");
                };
                let checked = self.check(token, "refresh");
                match self.use_refresh(&checked) {
                    Ok((access, jti, refresh)) => (access, jti, refresh, Some(checked)),
                    Err(message) => {
                        return error(400, "invalid_grant", message).presented(&checked);
                    }
                }
            }
            Some("client_credentials") => {
                let (access, jti) = self.mint("access", c.access_lifetime, &c.user_id);
                let refresh = config
                    .refresh_on_client_credentials
                    .then(|| self.mint("refresh", c.refresh_lifetime, &c.user_id).0);
                (access, jti, refresh, None)
            }
            Some(_) => return error(400, "unsupported_grant_type", "unsupported grant_type"),
        };
        let mut body = format!(
            "{{\"access_token\":\"{access}\",\"token_type\":\"Bearer\",\"expires_in\":{}",
            c.access_lifetime.as_secs()
        );
        if let Some(refresh) = refresh {
            body.push_str(&format!(",\"refresh_token\":\"{refresh}\""));
        }
        if let Some(scope) = scope {
            body.push_str(&format!(",\"scope\":{}", json_str(&scope)));
        }
        body.push('}');
        let response = Response::json(200, body)
            .with("Cache-Control", "no-store")
            .with("Pragma", "no-cache");
        let mut outcome = Outcome::new(kind, response);
        if let Some(checked) = &checked {
            outcome = outcome.presented(checked);
        }
        outcome.issued_jti = Some(access_jti);
        outcome
    }
}

// ---------------------------------------------------------------------------------------------
// Helpers

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into())
}

fn value_as_string(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn not_allowed(method: &str, allow: &str) -> Response {
    Response::detail(405, &format!("Method \"{method}\" not allowed.")).with("Allow", allow)
}

/// The request's data as DRF's parsers see it: JSON (the default) or a form.
fn parse_data(request: &Request) -> Result<Map<String, Value>, Response> {
    if request.content_type_is("application/x-www-form-urlencoded") {
        return Ok(parse_form(&request.body)
            .into_iter()
            .map(|(k, v)| (k, Value::String(v)))
            .collect());
    }
    if request.body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(&request.body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => {
            let got = match other {
                Value::Array(_) => "list",
                Value::String(_) => "str",
                Value::Number(n) if n.is_f64() => "float",
                Value::Number(_) => "int",
                Value::Bool(_) => "bool",
                _ => "NoneType",
            };
            let body = format!(
                "{{\"non_field_errors\":[\"Invalid data. Expected a dictionary, but got {got}.\"]}}"
            );
            Err(Response::json(400, body))
        }
        Err(e) => Err(Response::detail(400, &format!("JSON parse error - {e}"))),
    }
}

/// A DRF `CharField`: its value, or an error pushed to `errors`.
fn char_field(
    data: &Map<String, Value>,
    name: &'static str,
    errors: &mut Vec<(&'static str, &'static str)>,
) -> Option<String> {
    let result = match data.get(name) {
        None => Err("This field is required."),
        Some(Value::Null) => Err("This field may not be null."),
        Some(Value::String(s)) if s.is_empty() => Err("This field may not be blank."),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) => Ok(n.to_string()),
        Some(_) => Err("Not a valid string."),
    };
    result.map_err(|e| errors.push((name, e))).ok()
}

fn field_errors(errors: &[(&str, &str)]) -> Response {
    let fields: Vec<String> = errors
        .iter()
        .map(|(name, message)| format!("{}:[{}]", json_str(name), json_str(message)))
        .collect();
    Response::json(400, format!("{{{}}}", fields.join(",")))
}

/// `application/x-www-form-urlencoded` pairs, decoded.
fn parse_form(body: &[u8]) -> Vec<(String, String)> {
    let text = String::from_utf8_lossy(body);
    text.split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (form_decode(k), form_decode(v))
        })
        .collect()
}

/// `+` is a space, `%XX` a byte; anything malformed is kept as it is.
fn form_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len()
                && bytes[i + 1].is_ascii_hexdigit()
                && bytes[i + 2].is_ascii_hexdigit() =>
            {
                let hex = [bytes[i + 1], bytes[i + 2]];
                let hex = std::str::from_utf8(&hex).unwrap_or("00");
                out.push(u8::from_str_radix(hex, 16).unwrap_or(0));
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Standard base64, padding optional; `None` on a bad character.
fn base64_decode(s: &str) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(s.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for c in s.bytes().filter(|&c| c != b'=') {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

/// RFC 9110 IMF-fixdate, e.g. `Sun, 06 Nov 1994 08:49:37 GMT`.
fn http_date(now: f64) -> String {
    let secs = now.max(0.0) as i64;
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    const WEEKDAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    format!(
        "{}, {:02} {} {} {:02}:{:02}:{:02} GMT",
        WEEKDAYS[days.rem_euclid(7) as usize],
        day,
        MONTHS[(month - 1) as usize],
        year,
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        411 => "Length Required",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "Unknown",
    }
}
