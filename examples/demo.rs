//! The main job, with nothing to set up: a local SimpleJWT-compatible server (2-second access
//! tokens, rotation and blacklisting on) on 127.0.0.1, and the real blocking `Client` talking
//! to it over TCP through a dozen requests across several expiries, one token-endpoint outage
//! included. Prints what the session decided and what the server saw.
//!
//! ```text
//! cargo run --example demo
//! ```

#[path = "support/server.rs"]
mod server;
#[path = "std_http/transport.rs"]
mod transport;

use std::process::ExitCode;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use embedded_hal::delay::DelayNs;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::transport::{Endpoint, ErrorType, Response};
use jwt_refresh::{
    Client, Error, NoStore, Protocol, RefreshPolicy, Request, Session, SystemClock, Transport,
};
use server::{EventKind, Fault, FaultAction, Framing, Server, ServerConfig};
use transport::{BaseUrl, HttpError, StdHttp};

const REQUESTS: u32 = 12;
const INTERVAL: StdDuration = StdDuration::from_millis(400);

/// Prints a timeline line for every exchange the client makes.
struct Narrated {
    inner: StdHttp,
    start: StdInstant,
    login_path: &'static str,
}

impl ErrorType for Narrated {
    type Error = HttpError;
}

impl Transport for Narrated {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, HttpError> {
        let decided = match request.endpoint {
            Endpoint::Api => "send with the current token",
            Endpoint::Auth if request.path == self.login_path => "log in",
            Endpoint::Auth => "refresh (rotating the refresh token)",
        };
        let at = self.start.elapsed().as_secs_f64();
        let result = self.inner.send(request, body);
        let outcome = match &result {
            Ok(r) => r.status.to_string(),
            Err(e) => format!("error: {e}"),
        };
        println!(
            "{at:7.3}s  {:<4} {:<20} {:<38} {outcome}",
            request.method.as_str(),
            request.path,
            decided
        );
        result
    }
}

/// Sleeps for real, and says so.
struct NarratedDelay {
    start: StdInstant,
}

impl DelayNs for NarratedDelay {
    fn delay_ns(&mut self, ns: u32) {
        std::thread::sleep(StdDuration::from_nanos(u64::from(ns)));
    }

    fn delay_ms(&mut self, ms: u32) {
        println!(
            "{:7.3}s  (the token endpoint is failing and the token expired: back off {ms} ms)",
            self.start.elapsed().as_secs_f64()
        );
        std::thread::sleep(StdDuration::from_millis(u64::from(ms)));
    }
}

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo: {e}");
            ExitCode::from(1)
        }
    }
}

fn run() -> Result<bool, String> {
    let config = ServerConfig {
        access_lifetime: StdDuration::from_secs(2),
        framing: Framing::RoundRobin,
        // The third refresh meets an outage: 503 with Retry-After: 1.
        faults: vec![Fault::on_path(
            server::REFRESH_PATH,
            3,
            FaultAction::Unavailable {
                retry_after_secs: 1,
            },
        )],
        ..ServerConfig::default()
    };
    let (username, password) = (config.username.clone(), config.password.clone());
    let mut server = Server::start(config).map_err(|e| format!("cannot start the server: {e}"))?;
    let url = BaseUrl::parse(&server.url()).map_err(|e| e.to_string())?;
    println!(
        "jwt-refresh demo: a SimpleJWT-compatible server at {} (2 s access tokens, rotation and",
        server.url()
    );
    println!("blacklisting on, Content-Length / chunked / close framing in turn, an outage at the 3rd refresh)\n");
    println!("   time  request                   what the session decided               status");

    let start = StdInstant::now();
    let protocol = Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: &username,
            password: &password,
        }),
        ..SimpleJwt::default()
    });
    let session: Session<'_> = Session::new(protocol, RefreshPolicy::default());
    let transport = Narrated {
        inner: StdHttp::new(url.clone(), url),
        start,
        login_path: server::TOKEN_PATH,
    };
    let delay = NarratedDelay { start };
    let mut scratch = [0u8; 1024];
    let mut client = Client::new(
        session,
        transport,
        SystemClock::new(),
        delay,
        NoStore,
        &mut scratch,
    );
    let mut body = [0u8; 2048];
    let mut ok = 0;
    for i in 0..REQUESTS {
        if i > 0 {
            std::thread::sleep(INTERVAL);
        }
        match client.send(&Request::get(server::PROTECTED_PATH), &mut body) {
            Ok(r) if r.is_success() => ok += 1,
            Ok(r) => println!("         request {i} answered {}", r.status),
            Err(Error::RetryLater { last }) => {
                println!("         request {i}: retry later ({last:?})")
            }
            Err(e) => println!("         request {i} failed: {e}"),
        }
    }
    let elapsed = start.elapsed();
    let stats = client.session().stats();
    drop(client);
    server.stop();

    let events = server.events();
    let expired_sent = events
        .iter()
        .filter(|e| e.kind == EventKind::Protected && e.presented_expired)
        .count();
    let rejected = events
        .iter()
        .filter(|e| e.kind == EventKind::Protected && e.status != 200)
        .count();
    println!(
        "\nsummary: {REQUESTS} requests in {:.1} s: {ok} answered 200",
        elapsed.as_secs_f64()
    );
    println!(
        "  session: {} login, {} refreshes, {} failed refresh (an outage), {} backoff sleep ({} ms), {} API requests, {} answered 401",
        stats.logins,
        stats.refreshes,
        stats.failures,
        stats.sleeps,
        stats.slept_ms,
        stats.api_requests,
        stats.unauthorized
    );
    println!(
        "  server:  {} token-endpoint requests, {} API requests, {} sent with an expired token, {} rejected",
        server.count(EventKind::Login) + server.count(EventKind::Refresh),
        server.count(EventKind::Protected),
        expired_sent,
        rejected
    );
    println!("  (claims are read only to schedule refreshes: the server verified every signature)");
    Ok(ok == REQUESTS && expired_sent == 0)
}
