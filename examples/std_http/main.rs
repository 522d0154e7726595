//! A command-line client over `std::net`: keeps a session with a SimpleJWT or OAuth 2.0 server
//! and sends authenticated requests, one JSON line per request on stdout.
//!
//! ```text
//! cargo run --example std_http -- [--protocol simplejwt|oauth2] --api URL [--auth URL]
//!     [--login-path P] [--refresh-path P] [--username U --password P]
//!     [--client-id ID [--client-secret S] [--basic-auth]] [--access-token T --refresh-token R]
//!     [--store FILE] [--path P] [--requests N] [--interval-ms M] [--seed N]
//!     [--transport std|ureq] [--concurrency N]
//! ```
//!
//! `--transport ureq` sends through the crate's `UreqTransport` (build with `--features ureq`)
//! instead of this example's own `TcpStream` transport. `--concurrency N` runs N threads, each
//! sending `--requests` requests `--interval-ms` apart through one `SharedClient`; the summary
//! line then counts all threads' requests, and `refreshes` and `logins` are the shared
//! session's.
//!
//! Exit status: 0 when every request got a 2xx answer, 1 otherwise, 2 on a usage error.

mod transport;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration as StdDuration;

use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::{ClientAuth, Credentials, OAuth2, OAuth2Login, SimpleJwt};
use jwt_refresh::shared::{SharedClient, StdRawMutex};
#[cfg(feature = "ureq")]
use jwt_refresh::ureq::UreqTransport;
use jwt_refresh::{
    Client, Clock, Error, FileStore, Instant, Protocol, RefreshPolicy, Request, Response, Session,
    Stats, StdDelay, SystemClock, Transport,
};
use transport::{BaseUrl, StdHttp};

const USAGE: &str = "usage: std_http [--protocol simplejwt|oauth2] --api URL [--auth URL]
    [--login-path P] [--refresh-path P] [--username U --password P]
    [--client-id ID [--client-secret S] [--basic-auth]] [--access-token T --refresh-token R]
    [--store FILE] [--path P] [--requests N] [--interval-ms M] [--seed N]
    [--transport std|ureq] [--concurrency N]";

#[derive(Debug, Default)]
struct Args {
    oauth2: bool,
    api: String,
    auth: Option<String>,
    login_path: Option<String>,
    refresh_path: Option<String>,
    username: Option<String>,
    password: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    basic_auth: bool,
    access_token: Option<String>,
    refresh_token: Option<String>,
    store: Option<PathBuf>,
    path: String,
    requests: u32,
    interval_ms: u64,
    seed: Option<u64>,
    ureq: bool,
    concurrency: u32,
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        path: "/api/protected/".into(),
        requests: 10,
        interval_ms: 1000,
        concurrency: 1,
        ..Args::default()
    };
    let mut api = None;
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--protocol" => match value()?.as_str() {
                "simplejwt" => args.oauth2 = false,
                "oauth2" => args.oauth2 = true,
                other => return Err(format!("unknown protocol {other}")),
            },
            "--api" => api = Some(value()?),
            "--auth" => args.auth = Some(value()?),
            "--login-path" => args.login_path = Some(value()?),
            "--refresh-path" => args.refresh_path = Some(value()?),
            "--username" => args.username = Some(value()?),
            "--password" => args.password = Some(value()?),
            "--client-id" => args.client_id = Some(value()?),
            "--client-secret" => args.client_secret = Some(value()?),
            "--basic-auth" => args.basic_auth = true,
            "--access-token" => args.access_token = Some(value()?),
            "--refresh-token" => args.refresh_token = Some(value()?),
            "--store" => args.store = Some(value()?.into()),
            "--path" => args.path = value()?,
            "--requests" => {
                args.requests = value()?.parse().map_err(|_| "--requests takes a number")?
            }
            "--interval-ms" => {
                args.interval_ms = value()?
                    .parse()
                    .map_err(|_| "--interval-ms takes a number")?
            }
            "--seed" => args.seed = Some(value()?.parse().map_err(|_| "--seed takes a number")?),
            "--transport" => match value()?.as_str() {
                "std" => args.ureq = false,
                "ureq" => args.ureq = true,
                other => return Err(format!("unknown transport {other}")),
            },
            "--concurrency" => {
                args.concurrency = value()?
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or("--concurrency takes a number of threads, 1 or more")?
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    args.api = api.ok_or("--api is required")?;
    if args.username.is_some() != args.password.is_some() {
        return Err("--username and --password go together".into());
    }
    if args.access_token.is_some() && args.refresh_token.is_none() {
        return Err("--access-token needs --refresh-token".into());
    }
    if (args.client_secret.is_some() || args.basic_auth) && args.client_id.is_none() {
        return Err("--client-secret and --basic-auth need --client-id".into());
    }
    if args.oauth2 {
        if let (Some(login), Some(refresh)) = (&args.login_path, &args.refresh_path) {
            if login != refresh {
                return Err(
                    "OAuth 2.0 has one token endpoint: --login-path and --refresh-path must agree"
                        .into(),
                );
            }
        }
        if args.username.is_some() {
            return Err(
                "--username/--password are for simplejwt; OAuth 2.0 logs in with --client-id"
                    .into(),
            );
        }
    }
    Ok(args)
}

/// A file store, or none (`TokenStore` is implemented for `Option`).
type Store = Option<FileStore>;

fn main() -> ExitCode {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(args) => args,
        Err(message) => {
            if message.is_empty() {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            }
            eprintln!("std_http: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let (api, auth) = match (
        BaseUrl::parse(&args.api),
        BaseUrl::parse(args.auth.as_deref().unwrap_or(&args.api)),
    ) {
        (Ok(api), Ok(auth)) => (api, auth),
        (Err(e), _) | (_, Err(e)) => {
            eprintln!("std_http: {e}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&args, api, auth) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(message) => {
            eprintln!("std_http: {message}");
            ExitCode::from(1)
        }
    }
}

fn run(args: &Args, api: BaseUrl, auth: BaseUrl) -> Result<bool, String> {
    let protocol = if args.oauth2 {
        let token_path = args
            .refresh_path
            .as_deref()
            .or(args.login_path.as_deref())
            .unwrap_or("/token");
        Protocol::OAuth2(OAuth2 {
            token_path,
            client_id: args.client_id.as_deref(),
            client_secret: args.client_secret.as_deref(),
            client_auth: if args.basic_auth {
                ClientAuth::Basic
            } else {
                ClientAuth::Body
            },
            scope: None,
            login: if args.client_id.is_some() {
                OAuth2Login::ClientCredentials
            } else {
                OAuth2Login::None
            },
        })
    } else {
        let defaults = SimpleJwt::default();
        Protocol::SimpleJwt(SimpleJwt {
            refresh_path: args
                .refresh_path
                .as_deref()
                .unwrap_or(defaults.refresh_path),
            login_path: args.login_path.as_deref().unwrap_or(defaults.login_path),
            credentials: args
                .username
                .as_deref()
                .zip(args.password.as_deref())
                .map(|(username, password)| Credentials { username, password }),
        })
    };
    let mut policy = RefreshPolicy::default();
    if let Some(seed) = args.seed {
        policy.seed = seed;
    }
    let clock = SystemClock::new();
    let mut session: Session<'_> = Session::new(protocol, policy);
    if let (Some(access), Some(refresh)) = (&args.access_token, &args.refresh_token) {
        let facts = TokenFacts {
            wall_now: clock.unix_time(),
            ..TokenFacts::default()
        };
        session
            .set_tokens(clock.now(), clock.now(), access, Some(refresh), facts)
            .map_err(|e| format!("--access-token/--refresh-token: {e}"))?;
    } else if let Some(refresh) = &args.refresh_token {
        session
            .set_refresh_token(clock.now(), refresh, clock.unix_time())
            .map_err(|e| format!("--refresh-token: {e}"))?;
    }
    let store: Store = args.store.as_ref().map(FileStore::new);
    let provisioned = args.access_token.is_some() || args.refresh_token.is_some();
    if args.ureq {
        #[cfg(feature = "ureq")]
        {
            let auth_base = args.auth.as_deref().unwrap_or(&args.api);
            let ureq = UreqTransport::new(&args.api, auth_base).map_err(|e| e.to_string())?;
            return drive(args, session, clock, store, provisioned, || ureq.clone());
        }
        #[cfg(not(feature = "ureq"))]
        return Err("--transport ureq needs the ureq feature: \
             cargo run --features ureq --example std_http -- ..."
            .into());
    }
    drive(args, session, clock, store, provisioned, || {
        StdHttp::new(api.clone(), auth.clone())
    })
}

/// Counts of answers, over every thread.
#[derive(Default)]
struct Totals {
    ok: u32,
    unauthorized: u32,
    errors: u32,
}

impl Totals {
    /// Counts one request's result, logs it on stderr and prints its JSON line.
    fn record<E: std::fmt::Debug, S: std::fmt::Debug>(
        &mut self,
        i: u32,
        result: &Result<Response, Error<E, S>>,
        before: Stats,
        stats: Stats,
        now: Instant,
    ) {
        let did = match (
            stats.logins - before.logins,
            stats.refreshes - before.refreshes,
        ) {
            (0, 0) => String::new(),
            (l, r) => format!(" (after {l} login(s), {r} refresh(es))"),
        };
        let status = match result {
            Ok(response) => {
                if response.is_success() {
                    self.ok += 1;
                } else if response.status == 401 {
                    self.unauthorized += 1;
                } else {
                    self.errors += 1;
                }
                eprintln!("[{now}] request {i}: {}{did}", response.status);
                response.status.to_string()
            }
            Err(e) => {
                if let Error::Unauthorized(_) = e {
                    self.unauthorized += 1;
                } else {
                    self.errors += 1;
                }
                eprintln!("[{now}] request {i}: {e}{did}");
                match e {
                    Error::Unauthorized(r) => r.status.to_string(),
                    _ => "null".into(),
                }
            }
        };
        println!(
            r#"{{"i":{i},"status":{status},"refreshes":{},"logins":{}}}"#,
            stats.refreshes, stats.logins
        );
    }

    /// Prints the summary line; whether every request got a 2xx answer.
    fn summary(&self, requests: u32, stats: Stats) -> bool {
        println!(
            r#"{{"summary":{{"requests":{requests},"ok":{},"unauthorized":{},"errors":{},"refreshes":{},"logins":{}}}}}"#,
            self.ok, self.unauthorized, self.errors, stats.refreshes, stats.logins
        );
        self.ok == requests
    }
}

/// Reports what `restore` found in the store.
fn restored<E: std::fmt::Display>(result: Result<bool, E>, now: Instant) -> Result<(), String> {
    match result {
        Ok(true) => eprintln!("[{now}] loaded the refresh token from the store"),
        Ok(false) => {}
        Err(e) => return Err(format!("store: {e}")),
    }
    Ok(())
}

/// Sends the requests through one `Client`, or through one `SharedClient` from
/// `--concurrency` threads, each with a transport from `transport`.
fn drive<T>(
    args: &Args,
    session: Session<'_>,
    clock: SystemClock,
    store: Store,
    provisioned: bool,
    transport: impl Fn() -> T + Sync,
) -> Result<bool, String>
where
    T: Transport,
    T::Error: Send,
{
    let request = Request::get(&args.path);
    let interval = StdDuration::from_millis(args.interval_ms);
    if args.concurrency > 1 {
        return drive_shared(args, session, clock, store, provisioned, transport);
    }
    let mut scratch = [0u8; 4096];
    let mut client = Client::new(session, transport(), clock, StdDelay, store, &mut scratch);
    if !provisioned {
        restored(client.restore(), client.clock().now())?;
    }

    let mut body = vec![0u8; 64 * 1024];
    let mut totals = Totals::default();
    for i in 0..args.requests {
        if i > 0 {
            std::thread::sleep(interval);
        }
        let before = client.session().stats();
        let result = client.send(&request, &mut body);
        let stats = client.session().stats();
        totals.record(i, &result, before, stats, client.clock().now());
        if let Some(e) = client.take_store_error() {
            eprintln!(
                "[{}] warning: the refresh token was not saved: {e}",
                client.clock().now()
            );
        }
    }
    Ok(totals.summary(args.requests, client.session().stats()))
}

/// `--concurrency N`: N threads share one session through a `SharedClient`.
fn drive_shared<T>(
    args: &Args,
    session: Session<'_>,
    clock: SystemClock,
    store: Store,
    provisioned: bool,
    transport: impl Fn() -> T + Sync,
) -> Result<bool, String>
where
    T: Transport,
    T::Error: Send,
{
    let request = Request::get(&args.path);
    let interval = StdDuration::from_millis(args.interval_ms);
    let client: SharedClient<'_, StdRawMutex, SystemClock, Store> =
        SharedClient::new(session, clock, store);
    if !provisioned {
        restored(client.restore(&mut [0u8; 4096]), client.clock().now())?;
    }
    let totals = Mutex::new(Totals::default());
    let next = AtomicU32::new(0);
    std::thread::scope(|s| {
        for _ in 0..args.concurrency {
            s.spawn(|| {
                let mut transport = transport();
                let (mut scratch, mut body) = (vec![0u8; 4096], vec![0u8; 64 * 1024]);
                for n in 0..args.requests {
                    if n > 0 {
                        std::thread::sleep(interval);
                    }
                    let before = client.stats();
                    let result = client.send(
                        &mut transport,
                        &mut StdDelay,
                        &request,
                        &mut scratch,
                        &mut body,
                    );
                    let stats = client.stats();
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let now = client.clock().now();
                    let mut totals = totals.lock().unwrap_or_else(PoisonError::into_inner);
                    totals.record(i, &result, before, stats, now);
                    if let Some(e) = client.take_store_error() {
                        eprintln!("[{now}] warning: the refresh token was not saved: {e}");
                    }
                }
            });
        }
    });
    let totals = totals.into_inner().unwrap_or_else(PoisonError::into_inner);
    Ok(totals.summary(args.requests * args.concurrency, client.stats()))
}
