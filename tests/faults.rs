//! The fault matrix: the blocking client, its real HTTP transport (`examples/std_http`) and the
//! local SimpleJWT server (`examples/support/server.rs`: real HS256 tokens, rotation and
//! blacklisting, expiry checked against the server's clock), with faults injected between them
//! by `tests/support/faults.rs`: at the message level ([`FaultInjector`] around the transport)
//! and at the byte level ([`FaultProxy`], a TCP proxy), or by the server's own scripted faults.
//!
//! Every case runs the same driver program over real TCP and real time (about 4 s; the cases
//! run in parallel) and is checked for:
//! - its expected outcome: `ok` (the fault is invisible), `retry` (a failed refresh retried
//!   after a backoff), `401 -> refresh -> retry`, `login` (the server no longer accepts the
//!   refresh token, so the client logs in again), and typed errors returned on the way;
//! - no request sent with an expired access token, from the server's log (`presented_expired`);
//! - no good refresh token lost: every re-login follows a refresh the server rejected with
//!   `token_not_valid`, and at the end the refresh token in the client's store is accepted by
//!   the server after a restart (a new session restored from the store refreshes).
//!
//! `cargo test --test faults -- --nocapture` prints the table.

#[path = "support/faults.rs"]
mod faults;
#[path = "../examples/support/server.rs"]
mod server;
#[path = "../examples/std_http/transport.rs"]
mod transport;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration as StdDuration;

use faults::{ByteFault, Fault, FaultInjector, FaultProxy, Rule, When};
use jwt_refresh::mock::MemStore;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::transport::{Endpoint, ErrorKind, Request};
use jwt_refresh::{
    Client, ClientConfig, EndpointError, Error, Protocol, RefreshError, RefreshPolicy, Session,
    StdDelay, SystemClock, TokenError,
};
use server::{
    EventKind, Fault as ServerFault, FaultAction, Framing, Server, ServerConfig, PROTECTED_PATH,
    REFRESH_PATH, TOKEN_PATH,
};
use transport::{BaseUrl, StdHttp};

const API: Request<'static> = Request::get(PROTECTED_PATH);
const AUTH_PATHS: [&str; 2] = [TOKEN_PATH, REFRESH_PATH];

// ---------------------------------------------------------------------------------------------
// The matrix
// ---------------------------------------------------------------------------------------------

/// Where the fault is injected.
enum Inject {
    /// Around the HTTP transport.
    Message(Vec<Rule>),
    /// In a TCP proxy between the transport and the server.
    Bytes(When, ByteFault),
    /// By the server itself.
    Server(Vec<ServerFault>),
}

/// A step of the driver program.
#[derive(Clone, Copy, Debug)]
enum Step {
    Send,
    Sleep(u64),
    /// Ends the outage of the case's `While` rule.
    EndOutage,
}

use Step::{EndOutage, Send, Sleep};

/// With 3-second tokens the session uses a token for 2 s from its request and refreshes it
/// after 1 s (no jitter): the second send refreshes, the third finds the first token expired.
const PROGRAM: &[Step] = &[
    Send,
    Send,
    Sleep(1300),
    Send,
    Sleep(1300),
    Send,
    Sleep(1300),
    Send,
];

struct Case {
    name: &'static str,
    /// The fault, as the table shows it (where it is injected is added).
    what: String,
    inject: Inject,
    expected: &'static str,
    /// Requests sent with an expired access token that the case expects (a known limitation).
    expired_sends: usize,
    program: &'static [Step],
    server: ServerConfig,
    /// The HTTP transport's read timeout.
    timeout: StdDuration,
    max_wait: StdDuration,
    /// The client trusts the system's wall clock.
    wall_clock: bool,
    /// The flag of a `When::While` outage, for `Step::EndOutage`.
    outage: Option<Arc<AtomicBool>>,
    /// The session's policy.
    policy: RefreshPolicy,
    /// Before the restart, the store's token gets a trailing newline (`echo TOKEN > file`).
    newline_in_store: bool,
    /// Start the program just after a wall-clock second begins, so that whole-second claims
    /// and wall-clock readings fall in known seconds.
    align_to_second: bool,
}

fn case(name: &'static str, inject: Inject, expected: &'static str) -> Case {
    let what = match &inject {
        Inject::Message(rules) => rules
            .iter()
            .map(|r| format!("{}: {}", r.when, r.fault))
            .collect::<Vec<_>>()
            .join("; "),
        Inject::Bytes(when, fault) => format!("{when}: {fault}"),
        Inject::Server(faults) => faults
            .iter()
            .map(|f| format!("{}: {}", describe_when(&f.when), describe_action(&f.action)))
            .collect::<Vec<_>>()
            .join("; "),
    };
    Case {
        name,
        what,
        inject,
        expected,
        expired_sends: 0,
        program: PROGRAM,
        server: ServerConfig {
            access_lifetime: StdDuration::from_secs(3),
            ..ServerConfig::default()
        },
        timeout: StdDuration::from_secs(5),
        max_wait: StdDuration::from_secs(10),
        wall_clock: false,
        outage: None,
        policy: policy(),
        newline_in_store: false,
        align_to_second: false,
    }
}

fn describe_when(when: &server::FaultWhen) -> String {
    match when {
        server::FaultWhen::Request(n) => format!("request {n}"),
        server::FaultWhen::OnPath { path, nth } => format!("{} {path}", faults::ordinal(*nth)),
        server::FaultWhen::EveryOnPath(path) => format!("every {path}"),
    }
}

fn describe_action(action: &FaultAction) -> String {
    match action {
        FaultAction::Unavailable { retry_after_secs } => {
            format!("503 with Retry-After: {retry_after_secs}")
        }
        FaultAction::Status { status, .. } => format!("status {status}"),
        FaultAction::TruncatedBody => "acted on, then half the body and close".into(),
        FaultAction::CloseWithoutAnswer => "closed without an answer".into(),
        FaultAction::Delay(d) => format!(
            "acted on after {} ms (client read timeout 700 ms)",
            d.as_millis()
        ),
    }
}

impl Inject {
    fn layer(&self) -> &'static str {
        match self {
            Inject::Message(_) => "transport",
            Inject::Bytes(..) => "TCP proxy",
            Inject::Server(_) => "server",
        }
    }
}

fn first_refresh(fault: Fault) -> Inject {
    Inject::Message(vec![Rule::new(When::NthOnPath(REFRESH_PATH, 1), fault)])
}

fn outage() -> Arc<AtomicBool> {
    Arc::new(AtomicBool::new(true))
}

fn matrix() -> Vec<Case> {
    let unavailable_html = "<html><body><h1>502 Bad Gateway</h1></body></html>";
    let portal = "<!DOCTYPE html><html><body>Sign in to the Wi-Fi</body></html>";
    let not_valid =
        r#"{"detail":"Given token not valid for any token type","code":"token_not_valid"}"#;
    let outage_flag = outage();
    // A configuration-class answer is retried after half to all of `backoff_max`: 2 to 4 s
    // here. The refresh at 1.1 s fails; at 2.4 s the token has expired and the failure is
    // reported; at 5.4 s the session has refreshed again by itself.
    let forged = |name, status, body| {
        let mut c = case(
            name,
            first_refresh(Fault::Answer {
                status,
                body,
                retry_after: None,
            }),
            if status == 404 {
                "Fatal(Configuration(Configuration { status: 404, code: None })) -> retry"
            } else {
                "Fatal(Configuration(Configuration { status: 401, code: None })) -> retry"
            },
        );
        c.policy.backoff_max = jwt_refresh::Duration::from_secs(4);
        c.program = &[
            Send,
            Sleep(1100),
            Send,
            Sleep(1300),
            Send,
            Sleep(3000),
            Send,
        ];
        c
    };
    let mut cases = vec![
        case(
            "refresh-dropped",
            first_refresh(Fault::Drop(ErrorKind::TimedOut)),
            "retry",
        ),
        case(
            "refresh-answer-lost",
            first_refresh(Fault::LoseAnswer(ErrorKind::Other)),
            "login",
        ),
        case(
            "refresh-answer-delayed-past-expiry",
            first_refresh(Fault::Delay(StdDuration::from_millis(2500))),
            "ok",
        ),
        {
            let mut c = case(
                "refresh-timeout-then-retry",
                Inject::Server(vec![ServerFault::on_path(
                    REFRESH_PATH,
                    1,
                    FaultAction::Delay(StdDuration::from_secs(3)),
                )]),
                "retry",
            );
            c.timeout = StdDuration::from_millis(700);
            c
        },
        case(
            "refresh-503-retry-after",
            Inject::Server(vec![ServerFault::on_path(
                REFRESH_PATH,
                1,
                FaultAction::Unavailable {
                    retry_after_secs: 1,
                },
            )]),
            "retry",
        ),
        case(
            "refresh-502-html-from-proxy",
            first_refresh(Fault::Answer {
                status: 502,
                body: unavailable_html,
                retry_after: None,
            }),
            "retry",
        ),
        case(
            "refresh-captive-portal-200",
            first_refresh(Fault::Answer {
                status: 200,
                body: portal,
                retry_after: None,
            }),
            "retry",
        ),
        case(
            "refresh-truncated-content-length",
            Inject::Server(vec![ServerFault::on_path(
                REFRESH_PATH,
                1,
                FaultAction::TruncatedBody,
            )]),
            "login",
        ),
        {
            let mut c = case(
                "refresh-truncated-close-delimited",
                Inject::Server(vec![ServerFault::on_path(
                    REFRESH_PATH,
                    1,
                    FaultAction::TruncatedBody,
                )]),
                "login",
            );
            c.server.framing = Framing::Close;
            c.what.push_str(" (close-delimited bodies)");
            c
        },
        case(
            "refresh-truncated-taken-as-complete",
            first_refresh(Fault::Truncate(150)),
            "login",
        ),
        case(
            "refresh-reset-mid-answer",
            first_refresh(Fault::FailMidAnswer(40)),
            "login",
        ),
        case(
            "refresh-tcp-cut-mid-head",
            Inject::Bytes(When::NthOnPath(REFRESH_PATH, 1), ByteFault::CutAfter(60)),
            "login",
        ),
        case(
            "refresh-answer-too-large",
            first_refresh(Fault::TooLarge),
            "AnswerTooLarge(BufferTooSmall) -> login",
        ),
        case(
            "one-byte-reads",
            Inject::Bytes(When::Every(Endpoint::Api), ByteFault::OneByteSegments),
            "ok",
        ),
        {
            let mut c = case(
                "one-byte-reads-every-framing",
                Inject::Bytes(When::Every(Endpoint::Auth), ByteFault::OneByteSegments),
                "ok",
            );
            c.server.framing = Framing::RoundRobin;
            c.what.push_str(" (Content-Length, chunked, close in turn)");
            c
        },
        case(
            "duplicated-answer-bytes",
            Inject::Bytes(When::NthOnPath(REFRESH_PATH, 1), ByteFault::Duplicate),
            "ok",
        ),
        case(
            "refresh-answer-escaped-member-names",
            Inject::Message(vec![
                Rule::new(
                    When::NthOnPath(REFRESH_PATH, 1),
                    Fault::Rewrite {
                        from: "\"refresh\":",
                        to: "\"refr\\u0065sh\":",
                    },
                ),
                Rule::new(
                    When::NthOnPath(REFRESH_PATH, 2),
                    Fault::Rewrite {
                        from: "\"access\":",
                        to: "\"\\u0061ccess\":",
                    },
                ),
            ]),
            "ok",
        ),
        case(
            "refresh-answers-reordered",
            first_refresh(Fault::HoldForNext),
            "retry",
        ),
        {
            // A caching proxy replays the login's answer to the refresh: the session would take
            // the old token for a fresh one and count its life again from the new request. The
            // trusted wall clock caps its lease at `exp - wall`, so it is never sent expired:
            // the next send refreshes instead (it was one expired send and a 401 before).
            let mut c = case(
                "refresh-stale-answer-replayed",
                first_refresh(Fault::ReplayPrevious),
                "ok",
            );
            c.server.access_lifetime = StdDuration::from_secs(5);
            // Login at x.05 s (token dies at x+5 s), the replayed answer at x+3.3 s: the wall
            // clock leaves 2 s, so the lease is 1 s (one lower would be unschedulable, a retry).
            c.program = &[Send, Send, Sleep(3200), Send, Sleep(2000), Send];
            c.wall_clock = true;
            c.align_to_second = true;
            c.what.push_str(" (5 s tokens, trusted wall clock)");
            c
        },
        forged("refresh-forged-404-page", 404, portal),
        forged(
            "refresh-forged-401-without-code",
            401,
            r#"{"detail":"Authentication credentials were not provided."}"#,
        ),
        case(
            "refresh-access-token-unusable-rotation-kept",
            first_refresh(Fault::Rewrite {
                from: "\"access\":\"",
                to: "\"access\":\"\\u0001",
            }),
            "retry",
        ),
        {
            let mut c = case(
                "restart-token-with-a-newline",
                first_refresh(Fault::Delay(StdDuration::ZERO)),
                "ok",
            );
            c.newline_in_store = true;
            c.what
                .push_str("; the stored token gets a trailing newline before the restart");
            c
        },
        case(
            "api-answer-lost",
            Inject::Message(vec![Rule::new(
                When::Nth(Endpoint::Api, 3),
                Fault::LoseAnswer(ErrorKind::Other),
            )]),
            "Transport(Other) -> ok",
        ),
        case(
            "api-401-on-used-token",
            Inject::Message(vec![Rule::new(
                When::Nth(Endpoint::Api, 2),
                Fault::Answer {
                    status: 401,
                    body: not_valid,
                    retry_after: None,
                },
            )]),
            "401 -> refresh -> retry",
        ),
        case(
            "api-401-on-fresh-token",
            Inject::Message(vec![Rule::new(
                When::Nth(Endpoint::Api, 1),
                Fault::Answer {
                    status: 401,
                    body: not_valid,
                    retry_after: None,
                },
            )]),
            "Unauthorized(401) -> ok",
        ),
        {
            let mut c = case(
                "refresh-outage-longer-than-max-wait",
                Inject::Message(vec![Rule::new(
                    When::While(Arc::clone(&outage_flag), REFRESH_PATH),
                    Fault::Answer {
                        status: 503,
                        body: "",
                        retry_after: None,
                    },
                )]),
                "RetryLater(503) -> retry",
            );
            c.max_wait = StdDuration::from_millis(1500);
            c.program = &[
                Send,
                Send,
                Sleep(1300),
                Send,
                Sleep(1300),
                Send,
                EndOutage,
                Sleep(4500),
                Send,
            ];
            c.what.push_str(" (max_wait 1.5 s, then the outage ends)");
            c
        },
    ];
    for c in &mut cases {
        if let Inject::Message(rules) = &c.inject {
            if rules.iter().any(|r| matches!(r.when, When::While(..))) {
                c.outage = Some(Arc::clone(&outage_flag));
            }
        }
    }
    cases
}

// ---------------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------------

fn protocol(with_login: bool) -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: with_login.then_some(Credentials {
            username: "device",
            password: "device-password",
        }),
        ..SimpleJwt::default()
    })
}

fn policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        seed: 0xfa17,
        ..RefreshPolicy::default()
    }
}

/// What a case did.
#[derive(Debug)]
struct Observed {
    /// Each send's status, or its error.
    sends: Vec<Result<u16, String>>,
    logins: usize,
    refreshes: usize,
    refreshes_rejected: usize,
    api_401: usize,
    /// API requests whose token the server found expired on arrival.
    expired_sends: usize,
    /// Logins not preceded by a refresh the server rejected.
    needless_logins: usize,
    /// Refresh or login failures the session counted.
    failures: u32,
    /// The stored refresh token works after a restart.
    restart_ok: bool,
    /// What the injector or proxy did.
    injected: usize,
    /// Secrets found in the scratch or body buffer after a driver call.
    traces: Vec<String>,
}

impl Observed {
    /// `errors -> recovery`, the form of `Case::expected`.
    fn outcome(&self) -> String {
        let mut errors: Vec<&str> = Vec::new();
        for e in self.sends.iter().filter_map(|s| s.as_ref().err()) {
            if errors.last() != Some(&e.as_str()) {
                errors.push(e);
            }
        }
        let recovery = if self.logins > 1 {
            "login"
        } else if self.api_401 > 0 && self.sends.iter().any(|s| s.is_ok()) && errors.is_empty() {
            "401 -> refresh -> retry"
        } else if self.failures > 0 {
            "retry"
        } else {
            "ok"
        };
        let mut out = if errors.is_empty() {
            recovery.to_owned()
        } else {
            format!("{} -> {recovery}", errors.join(", "))
        };
        if self.sends.last().is_some_and(|s| s.is_err()) {
            out.push_str(" (not recovered)");
        }
        out
    }
}

fn error_name<T: jwt_refresh::transport::Error, S>(e: &Error<faults::FaultError<T>, S>) -> String {
    match e {
        Error::Transport(t) => {
            use jwt_refresh::transport::Error as _;
            format!("Transport({:?})", t.kind())
        }
        Error::RetryLater {
            last: Some(RefreshError::Endpoint(EndpointError::Unavailable { status, .. })),
        } => format!("RetryLater({status})"),
        Error::RetryLater { last } => format!("RetryLater({last:?})"),
        Error::LoginRequired(reason) => format!("LoginRequired({reason:?})"),
        Error::Unauthorized(r) => format!("Unauthorized({})", r.status),
        Error::Fatal(e) => format!("Fatal({e:?})"),
        Error::AnswerTooLarge(t) => {
            use jwt_refresh::transport::Error as _;
            format!("AnswerTooLarge({:?})", t.kind())
        }
        Error::Store(_) => "Store".into(),
        _ => "other".into(),
    }
}

fn run(case: &Case) -> Observed {
    let mut server_config = case.server.clone();
    if let Inject::Server(faults) = &case.inject {
        server_config.faults = faults.clone();
    }
    let server = Server::start(server_config).expect("start the server");
    let proxy = match &case.inject {
        Inject::Bytes(when, fault) => Some(
            FaultProxy::start(server.addr(), when.clone(), *fault, &AUTH_PATHS).expect("proxy"),
        ),
        _ => None,
    };
    let url = proxy.as_ref().map_or_else(|| server.url(), FaultProxy::url);
    let base = BaseUrl::parse(&url).expect("URL");
    let mut http = StdHttp::new(base.clone(), base);
    http.timeout = case.timeout;
    let rules = match &case.inject {
        Inject::Message(rules) => rules.clone(),
        _ => Vec::new(),
    };
    let injector = FaultInjector::new(http, rules);
    let log = Arc::clone(&injector.log);
    let store = MemStore::default();
    let clock = if case.wall_clock {
        SystemClock::new()
    } else {
        SystemClock::monotonic_only()
    };
    let mut scratch = [0u8; 1024];
    let session: Session<'static, 1024, 1024> = Session::new(protocol(true), case.policy);
    let mut client = Client::new(
        session,
        injector,
        clock,
        StdDelay,
        store.clone(),
        &mut scratch,
    )
    .with_config(ClientConfig {
        max_wait: jwt_refresh::Duration::from_millis(case.max_wait.as_millis() as u64),
    });
    let mut body = [0u8; 4096];
    let mut sends = Vec::new();
    let mut traces = Vec::new();
    if case.align_to_second {
        let since_epoch = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970");
        let into_second = u64::from(since_epoch.subsec_millis());
        thread::sleep(StdDuration::from_millis(1000 - into_second + 50));
    }
    for step in case.program {
        match step {
            Send => {
                sends.push(
                    client
                        .send(&API, &mut body)
                        .map(|r| r.status)
                        .map_err(|e| error_name(&e)),
                );
                traces.extend(secret_traces("body", &body));
            }
            Sleep(ms) => thread::sleep(StdDuration::from_millis(*ms)),
            EndOutage => {
                if let Some(flag) = &case.outage {
                    flag.store(false, Ordering::SeqCst);
                }
            }
        }
    }
    let failures = client.session().stats().failures;
    drop(client);
    traces.extend(secret_traces("scratch", &scratch));
    if case.newline_in_store {
        let corrupted = store.token().map(|token| token + "\n");
        store.set_token(corrupted.as_deref());
    }

    // A restart: a session that cannot log in, restored from the store, must be able to refresh.
    let restart_ok = {
        let base = BaseUrl::parse(&server.url()).expect("URL");
        let http = StdHttp::new(base.clone(), base);
        let mut scratch = [0u8; 1024];
        let session: Session<'static, 1024, 1024> = Session::new(protocol(false), policy());
        let mut client = Client::new(
            session,
            http,
            SystemClock::monotonic_only(),
            StdDelay,
            store.clone(),
            &mut scratch,
        );
        let restored = client.restore().unwrap_or(false);
        let mut body = [0u8; 4096];
        let ok = restored
            && client.send(&API, &mut body).is_ok_and(|r| r.status == 200)
            && client.session().stats().refreshes == 1;
        drop(client);
        traces.extend(secret_traces("restart scratch", &scratch));
        ok
    };

    let events = server.events();
    let restart_events = 2; // the restart's refresh and API request
    let events = &events[..events.len().saturating_sub(restart_events)];
    let mut needless_logins = 0;
    let mut rejected_since_login = false;
    let mut logins = 0;
    for e in events {
        match (e.kind, e.status) {
            (EventKind::Login, 200) => {
                logins += 1;
                if logins > 1 && !rejected_since_login {
                    needless_logins += 1;
                }
                rejected_since_login = false;
            }
            (EventKind::Refresh, 401) => rejected_since_login = true,
            _ => {}
        }
    }
    let count = |kind: EventKind, status: u16| {
        events
            .iter()
            .filter(|e| e.kind == kind && e.status == status)
            .count()
    };
    // 401s the injector made up (the server never saw those requests).
    let api_401_injected = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.endpoint == Endpoint::Api && s.fault.is_some() && s.delivered == Ok(401))
        .count();
    let injected = log
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.fault.is_some())
        .count()
        + proxy.as_ref().map_or(0, |p| *p.hits.lock().unwrap())
        + events.iter().filter(|e| e.faulted).count();
    Observed {
        sends,
        logins,
        refreshes: count(EventKind::Refresh, 200),
        refreshes_rejected: count(EventKind::Refresh, 401),
        api_401: api_401_injected + count(EventKind::Protected, 401),
        expired_sends: events
            .iter()
            .filter(|e| e.kind == EventKind::Protected && e.presented_expired)
            .count(),
        needless_logins,
        failures,
        restart_ok,
        injected,
        traces,
    }
}

/// What in `buf` looks like a secret the client handled: a JWT (every token this server
/// issues starts with the base64url of `{"`), or the password.
fn secret_traces(what: &str, buf: &[u8]) -> Vec<String> {
    ["eyJ", "device-password"]
        .into_iter()
        .filter(|needle| buf.windows(needle.len()).any(|w| w == needle.as_bytes()))
        .map(|needle| format!("{what} holds {needle:?}"))
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The tests
// ---------------------------------------------------------------------------------------------

#[test]
fn fault_matrix() {
    let cases = matrix();
    assert!(cases.len() >= 15, "at least 15 named faults");
    let mut names: Vec<&str> = cases.iter().map(|c| c.name).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), cases.len(), "names are unique");

    // Each case takes a few seconds of real time, mostly asleep: run them side by side.
    let observed: Vec<Observed> = thread::scope(|s| {
        let handles: Vec<_> = cases.iter().map(|c| s.spawn(move || run(c))).collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("case panicked"))
            .collect()
    });

    println!();
    println!(
        "| # | name | layer | fault | expected | observed | expired sends | needless logins | \
         restart from store | server: logins, refreshes (rejected), API 401s |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut failures = Vec::new();
    for (i, (c, o)) in cases.iter().zip(&observed).enumerate() {
        let outcome = o.outcome();
        println!(
            "| {} | {} | {} | {} | {} | {} | {}{} | {} | {} | {}, {} ({}), {} |",
            i + 1,
            c.name,
            c.inject.layer(),
            c.what,
            c.expected,
            outcome,
            o.expired_sends,
            if c.expired_sends > 0 {
                " (limitation)"
            } else {
                ""
            },
            o.needless_logins,
            if o.restart_ok { "ok" } else { "FAILED" },
            o.logins,
            o.refreshes,
            o.refreshes_rejected,
            o.api_401,
        );
        let mut wrong = Vec::new();
        if outcome != c.expected {
            wrong.push(format!("outcome {outcome:?}, expected {:?}", c.expected));
        }
        if o.expired_sends != c.expired_sends {
            wrong.push(format!(
                "{} requests with an expired token",
                o.expired_sends
            ));
        }
        if o.needless_logins > 0 {
            wrong.push(format!(
                "{} logins with a good refresh token",
                o.needless_logins
            ));
        }
        if !o.restart_ok {
            wrong.push("the stored refresh token does not work after a restart".into());
        }
        if o.injected == 0 {
            wrong.push("the fault never fired".into());
        }
        wrong.extend(o.traces.iter().cloned());
        if !wrong.is_empty() {
            failures.push(format!("{}: {} ({o:?})", c.name, wrong.join("; ")));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// Regressions over real TCP
// ---------------------------------------------------------------------------------------------

/// A token whose `exp - iat` is 1 s was scheduled for 500 ms from its request ("one second off,
/// keeping at least half"), but the server floors `iat`: issued at x.9 s it dies at x+1 s, and
/// the client sent it expired (3 of 143 requests in 4 s, before 4b00ea3). Now such a token
/// cannot be scheduled: a typed "retry later", never an expired request, never a login loop.
#[test]
fn one_second_tokens_are_refused_never_sent_expired() {
    let server = Server::start(ServerConfig {
        access_lifetime: StdDuration::from_secs(1),
        ..ServerConfig::default()
    })
    .expect("server");
    let base = BaseUrl::parse(&server.url()).expect("URL");
    let mut scratch = [0u8; 1024];
    let session: Session<'static, 1024, 1024> = Session::new(protocol(true), policy());
    let mut client = Client::new(
        session,
        StdHttp::new(base.clone(), base),
        SystemClock::monotonic_only(),
        StdDelay,
        MemStore::default(),
        &mut scratch,
    )
    .with_config(ClientConfig {
        max_wait: jwt_refresh::Duration::from_millis(1500),
    });
    let mut body = [0u8; 4096];
    let mut sends = Vec::new();
    for _ in 0..3 {
        sends.push(client.send(&API, &mut body).map(|r| r.status));
    }
    drop(client);
    for send in &sends {
        assert!(
            matches!(
                send,
                Err(Error::RetryLater {
                    last: Some(RefreshError::Refused(TokenError::Unschedulable(_)))
                })
            ),
            "{send:?}"
        );
    }
    let events = server.events();
    let api = events
        .iter()
        .filter(|e| e.kind == EventKind::Protected)
        .count();
    assert_eq!(api, 0, "a 1-second token was sent");
    // Each send tries at most twice (backoff 1 s, then 1-2 s, against a 1.5 s wait): bounded.
    let logins = events.iter().filter(|e| e.kind == EventKind::Login).count();
    assert!((1..=6).contains(&logins), "{logins} logins");
}
