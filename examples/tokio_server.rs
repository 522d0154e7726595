//! A server's view: many tokio tasks call one API with one token, through one `SharedClient`
//! over reqwest (or reqwless). One task refreshes when the token is due; the others keep sending with the
//! valid token, or wait for the refresh when there is none.
//!
//! ```text
//! cargo run --features reqwest --example tokio_server -- --api URL --username U --password P
//!     [--tasks N] [--requests N] [--interval-ms M] [--path P] [--store FILE]
//!     [--transport reqwest|reqwless]
//! ```
//!
//! `--transport reqwless` (built with `--features reqwest,reqwless`, Rust 1.91 or newer) sends
//! through `ReqwlessTransport`, the firmware transport, over a std stand-in for a firmware
//! network stack (`examples/support/tokio_stack.rs`: `embedded-nal-async` over tokio). A
//! `ReqwlessTransport` borrows its head buffer mutably, so each task has its own (over one shared
//! stack), with a 10 s timeout as `ReqwestTransport` has; every request is a connection of its
//! own. Without the feature, `--transport reqwless` is a usage error (exit status 2).
//!
//! Prints one JSON line per request and a summary line, as `std_http` does:
//! `{"i":..,"status":..,"refreshes":..,"logins":..}`, then the totals over all tasks, with the
//! shared session's refresh and login counts. Exit status 0 when every request got a 2xx
//! answer, 1 otherwise, 2 on a usage error.

use std::process::ExitCode;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration as StdDuration;

use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::reqwest::{ReqwestTransport, TokioDelay};
use jwt_refresh::shared::{SharedClient, StdRawMutex};
use jwt_refresh::{
    AsyncTransport, Error, FileStore, Protocol, RefreshPolicy, Request, Session, SystemClock,
};

#[cfg(feature = "reqwless")]
#[path = "support/tokio_stack.rs"]
mod tokio_stack;

const USAGE: &str = "usage: tokio_server --api URL --username U --password P
    [--tasks N] [--requests N] [--interval-ms M] [--path P] [--store FILE]
    [--transport reqwest|reqwless]";

type Client = SharedClient<'static, StdRawMutex, SystemClock, Option<FileStore>>;

/// Which `AsyncTransport` the tasks send through.
#[derive(Clone, Copy)]
enum Transport {
    /// `ReqwestTransport`, one clone per task (they share reqwest's connection pools).
    Reqwest,
    /// `ReqwlessTransport` over `TokioStack`, one per task (feature `reqwless`).
    #[cfg(feature = "reqwless")]
    Reqwless,
}

struct Args {
    api: String,
    username: String,
    password: String,
    tasks: u32,
    requests: u32,
    interval_ms: u64,
    path: String,
    store: Option<String>,
    transport: Transport,
}

fn parse_args() -> Result<Args, String> {
    let (mut api, mut username, mut password) = (None, None, None);
    let mut args = Args {
        api: String::new(),
        username: String::new(),
        password: String::new(),
        tasks: 100,
        requests: 10,
        interval_ms: 1000,
        path: "/api/protected/".into(),
        store: None,
        transport: Transport::Reqwest,
    };
    let mut argv = std::env::args().skip(1);
    while let Some(flag) = argv.next() {
        let mut value = || argv.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<u64>().map_err(|_| format!("{v}: not a number"));
        match flag.as_str() {
            "--api" => api = Some(value()?),
            "--username" => username = Some(value()?),
            "--password" => password = Some(value()?),
            "--tasks" => args.tasks = number(value()?)?.clamp(1, 100_000) as u32,
            "--requests" => args.requests = number(value()?)?.min(1_000_000) as u32,
            "--interval-ms" => args.interval_ms = number(value()?)?,
            "--path" => args.path = value()?,
            "--store" => args.store = Some(value()?),
            "--transport" => {
                args.transport = match value()?.as_str() {
                    "reqwest" => Transport::Reqwest,
                    #[cfg(feature = "reqwless")]
                    "reqwless" => Transport::Reqwless,
                    #[cfg(not(feature = "reqwless"))]
                    "reqwless" => {
                        return Err("--transport reqwless needs the feature reqwless \
                            (cargo run --features reqwest,reqwless --example tokio_server)"
                            .into())
                    }
                    other => return Err(format!("unknown transport {other} (reqwest, reqwless)")),
                }
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument {other}")),
        }
    }
    args.api = api.ok_or("--api is required")?;
    args.username = username.ok_or("--username is required")?;
    args.password = password.ok_or("--password is required")?;
    Ok(args)
}

/// One task: `args.requests` requests through `transport`, `args.interval_ms` apart, each
/// printed as a JSON line. Returns the count of 2xx answers, of 401s (an answer or the driver's
/// `Unauthorized`), and of anything else.
async fn run_task<T: AsyncTransport>(
    args: &Args,
    client: &Client,
    transport: &mut T,
    next: &AtomicU32,
) -> [u32; 3] {
    // Each task has its own buffers: the lock is never held while they are used.
    let (mut scratch, mut body) = (vec![0u8; 4096], vec![0u8; 64 * 1024]);
    let request = Request::get(&args.path);
    let mut counts = [0u32; 3];
    for n in 0..args.requests {
        if n > 0 {
            tokio::time::sleep(StdDuration::from_millis(args.interval_ms)).await;
        }
        let result = client
            .send_async(
                transport,
                &mut TokioDelay,
                &request,
                &mut scratch,
                &mut body,
            )
            .await;
        let stats = client.stats();
        let i = next.fetch_add(1, Ordering::Relaxed);
        let (kind, status) = match &result {
            Ok(r) if r.is_success() => (0, r.status.to_string()),
            Ok(r) => (usize::from(r.status != 401) + 1, r.status.to_string()),
            Err(Error::Unauthorized(r)) => (1, r.status.to_string()),
            Err(e) => {
                eprintln!("request {i}: {e}");
                (2, "null".into())
            }
        };
        counts[kind] += 1;
        println!(
            r#"{{"i":{i},"status":{status},"refreshes":{},"logins":{}}}"#,
            stats.refreshes, stats.logins
        );
    }
    counts
}

/// The tasks over `ReqwlessTransport`: one stack for all, a transport and head buffer per task.
/// Fails (before spawning any) when the URL is unusable.
#[cfg(feature = "reqwless")]
fn reqwless_tasks(
    args: &'static Args,
    client: &Arc<Client>,
    next: &Arc<AtomicU32>,
) -> Result<Vec<tokio::task::JoinHandle<[u32; 3]>>, jwt_refresh::reqwless::Error> {
    use jwt_refresh::reqwless::reqwless::client::HttpClient;
    use jwt_refresh::reqwless::{Error, ReqwlessTransport};
    use tokio_stack::TokioStack;

    /// A transport to `api` (the API and the token endpoint) over `stack`, reading answer heads
    /// into `rx`, with the same timeout as `ReqwestTransport`'s default (10 s, below the
    /// policy's request timeout).
    fn transport<'a>(
        stack: &'a TokioStack,
        api: &'a str,
        rx: &'a mut [u8],
    ) -> Result<ReqwlessTransport<'a, TokioStack, TokioStack, TokioDelay>, Error> {
        Ok(
            ReqwlessTransport::new(HttpClient::new(stack, stack), api, api, rx)?
                .with_timeout(TokioDelay, jwt_refresh::Duration::from_secs(10)),
        )
    }

    // The stack is shared by every task's client for the whole program: leaked once, as the
    // arguments are.
    let stack: &'static TokioStack = Box::leak(Box::default());
    // Checks the URL once, so that a bad one is a usage error rather than N failed tasks.
    transport(stack, &args.api, &mut [0u8; 1])?;
    Ok((0..args.tasks)
        .map(|_| {
            let (client, next) = (client.clone(), next.clone());
            tokio::spawn(async move {
                // The answer's status line and headers; 1 KB is plenty for gunicorn's.
                let mut rx = [0u8; 1024];
                match transport(stack, &args.api, &mut rx) {
                    Ok(mut transport) => run_task(args, &client, &mut transport, &next).await,
                    Err(e) => {
                        eprintln!("tokio_server: {e}");
                        [0, 0, args.requests]
                    }
                }
            })
        })
        .collect())
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) if message.is_empty() => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("tokio_server: {message}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    // The session borrows its configuration for as long as the tasks run: for the whole
    // program here, so the strings are leaked once.
    let args: &'static Args = Box::leak(Box::new(args));
    let protocol = Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: &args.username,
            password: &args.password,
        }),
        ..SimpleJwt::default()
    });
    let session: Session<'static> = Session::new(protocol, RefreshPolicy::default());
    let store = args.store.as_deref().map(FileStore::new);
    let client: Arc<Client> = Arc::new(SharedClient::new(session, SystemClock::new(), store));
    if args.store.is_some() {
        let mut scratch = [0u8; 4096];
        match client.restore(&mut scratch) {
            Ok(true) => eprintln!("loaded the refresh token from the store"),
            Ok(false) => {}
            Err(e) => {
                eprintln!("tokio_server: store: {e}");
                return ExitCode::from(1);
            }
        }
    }
    let next = Arc::new(AtomicU32::new(0));
    let tasks = match args.transport {
        Transport::Reqwest => {
            let transport = match ReqwestTransport::new(&args.api, &args.api) {
                Ok(transport) => transport,
                Err(e) => {
                    eprintln!("tokio_server: {e}");
                    return ExitCode::from(2);
                }
            };
            (0..args.tasks)
                .map(|_| {
                    let (client, mut transport, next) =
                        (client.clone(), transport.clone(), next.clone());
                    tokio::spawn(
                        async move { run_task(args, &client, &mut transport, &next).await },
                    )
                })
                .collect::<Vec<_>>()
        }
        #[cfg(feature = "reqwless")]
        Transport::Reqwless => match reqwless_tasks(args, &client, &next) {
            Ok(tasks) => tasks,
            Err(e) => {
                eprintln!("tokio_server: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let requests = args.tasks * args.requests;
    // A task that panicked counts all its requests as errors.
    let [mut ok, mut unauthorized, mut errors] = [0u32; 3];
    for task in tasks {
        let [o, u, e] = task.await.unwrap_or([0, 0, args.requests]);
        (ok, unauthorized, errors) = (ok + o, unauthorized + u, errors + e);
    }
    let stats = client.stats();
    println!(
        r#"{{"summary":{{"requests":{requests},"ok":{ok},"unauthorized":{unauthorized},"errors":{errors},"refreshes":{},"logins":{}}}}}"#,
        stats.refreshes, stats.logins
    );
    if ok == requests {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
