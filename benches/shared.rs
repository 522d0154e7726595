//! The shared client's throughput: `SharedClient::send` from 1, 2 and 8 threads against the
//! single-threaded `Client::send` (in-memory transport, a valid token provisioned up front, no
//! refresh), and from 8 threads over a transport that takes 1 ms per request against a
//! `std::sync::Mutex<Client>` that 8 threads lock around each whole `send`.
//!
//! Run: `cargo bench --bench shared`. Every ratio is against a baseline measured in the same run;
//! each figure is the median of 5 runs, the variants interleaved within each round so that
//! drift (other jobs on the machine, frequency changes) falls on all of them alike. It prints a
//! table and, per goal, whether it was met; it exits 0 either way.

use std::hint::black_box;
use std::sync::{Barrier, Mutex};
use std::thread;
use std::time::{Duration as StdDuration, Instant as StdInstant};

use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::SimpleJwt;
use jwt_refresh::shared::{SharedClient, StdRawMutex};
use jwt_refresh::transport::{ErrorKind, ErrorType, Response};
use jwt_refresh::{
    Client, Clock, Instant, NoStore, Protocol, RefreshPolicy, Request, Session, Transport,
};

/// Thread counts for the in-memory measurement.
const THREADS: [usize; 3] = [1, 2, 8];
/// Threads for the 1 ms transport.
const SLOW_THREADS: usize = 8;
/// Goal: the shared client's cost per request at 8 threads, at most this times the
/// single-threaded `Client::send`.
const GOAL_COST_RATIO: f64 = 3.0;
/// Goal: the shared client's throughput over the 1 ms transport, at least this times the
/// `Mutex<Client>`'s.
const GOAL_THROUGHPUT_RATIO: f64 = 6.0;

const SCRATCH: usize = 2048;
const BODY: usize = 256;

/// Answers every request with the same small JSON body, from memory (as in `benches/client.rs`).
#[derive(Default)]
struct InMemory;

impl ErrorType for InMemory {
    type Error = ErrorKind;
}

impl Transport for InMemory {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        const ANSWER: &[u8] = br#"{"ok":true,"user_id":"1"}"#;
        black_box(request.authorization);
        let dst = body
            .get_mut(..ANSWER.len())
            .ok_or(ErrorKind::BufferTooSmall)?;
        dst.copy_from_slice(ANSWER);
        Ok(Response::new(200, ANSWER.len()))
    }
}

/// The in-memory answer after `std::thread::sleep(1 ms)`: a server 1 ms away.
#[derive(Default)]
struct OneMs;

impl ErrorType for OneMs {
    type Error = ErrorKind;
}

impl Transport for OneMs {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        thread::sleep(StdDuration::from_millis(1));
        InMemory.send(request, body)
    }
}

/// A clock stopped at one minute, before the token's refresh is due (the session is checked
/// for refreshes at the end). A unit struct: `Sync`, so the shared client's threads read it too.
struct Fixed;

impl Clock for Fixed {
    fn now(&self) -> Instant {
        Instant::from_secs(60)
    }
}

struct NoDelay;

impl embedded_hal::delay::DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

type Shared = SharedClient<'static, StdRawMutex, Fixed, NoStore>;

/// A SimpleJWT-style access token valid for 5 minutes from `iat`.
fn access_token() -> String {
    #[derive(serde::Serialize)]
    struct Claims {
        exp: u64,
        iat: u64,
    }
    encode(
        &Header::default(),
        &Claims {
            exp: 1_700_000_300,
            iat: 1_700_000_000,
        },
        &EncodingKey::from_secret(b"bench"),
    )
    .unwrap()
}

/// A session holding `access` (fetched at time zero) and a refresh token.
fn session(access: &str) -> Session<'static> {
    let mut session: Session<'static> = Session::new(
        Protocol::SimpleJwt(SimpleJwt::default()),
        RefreshPolicy::default(),
    );
    session
        .set_tokens(
            Instant::ZERO,
            Instant::ZERO,
            access,
            Some("r"),
            TokenFacts::default(),
        )
        .unwrap();
    session
}

/// `n` requests through the single-threaded client: the time they took.
fn single<T: Transport>(
    client: &mut Client<'static, '_, T, Fixed, NoDelay, NoStore>,
    n: usize,
) -> StdDuration {
    let request = Request::get("/api/protected/");
    let mut body = [0u8; BODY];
    let start = StdInstant::now();
    for _ in 0..n {
        let status = client.send(black_box(&request), &mut body).unwrap().status;
        assert_eq!(status, 200);
    }
    start.elapsed()
}

/// Runs `per_thread` calls of `request` on each of `threads` threads, started together by a
/// barrier once each has its buffers. The wall time from the first thread's start to the last
/// one's end.
fn threaded<F>(threads: usize, per_thread: usize, request: F) -> StdDuration
where
    F: Fn(&mut [u8], &mut [u8]) -> u16 + Sync,
{
    let barrier = Barrier::new(threads);
    let spans: Vec<(StdInstant, StdInstant)> = thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let (mut scratch, mut body) = ([0u8; SCRATCH], [0u8; BODY]);
                    barrier.wait();
                    let start = StdInstant::now();
                    for _ in 0..per_thread {
                        assert_eq!(request(&mut scratch, &mut body), 200);
                    }
                    (start, StdInstant::now())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let first = spans.iter().map(|s| s.0).min().unwrap();
    let last = spans.iter().map(|s| s.1).max().unwrap();
    last - first
}

/// The shared client from `threads` threads, each with its own transport `T` and delay.
fn shared_run<T: Transport + Default>(
    client: &Shared,
    threads: usize,
    per_thread: usize,
) -> StdDuration {
    let request = Request::get("/api/protected/");
    threaded(threads, per_thread, |scratch, body| {
        let (mut transport, mut delay) = (T::default(), NoDelay);
        client
            .send(
                &mut transport,
                &mut delay,
                black_box(&request),
                scratch,
                body,
            )
            .unwrap()
            .status
    })
}

fn median(samples: &[f64]) -> f64 {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}

fn samples(values: &[f64], decimals: usize) -> String {
    values
        .iter()
        .map(|v| format!("{v:.decimals$}"))
        .collect::<Vec<_>>()
        .join(" ")
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "n/a".into())
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`), a smoke run of every
    // variant with a few requests, which checks the answers and prints no verdict.
    let quick = !std::env::args().any(|a| a == "--bench");
    // Rounds of each measurement (the median is reported); requests per in-memory measurement,
    // split evenly among the threads (divisible by 1, 2 and 8); requests per thread over the
    // 1 ms transport.
    let (reps, fast_total, slow_per_thread): (usize, usize, usize) = if quick {
        (1, 80, 2)
    } else {
        (5, 1_000_000, 50)
    };
    if quick {
        println!("quick smoke run (no --bench): the figures below are not measurements");
    }

    let access = access_token();
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    println!(
        "shared client throughput bench: {cores} cores, load average {} at start",
        loadavg()
    );
    println!(
        "{reps} rounds, variants interleaved; medians. In memory: {fast_total} requests per \
         measurement; 1 ms transport: {SLOW_THREADS} threads x {slow_per_thread} requests."
    );

    // --- 1 and 2: in-memory transport -----------------------------------------------------
    let mut scratch = [0u8; 512];
    let mut client = Client::new(
        session(&access),
        InMemory,
        Fixed,
        NoDelay,
        NoStore,
        &mut scratch,
    );
    let fast: Shared = SharedClient::new(session(&access), Fixed, NoStore);

    // Warm-up, untimed.
    single(&mut client, fast_total / 10);
    for &threads in &THREADS {
        shared_run::<InMemory>(&fast, threads, fast_total / 10 / threads);
    }

    let per_request_ns = |d: StdDuration| d.as_nanos() as f64 / fast_total as f64;
    let mut base = Vec::new();
    let mut by_threads = vec![Vec::new(); THREADS.len()];
    for _ in 0..reps {
        base.push(per_request_ns(single(&mut client, fast_total)));
        for (i, &threads) in THREADS.iter().enumerate() {
            let wall = shared_run::<InMemory>(&fast, threads, fast_total / threads);
            by_threads[i].push(per_request_ns(wall));
        }
    }
    let base_ns = median(&base);

    println!();
    println!("1-2. In-memory transport: cost per request = wall time / all threads' requests");
    println!(
        "{:<34} {:>12} {:>9}   samples (ns/req)",
        "variant", "median ns", "vs base"
    );
    println!(
        "{:<34} {:>12.1} {:>8.2}x   {}",
        "Client::send, 1 thread (baseline)",
        base_ns,
        1.0,
        samples(&base, 1)
    );
    let mut ratio_at = Vec::new();
    for (i, &threads) in THREADS.iter().enumerate() {
        let ns = median(&by_threads[i]);
        let ratio = ns / base_ns;
        ratio_at.push((threads, ns, ratio));
        println!(
            "{:<34} {:>12.1} {:>8.2}x   {}",
            format!("SharedClient::send, {threads} thread(s)"),
            ns,
            ratio,
            samples(&by_threads[i], 1)
        );
    }

    // --- 3: a transport that takes 1 ms -----------------------------------------------------
    let mut slow_scratch = [0u8; 512];
    let wrapped = Mutex::new(Client::new(
        session(&access),
        OneMs,
        Fixed,
        NoDelay,
        NoStore,
        &mut slow_scratch,
    ));
    let slow: Shared = SharedClient::new(session(&access), Fixed, NoStore);
    let request = Request::get("/api/protected/");
    let mutexed = |threads: usize, per_thread: usize| {
        threaded(threads, per_thread, |_scratch, body| {
            // A user who wraps the client: the lock is held across the whole send.
            let mut client = wrapped.lock().unwrap();
            client.send(black_box(&request), body).unwrap().status
        })
    };
    // The transport alone from 8 threads: the ceiling that sleeping 1 ms allows.
    let bare = |threads: usize, per_thread: usize| {
        threaded(threads, per_thread, |_scratch, body| {
            OneMs.send(black_box(&request), body).unwrap().status
        })
    };

    shared_run::<OneMs>(&slow, SLOW_THREADS, 5);
    mutexed(SLOW_THREADS, 2);
    bare(SLOW_THREADS, 5);

    let slow_total = (SLOW_THREADS * slow_per_thread) as f64;
    let per_second = |d: StdDuration| slow_total / d.as_secs_f64();
    let (mut shared_rps, mut mutex_rps, mut bare_rps) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..reps {
        shared_rps.push(per_second(shared_run::<OneMs>(
            &slow,
            SLOW_THREADS,
            slow_per_thread,
        )));
        mutex_rps.push(per_second(mutexed(SLOW_THREADS, slow_per_thread)));
        bare_rps.push(per_second(bare(SLOW_THREADS, slow_per_thread)));
    }
    let (shared_med, mutex_med, bare_med) =
        (median(&shared_rps), median(&mutex_rps), median(&bare_rps));
    let throughput_ratio = shared_med / mutex_med;

    println!();
    println!("3. Transport taking 1 ms (thread::sleep) per request, {SLOW_THREADS} threads");
    println!(
        "{:<34} {:>12} {:>9}   samples (req/s)",
        "variant", "median req/s", "vs mutex"
    );
    println!(
        "{:<34} {:>12.0} {:>8.2}x   {}",
        "Mutex<Client> (baseline)",
        mutex_med,
        1.0,
        samples(&mutex_rps, 0)
    );
    println!(
        "{:<34} {:>12.0} {:>8.2}x   {}",
        "SharedClient",
        shared_med,
        throughput_ratio,
        samples(&shared_rps, 0)
    );
    println!(
        "{:<34} {:>12.0} {:>8.2}x   {}",
        "transport alone, no client (ref.)",
        bare_med,
        bare_med / mutex_med,
        samples(&bare_rps, 0)
    );

    // The token was valid throughout: nothing but API requests was sent.
    for (name, stats) in [
        ("in-memory shared client", fast.stats()),
        ("1 ms shared client", slow.stats()),
    ] {
        assert_eq!(
            (stats.logins, stats.refreshes, stats.failures, stats.retries),
            (0, 0, 0, 0),
            "{name}: {stats:?}"
        );
    }

    println!();
    println!("load average {} at end", loadavg());
    if quick {
        return;
    }
    let (_, ns8, ratio8) = ratio_at
        .iter()
        .copied()
        .find(|&(threads, _, _)| threads == 8)
        .unwrap();
    println!(
        "GOAL 2 (8-thread cost <= {GOAL_COST_RATIO}x single-threaded): {}: {ns8:.1} ns/req vs \
         {base_ns:.1} ns/req = {ratio8:.2}x (1 thread {:.2}x, 2 threads {:.2}x)",
        if ratio8 <= GOAL_COST_RATIO {
            "MET"
        } else {
            "NOT MET"
        },
        ratio_at[0].2,
        ratio_at[1].2,
    );
    println!(
        "GOAL 3 (1 ms transport, 8 threads, >= {GOAL_THROUGHPUT_RATIO}x Mutex<Client>): {}: \
         {shared_med:.0} req/s vs {mutex_med:.0} req/s = {throughput_ratio:.2}x",
        if throughput_ratio >= GOAL_THROUGHPUT_RATIO {
            "MET"
        } else {
            "NOT MET"
        },
    );
}
