//! The transport mock: [`MockTransport`] plays a list of [`Transaction`]s in order, checking
//! each request against its expectations, on `embedded-hal-mock`'s generic expectation mock.
//! It also records every request it was sent ([`SentRequest`]).

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use embedded_hal_mock::common::Generic;

use super::redact;
use super::store::MemStore;
use crate::protocol::{Endpoint, Method, Request};
use crate::time::Duration;
use crate::transport::{BearerError, ErrorKind, ErrorType, Response, Transport};

/// What a [`Transaction`] answers.
#[derive(Clone, PartialEq)]
enum Answer {
    Http {
        status: u16,
        body: Vec<u8>,
        retry_after: Option<u64>,
        www_authenticate: Option<String>,
    },
    /// Writes `written` (what fits) into the body buffer, then fails with the kind.
    Fail(ErrorKind, Vec<u8>),
}

/// One expected request and its answer, in `embedded-hal-mock`'s style.
///
/// A transaction expects only what you ask for: the constructors set the endpoint, method and
/// path (or nothing, [`Transaction::any`]), and [`bearer`](Transaction::bearer),
/// [`authorization`](Transaction::authorization), [`body`](Transaction::body) and
/// [`store_holds`](Transaction::store_holds) add expectations. It answers `200` with an empty
/// body unless told otherwise ([`respond`](Transaction::respond), [`fail`](Transaction::fail)).
///
/// `Debug` shows no secret: `Authorization` values, bodies and tokens are redacted.
#[derive(Clone, PartialEq)]
pub struct Transaction {
    endpoint: Option<Endpoint>,
    method: Option<Method>,
    path: Option<String>,
    /// `Some(None)`: expects no `Authorization` header.
    authorization: Option<Option<String>>,
    body: Option<Vec<u8>>,
    /// The store must hold this refresh token (or none) when the request is sent.
    stored: Option<(MemStore, Option<String>)>,
    answer: Answer,
}

impl Transaction {
    fn expecting(endpoint: Option<Endpoint>, method: Option<Method>, path: Option<&str>) -> Self {
        Transaction {
            endpoint,
            method,
            path: path.map(str::to_owned),
            authorization: None,
            body: None,
            stored: None,
            answer: Answer::Http {
                status: 200,
                body: Vec::new(),
                retry_after: None,
                www_authenticate: None,
            },
        }
    }

    /// Expects any request at all.
    pub fn any() -> Self {
        Transaction::expecting(None, None, None)
    }

    /// Expects `method path` on `endpoint`.
    pub fn request(endpoint: Endpoint, method: Method, path: &str) -> Self {
        Transaction::expecting(Some(endpoint), Some(method), Some(path))
    }

    /// Expects `GET path` on the API.
    pub fn get(path: &str) -> Self {
        Transaction::request(Endpoint::Api, Method::Get, path)
    }

    /// Expects `POST path` on the API.
    pub fn post(path: &str) -> Self {
        Transaction::request(Endpoint::Api, Method::Post, path)
    }

    /// Expects `POST path` on the token endpoint (a refresh or a login).
    pub fn token(path: &str) -> Self {
        Transaction::request(Endpoint::Auth, Method::Post, path)
    }

    /// Expects the request on `endpoint`.
    pub fn endpoint(mut self, endpoint: Endpoint) -> Self {
        self.endpoint = Some(endpoint);
        self
    }

    /// Expects the method `method`.
    pub fn method(mut self, method: Method) -> Self {
        self.method = Some(method);
        self
    }

    /// Expects the path `path`.
    pub fn path(mut self, path: &str) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// Expects `Authorization: Bearer {access_token}`.
    pub fn bearer(self, access_token: &str) -> Self {
        self.authorization(Some(&format!("Bearer {access_token}")))
    }

    /// Expects this `Authorization` value, or (`None`) no `Authorization` header.
    pub fn authorization(mut self, value: Option<&str>) -> Self {
        self.authorization = Some(value.map(str::to_owned));
        self
    }

    /// Expects exactly this body.
    pub fn body(mut self, body: impl AsRef<[u8]>) -> Self {
        self.body = Some(body.as_ref().to_vec());
        self
    }

    /// Expects `store` to hold `refresh_token` (`None`: no token) when the request is sent:
    /// for example that a rotated refresh token was saved before the new access token is used.
    pub fn store_holds(mut self, store: &MemStore, refresh_token: Option<&str>) -> Self {
        self.stored = Some((store.clone(), refresh_token.map(str::to_owned)));
        self
    }

    /// Answers with `status` and `body`, keeping any `Retry-After` or `WWW-Authenticate` set.
    pub fn respond(mut self, status: u16, body: impl AsRef<[u8]>) -> Self {
        let (retry_after, www_authenticate) = match self.answer {
            Answer::Http {
                retry_after,
                www_authenticate,
                ..
            } => (retry_after, www_authenticate),
            Answer::Fail(..) => (None, None),
        };
        self.answer = Answer::Http {
            status,
            body: body.as_ref().to_vec(),
            retry_after,
            www_authenticate,
        };
        self
    }

    /// Adds `Retry-After: {secs}` to the answer.
    pub fn retry_after(mut self, secs: u64) -> Self {
        if let Answer::Http { retry_after, .. } = &mut self.answer {
            *retry_after = Some(secs);
        }
        self
    }

    /// Adds `WWW-Authenticate: {value}` to the answer, for example
    /// `Bearer error="invalid_token"`.
    pub fn www_authenticate(mut self, value: &str) -> Self {
        if let Answer::Http {
            www_authenticate, ..
        } = &mut self.answer
        {
            *www_authenticate = Some(value.to_owned());
        }
        self
    }

    /// Fails in the transport with `kind` instead of answering.
    pub fn fail(mut self, kind: ErrorKind) -> Self {
        self.answer = Answer::Fail(kind, Vec::new());
        self
    }

    /// Writes `partial` into the body buffer (what fits), then fails with `kind`: a connection
    /// that broke, or timed out, after part of the answer arrived. For checking what your code
    /// (and the crate) leave in the buffer then.
    ///
    /// ```
    /// use jwt_refresh::mock::Transaction;
    /// use jwt_refresh::transport::ErrorKind;
    ///
    /// let cut = Transaction::any().fail_after(r#"{"access":"eyJ"#, ErrorKind::TimedOut);
    /// # let _ = cut;
    /// ```
    pub fn fail_after(mut self, partial: impl AsRef<[u8]>, kind: ErrorKind) -> Self {
        self.answer = Answer::Fail(kind, partial.as_ref().to_vec());
        self
    }

    /// The expected request, redacted, `*` for what is not checked.
    fn expected_request(&self) -> String {
        let mut text = format!(
            "{} {} {}, Authorization: {}, body {}",
            self.method.map_or("*", Method::as_str),
            self.endpoint.map_or("*", endpoint_name),
            self.path.as_deref().unwrap_or("*"),
            self.authorization
                .as_ref()
                .map_or_else(|| "*".into(), |a| redact::authorization(a.as_deref())),
            self.body
                .as_deref()
                .map_or_else(|| "*".into(), redact::body),
        );
        if let Some((_, token)) = &self.stored {
            text.push_str(&format!(", store holds {}", stored(token.as_deref())));
        }
        text
    }

    /// One line per expectation that `sent` does not meet.
    fn mismatches(&self, sent: &SentRequest) -> Vec<String> {
        let mut lines = Vec::new();
        if let Some(endpoint) = self.endpoint.filter(|&e| e != sent.endpoint) {
            lines.push(format!(
                "endpoint: expected {}, got {}",
                endpoint_name(endpoint),
                endpoint_name(sent.endpoint)
            ));
        }
        if let Some(method) = self.method.filter(|&m| m != sent.method) {
            lines.push(format!(
                "method: expected {}, got {}",
                method.as_str(),
                sent.method.as_str()
            ));
        }
        if let Some(path) = self.path.as_ref().filter(|&p| *p != sent.path) {
            lines.push(format!("path: expected {path:?}, got {:?}", sent.path));
        }
        if let Some(want) = self
            .authorization
            .as_ref()
            .filter(|&a| *a != sent.authorization)
        {
            let mut line = format!(
                "Authorization: expected {}, got {}",
                redact::authorization(want.as_deref()),
                redact::authorization(sent.authorization.as_deref())
            );
            if let (Some(want), Some(got)) = (want, &sent.authorization) {
                line.push(' ');
                line.push_str(&redact::first_difference(want.as_bytes(), got.as_bytes()));
            }
            lines.push(line);
        }
        if let Some(want) = self.body.as_ref().filter(|&b| *b != sent.body) {
            lines.push(format!(
                "body: expected {}, got {} {}",
                redact::body(want),
                redact::body(&sent.body),
                redact::first_difference(want, &sent.body)
            ));
        }
        if let Some((store, want)) = &self.stored {
            let held = store.token();
            if held != *want {
                let mut line = format!(
                    "stored refresh token: expected {}, the store holds {}",
                    stored(want.as_deref()),
                    stored(held.as_deref())
                );
                if let (Some(want), Some(held)) = (want, &held) {
                    line.push(' ');
                    line.push_str(&redact::first_difference(want.as_bytes(), held.as_bytes()));
                }
                lines.push(line);
            }
        }
        lines
    }

    /// The answer, redacted.
    fn answer_text(&self) -> String {
        match &self.answer {
            Answer::Fail(kind, written) if written.is_empty() => format!("fails with {kind:?}"),
            Answer::Fail(kind, written) => {
                format!("fails with {kind:?} after {} body bytes", written.len())
            }
            Answer::Http {
                status,
                body,
                retry_after,
                www_authenticate,
            } => {
                let mut text = format!("answers {status}, body {}", redact::body(body));
                if let Some(secs) = retry_after {
                    text.push_str(&format!(", Retry-After: {secs}"));
                }
                if let Some(value) = www_authenticate {
                    text.push_str(&format!(", WWW-Authenticate: {value}"));
                }
                text
            }
        }
    }
}

impl fmt::Debug for Transaction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Transaction")
            .field("expects", &self.expected_request())
            .field("then", &self.answer_text())
            .finish()
    }
}

fn endpoint_name(endpoint: Endpoint) -> &'static str {
    match endpoint {
        Endpoint::Api => "api",
        Endpoint::Auth => "auth",
    }
}

fn stored(token: Option<&str>) -> String {
    token.map_or_else(|| "(none)".into(), |t| redact::marker(t.len()))
}

/// A request the [`MockTransport`] was sent, owned. `Debug` and `Display` redact the
/// `Authorization` value and the body; the fields hold them as sent, for assertions.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SentRequest {
    /// The method.
    pub method: Method,
    /// Which server.
    pub endpoint: Endpoint,
    /// The path.
    pub path: String,
    /// The `Content-Type`, if any.
    pub content_type: Option<String>,
    /// The `Authorization` value, if any.
    pub authorization: Option<String>,
    /// The body.
    pub body: Vec<u8>,
}

impl SentRequest {
    fn of(request: &Request<'_>) -> Self {
        SentRequest {
            method: request.method,
            endpoint: request.endpoint,
            path: request.path.to_owned(),
            content_type: request.content_type.map(str::to_owned),
            authorization: request.authorization.map(str::to_owned),
            body: request.body.to_vec(),
        }
    }

    /// The body as text (lossily, for assertions).
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl fmt::Display for SentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {} {}, Authorization: {}, body {}",
            self.method.as_str(),
            endpoint_name(self.endpoint),
            self.path,
            redact::authorization(self.authorization.as_deref()),
            redact::body(&self.body)
        )
    }
}

impl fmt::Debug for SentRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SentRequest({self})")
    }
}

#[derive(Default)]
struct Shared {
    /// How many transactions were given, over all `update_expectations`.
    given: usize,
    sent: Vec<SentRequest>,
    /// Every mismatch and unexpected request, as its panic message.
    failures: Vec<String>,
}

/// A [`Transport`] and [`AsyncTransport`](crate::AsyncTransport) that plays a list of
/// [`Transaction`]s in order, like an `embedded-hal-mock` mock: clones share the expectations,
/// so the test keeps one handle, gives a clone to the client, and calls
/// [`done`](MockTransport::done) at the end.
///
/// A request that does not meet the next transaction's expectations, or that comes when none is
/// left, panics at once with the expected and the actual request (secrets redacted), and is
/// remembered, so that `done()` fails too if that panic was caught. `done()` panics when
/// transactions remain. As with `embedded-hal-mock`, a mock dropped without `done()` panics.
///
/// The expectation queue, its order, `done()`'s bookkeeping (called twice, never called) are
/// `embedded_hal_mock::common::Generic`'s. Matching and messages are the kit's own: `Generic`'s
/// users compare whole transactions with `assert_eq!`, whose message would print the tokens.
///
/// ```
/// use jwt_refresh::mock::{MockTransport, Transaction};
/// use jwt_refresh::transport::{ErrorKind, Request, Transport};
///
/// let mut mock = MockTransport::new(&[
///     Transaction::get("/api/data/").bearer("a-1").respond(200, "[1,2]"),
///     Transaction::get("/api/data/").fail(ErrorKind::TimedOut),
/// ]);
/// let mut transport = mock.clone(); // what your code gets
/// let mut body = [0u8; 64];
/// let request = Request { authorization: Some("Bearer a-1"), ..Request::get("/api/data/") };
/// let response = transport.send(&request, &mut body).unwrap();
/// assert_eq!((response.status, &body[..response.body_len]), (200, &b"[1,2]"[..]));
/// assert_eq!(transport.send(&request, &mut body), Err(ErrorKind::TimedOut));
/// assert_eq!(mock.requests().len(), 2);
/// mock.done();
/// ```
///
/// A request that differs panics, naming the field, without showing the token:
///
/// ```should_panic
/// # use jwt_refresh::mock::{MockTransport, Transaction};
/// # use jwt_refresh::transport::{Request, Transport};
/// let mut transport = MockTransport::new(&[Transaction::get("/api/data/").bearer("a-2")]);
/// let request = Request { authorization: Some("Bearer a-1"), ..Request::get("/api/data/") };
/// // Authorization: expected Bearer <redacted 3 bytes>, got Bearer <redacted 3 bytes> (...)
/// transport.send(&request, &mut [0u8; 16]).unwrap();
/// ```
#[derive(Clone)]
pub struct MockTransport {
    expected: Generic<Transaction>,
    shared: Arc<Mutex<Shared>>,
}

impl fmt::Debug for MockTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shared = self.shared();
        f.debug_struct("MockTransport")
            .field("given", &shared.given)
            .field("sent", &shared.sent.len())
            .field("failures", &shared.failures.len())
            .finish_non_exhaustive()
    }
}

impl MockTransport {
    /// A mock expecting `transactions`, in order.
    pub fn new<'a>(transactions: impl IntoIterator<Item = &'a Transaction>) -> Self {
        let transactions: Vec<&Transaction> = transactions.into_iter().collect();
        let shared = Shared {
            given: transactions.len(),
            ..Shared::default()
        };
        MockTransport {
            expected: Generic::new(transactions),
            shared: Arc::new(Mutex::new(shared)),
        }
    }

    fn shared(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks that every transaction so far was used, as [`done`](MockTransport::done) does,
    /// then expects `transactions` (for the next phase of a test, such as after a reboot).
    #[track_caller]
    pub fn update_expectations<'a>(
        &mut self,
        transactions: impl IntoIterator<Item = &'a Transaction>,
    ) {
        self.check("update_expectations");
        let transactions: Vec<&Transaction> = transactions.into_iter().collect();
        self.shared().given += transactions.len();
        self.expected.update_expectations(transactions);
    }

    /// Asserts that every transaction was used and every request was expected; panics
    /// otherwise, listing what was left (and what went wrong), secrets redacted.
    #[track_caller]
    pub fn done(&mut self) {
        self.check("done");
        // `Generic`'s own check (its queue is empty now) and its record that `done` was called.
        self.expected.done();
    }

    /// Empties the queue, and panics if anything was left or went wrong.
    #[track_caller]
    fn check(&mut self, from: &str) {
        let remaining: Vec<Transaction> = self.expected.by_ref().collect();
        let (message, failed) = {
            let shared = self.shared();
            let used = shared.given.saturating_sub(remaining.len());
            let mut message = String::new();
            if !remaining.is_empty() {
                message.push_str(&format!(
                    "jwt-refresh mock transport: {} of {} transactions were not used at `{from}()`:\n",
                    remaining.len(),
                    shared.given
                ));
                for (i, t) in remaining.iter().enumerate() {
                    message.push_str(&format!(
                        "  transaction {}: expected {}; {}\n",
                        used.saturating_add(i).saturating_add(1),
                        t.expected_request(),
                        t.answer_text()
                    ));
                }
                message.push_str(&format!("  requests sent: {}\n", shared.sent.len()));
                for (i, sent) in shared.sent.iter().enumerate() {
                    message.push_str(&format!("    {}: {sent}\n", i.saturating_add(1)));
                }
            }
            for failure in &shared.failures {
                message.push_str(failure);
                message.push('\n');
            }
            (
                message,
                !remaining.is_empty() || !shared.failures.is_empty(),
            )
        };
        if failed {
            // Marks `done` as called, so that dropping the mock does not add its own panic.
            self.expected.done();
            panic!("{message}");
        }
    }

    /// Every request sent so far, oldest first.
    pub fn requests(&self) -> Vec<SentRequest> {
        self.shared().sent.clone()
    }

    /// Plays the next transaction for `request`.
    fn exchange(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        let sent = SentRequest::of(request);
        let n = {
            let mut shared = self.shared();
            shared.sent.push(sent.clone());
            shared.sent.len()
        };
        let Some(transaction) = self.expected.next() else {
            let given = self.shared().given;
            self.fail(format!(
                "jwt-refresh mock transport: request {n} was not expected (all {given} \
                 transactions were used)\n  actual:   {sent}"
            ));
        };
        let mismatches = transaction.mismatches(&sent);
        if !mismatches.is_empty() {
            self.fail(format!(
                "jwt-refresh mock transport: request {n} does not match transaction {n}:\n  {}\n  \
                 expected: {}\n  actual:   {sent}",
                mismatches.join("\n  "),
                transaction.expected_request()
            ));
        }
        // What fits is written first, as a real transport does before it fails.
        let mut write = |bytes: &[u8]| {
            let n = bytes.len().min(body.len());
            if let (Some(dst), Some(src)) = (body.get_mut(..n), bytes.get(..n)) {
                dst.copy_from_slice(src);
            }
            n == bytes.len()
        };
        match transaction.answer {
            Answer::Fail(kind, written) => {
                write(&written);
                Err(kind)
            }
            Answer::Http {
                status,
                body: answer,
                retry_after,
                www_authenticate,
            } => {
                if !write(&answer) {
                    return Err(ErrorKind::BufferTooSmall);
                }
                let mut response = Response::new(status, answer.len());
                response.retry_after = retry_after.map(Duration::from_secs);
                response.bearer_error = www_authenticate.as_deref().and_then(BearerError::parse);
                Ok(response)
            }
        }
    }

    /// Remembers a failure for `done()`, then panics with it.
    fn fail(&self, message: String) -> ! {
        self.shared().failures.push(message.clone());
        panic!("{message}");
    }
}

impl ErrorType for MockTransport {
    type Error = ErrorKind;
}

impl Transport for MockTransport {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}

impl crate::transport::AsyncTransport for MockTransport {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, ErrorKind> {
        self.exchange(request, body)
    }
}
