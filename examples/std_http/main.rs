//! A command-line client over `std::net`: keeps a session with a SimpleJWT or OAuth 2.0 server
//! and sends authenticated requests, one JSON line per request on stdout.
//!
//! ```text
//! cargo run --example std_http -- [--protocol simplejwt|oauth2] --api URL [--auth URL]
//!     [--login-path P] [--refresh-path P] [--username U --password P]
//!     [--client-id ID [--client-secret S] [--basic-auth]] [--access-token T --refresh-token R]
//!     [--store FILE] [--path P] [--requests N] [--interval-ms M] [--seed N]
//! ```
//!
//! Exit status: 0 when every request got a 2xx answer, 1 otherwise, 2 on a usage error.

mod transport;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration as StdDuration;

use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::{ClientAuth, Credentials, OAuth2, OAuth2Login, SimpleJwt};
use jwt_refresh::{
    Client, Clock, Error, FileStore, Protocol, RefreshPolicy, Request, Session, StdDelay,
    SystemClock, TokenStore,
};
use transport::{BaseUrl, StdHttp};

const USAGE: &str = "usage: std_http [--protocol simplejwt|oauth2] --api URL [--auth URL]
    [--login-path P] [--refresh-path P] [--username U --password P]
    [--client-id ID [--client-secret S] [--basic-auth]] [--access-token T --refresh-token R]
    [--store FILE] [--path P] [--requests N] [--interval-ms M] [--seed N]";

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
}

fn parse_args(mut argv: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut args = Args {
        path: "/api/protected/".into(),
        requests: 10,
        interval_ms: 1000,
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

/// Either a file store or none, as one type for the client.
enum Store {
    File(FileStore),
    None,
}

impl TokenStore for Store {
    type Error = std::io::Error;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, std::io::Error> {
        match self {
            Store::File(f) => f.load(buf),
            Store::None => Ok(None),
        }
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), std::io::Error> {
        match self {
            Store::File(f) => f.save(refresh_token),
            Store::None => Ok(()),
        }
    }

    fn clear(&mut self) -> Result<(), std::io::Error> {
        match self {
            Store::File(f) => f.clear(),
            Store::None => Ok(()),
        }
    }
}

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
    let store = match &args.store {
        Some(path) => Store::File(FileStore::new(path)),
        None => Store::None,
    };
    let mut scratch = [0u8; 4096];
    let mut client = Client::new(
        session,
        StdHttp::new(api, auth),
        clock,
        StdDelay,
        store,
        &mut scratch,
    );
    if args.access_token.is_none() && args.refresh_token.is_none() {
        match client.restore() {
            Ok(true) => eprintln!(
                "[{}] loaded the refresh token from the store",
                client.clock().now()
            ),
            Ok(false) => {}
            Err(e) => return Err(format!("store: {e}")),
        }
    }

    let mut body = vec![0u8; 64 * 1024];
    let (mut ok, mut unauthorized, mut errors) = (0u32, 0u32, 0u32);
    for i in 0..args.requests {
        if i > 0 {
            std::thread::sleep(StdDuration::from_millis(args.interval_ms));
        }
        let before = client.session().stats();
        let result = client.send(&Request::get(&args.path), &mut body);
        let stats = client.session().stats();
        let did = match (
            stats.logins - before.logins,
            stats.refreshes - before.refreshes,
        ) {
            (0, 0) => String::new(),
            (l, r) => format!(" (after {l} login(s), {r} refresh(es))"),
        };
        let status = match &result {
            Ok(response) => {
                if response.is_success() {
                    ok += 1;
                } else if response.status == 401 {
                    unauthorized += 1;
                } else {
                    errors += 1;
                }
                eprintln!(
                    "[{}] request {i}: {}{did}",
                    client.clock().now(),
                    response.status
                );
                response.status.to_string()
            }
            Err(e) => {
                if let Error::Unauthorized(_) = e {
                    unauthorized += 1;
                } else {
                    errors += 1;
                }
                eprintln!("[{}] request {i}: {e}{did}", client.clock().now());
                match e {
                    Error::Unauthorized(r) => r.status.to_string(),
                    _ => "null".into(),
                }
            }
        };
        if let Some(e) = client.take_store_error() {
            eprintln!(
                "[{}] warning: the refresh token was not saved: {e}",
                client.clock().now()
            );
        }
        println!(
            r#"{{"i":{i},"status":{status},"refreshes":{},"logins":{}}}"#,
            stats.refreshes, stats.logins
        );
    }
    let stats = client.session().stats();
    println!(
        r#"{{"summary":{{"requests":{},"ok":{ok},"unauthorized":{unauthorized},"errors":{errors},"refreshes":{},"logins":{}}}}}"#,
        args.requests, stats.refreshes, stats.logins
    );
    Ok(ok == args.requests)
}
