//! What `UreqTransport` costs on top of ureq itself: the same GET with a bearer token, made with
//! a bare ureq agent (same configuration, the body read into a `Vec` as a user would) and
//! through `UreqTransport::send` (the body read into a caller buffer), against a server on
//! 127.0.0.1 in this process, in the same run.
//!
//! Two servers: a minimal keep-alive server (a fixed answer on a kept connection, so that the
//! client's own work is as large a share of each request as it can be), and the demo SimpleJWT
//! server (`examples/support/server.rs`: a connection per request, the token's signature
//! checked). The two ways alternate in rounds, in alternating order, so that drift (CPU
//! frequency, the other load on the machine) cancels; the overhead printed is the median of
//! the per-round ratios. The goal is under 2 %.
//!
//! Run: `cargo bench --features ureq --bench ureq_overhead` (`-- --quick` for fewer rounds).

#[path = "../examples/support/server.rs"]
mod server;

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration as StdDuration, Instant};

use jwt_refresh::transport::Request;
use jwt_refresh::ureq::UreqTransport;
use jwt_refresh::Transport;
use server::{Server, ServerConfig, PROTECTED_PATH};

const TIMEOUT: StdDuration = StdDuration::from_secs(10);

/// The keep-alive server's answer: a JSON body of 200 bytes.
fn keep_alive_answer() -> Vec<u8> {
    let body = format!(r#"{{"ok":true,"user_id":"1","pad":"{}"}}"#, "x".repeat(166));
    assert_eq!(body.len(), 200);
    let mut answer = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(body.as_bytes());
    answer
}

/// Answers every GET on a connection with the same bytes, until the client closes it.
struct KeepAliveServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl KeepAliveServer {
    fn start() -> KeepAliveServer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("address");
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = Arc::clone(&stop);
        let accept = thread::spawn(move || {
            let answer: Arc<[u8]> = keep_alive_answer().into();
            let mut workers = Vec::new();
            for stream in listener.incoming() {
                if stop2.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let answer = Arc::clone(&answer);
                let stop = Arc::clone(&stop2);
                workers.push(thread::spawn(move || {
                    let _ = stream.set_nodelay(true);
                    // Idle connections (kept by the clients' pools) end when the server stops.
                    let _ = stream.set_read_timeout(Some(StdDuration::from_millis(50)));
                    let mut buf = [0u8; 4096];
                    let mut have = 0;
                    loop {
                        // Requests are GETs without a body: each ends at an empty line.
                        while let Some(end) = buf[..have].windows(4).position(|w| w == b"\r\n\r\n")
                        {
                            if stream.write_all(&answer).is_err() {
                                return;
                            }
                            buf.copy_within(end + 4..have, 0);
                            have -= end + 4;
                        }
                        match stream.read(&mut buf[have..]) {
                            Ok(0) => return,
                            Ok(n) => have += n,
                            Err(e)
                                if matches!(
                                    e.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ) && !stop.load(Ordering::SeqCst) => {}
                            Err(_) => return,
                        }
                    }
                }));
            }
            for worker in workers {
                let _ = worker.join();
            }
        });
        KeepAliveServer {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for KeepAliveServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// The ureq configuration both ways share (the transport adds the same settings itself).
fn bare_agent() -> ureq::Agent {
    ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .proxy(None)
            .timeout_global(Some(TIMEOUT))
            .http_status_as_error(false)
            .max_redirects(0)
            .max_redirects_will_error(false)
            .build(),
    )
}

/// The calling thread's time on a CPU so far, from Linux's scheduler statistics
/// (`/proc/thread-self/sched`, nanosecond precision); `None` where they are not available.
fn thread_cpu() -> Option<StdDuration> {
    let stats = std::fs::read_to_string("/proc/thread-self/sched").ok()?;
    let line = stats
        .lines()
        .find(|l| l.starts_with("se.sum_exec_runtime"))?;
    let ms: f64 = line.split(':').nth(1)?.trim().parse().ok()?;
    Some(StdDuration::from_secs_f64(ms / 1e3))
}

/// What `n` requests took: wall-clock time, and the client thread's own CPU time.
struct Took {
    wall: StdDuration,
    cpu: Option<StdDuration>,
}

/// One way of making the request.
trait Way {
    fn once(&mut self);

    fn run(&mut self, n: u32) -> Took {
        let cpu = thread_cpu();
        let start = Instant::now();
        for _ in 0..n {
            self.once();
        }
        let wall = start.elapsed();
        let cpu = cpu.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a));
        Took { wall, cpu }
    }
}

struct Bare {
    agent: ureq::Agent,
    url: String,
    authorization: String,
}

impl Way for Bare {
    fn once(&mut self) {
        let mut response = self
            .agent
            .get(&self.url)
            .header("Authorization", &self.authorization)
            .call()
            .expect("bare ureq request");
        let status = response.status().as_u16();
        let body = response
            .body_mut()
            .with_config()
            .limit(64 * 1024)
            .read_to_vec()
            .expect("bare ureq body");
        assert_eq!(status, 200);
        black_box(body);
    }
}

struct Adapter {
    transport: UreqTransport,
    path: &'static str,
    authorization: String,
    body: Vec<u8>,
}

impl Way for Adapter {
    fn once(&mut self) {
        let request = Request {
            authorization: Some(&self.authorization),
            ..Request::get(self.path)
        };
        let response = self
            .transport
            .send(&request, &mut self.body)
            .expect("UreqTransport request");
        assert_eq!(response.status, 200);
        black_box(&self.body[..response.body_len]);
    }
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len().is_multiple_of(2) {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

/// Per-request times of both ways over the rounds, and the per-round ratios.
#[derive(Default)]
struct Series {
    bare: Vec<f64>,
    adapter: Vec<f64>,
    ratios: Vec<f64>,
}

impl Series {
    fn push(&mut self, bare: StdDuration, adapter: StdDuration, n: u32) {
        let b = bare.as_secs_f64() * 1e6 / f64::from(n);
        let a = adapter.as_secs_f64() * 1e6 / f64::from(n);
        self.bare.push(b);
        self.adapter.push(a);
        self.ratios.push(a / b - 1.0);
    }

    fn print(&mut self, what: &str) {
        if self.ratios.is_empty() {
            println!("  {what}: not measured here");
            return;
        }
        let (lo, hi) = self
            .ratios
            .iter()
            .fold((f64::MAX, f64::MIN), |(lo, hi), &r| (lo.min(r), hi.max(r)));
        let overhead = median(&mut self.ratios);
        println!(
            "  {what}: bare ureq {:.2} us/request, UreqTransport {:.2} us/request (medians)",
            median(&mut self.bare),
            median(&mut self.adapter)
        );
        println!(
            "    overhead {:+.2} % (median of per-round ratios; rounds {:+.2} % .. {:+.2} %){}",
            overhead * 100.0,
            lo * 100.0,
            hi * 100.0,
            if overhead < 0.02 {
                ""
            } else {
                "  ABOVE THE 2 % GOAL"
            }
        );
    }
}

/// Interleaved rounds, in alternating order; prints wall-clock and client-CPU figures.
fn compare(name: &str, bare: &mut dyn Way, adapter: &mut dyn Way, rounds: usize, n: u32) {
    // Warm-up: connections, caches, the servers' threads.
    bare.run(n / 4 + 1);
    adapter.run(n / 4 + 1);
    let (mut wall, mut cpu) = (Series::default(), Series::default());
    for round in 0..rounds {
        let (b, a) = if round.is_multiple_of(2) {
            let b = bare.run(n);
            (b, adapter.run(n))
        } else {
            let a = adapter.run(n);
            (bare.run(n), a)
        };
        wall.push(b.wall, a.wall, n);
        if let (Some(b), Some(a)) = (b.cpu, a.cpu) {
            cpu.push(b, a, n);
        }
    }
    println!("{name}: {rounds} rounds x {n} requests each way");
    wall.print("wall clock");
    cpu.print("client thread CPU");
}

fn transport(url: &str) -> UreqTransport {
    UreqTransport::with_config(url, url, |config| {
        config.proxy(None).timeout_global(Some(TIMEOUT))
    })
    .expect("a loopback URL")
}

/// The keep-alive server: a fixed answer, a token that is never checked.
fn against_keep_alive(rounds: usize, n: u32) {
    let server = KeepAliveServer::start();
    let authorization = format!("Bearer {}", "t".repeat(280));
    let mut bare = Bare {
        agent: bare_agent(),
        url: format!("{}{PROTECTED_PATH}", server.url()),
        authorization: authorization.clone(),
    };
    let mut adapter = Adapter {
        transport: transport(&server.url()),
        path: PROTECTED_PATH,
        authorization,
        body: vec![0u8; 4096],
    };
    compare(
        "keep-alive loopback server (connections reused, 200-byte answers)",
        &mut bare,
        &mut adapter,
        rounds,
        n,
    );
    // The clients (and their pooled connections) go before the server.
    drop((bare, adapter));
}

/// The demo server: a connection per request, the token's signature checked.
fn against_demo(rounds: usize, n: u32) {
    let server = Server::start(ServerConfig {
        access_lifetime: StdDuration::from_secs(3600),
        ..ServerConfig::default()
    })
    .expect("demo server");
    let (access, _) = server.issue_tokens();
    let authorization = format!("Bearer {access}");
    let mut bare = Bare {
        agent: bare_agent(),
        url: format!("{}{PROTECTED_PATH}", server.url()),
        authorization: authorization.clone(),
    };
    let mut adapter = Adapter {
        transport: transport(&server.url()),
        path: PROTECTED_PATH,
        authorization,
        body: vec![0u8; 4096],
    };
    compare(
        "demo SimpleJWT server (a connection per request, HS256 checked)",
        &mut bare,
        &mut adapter,
        rounds,
        n,
    );
    drop((bare, adapter));
}

fn main() {
    // `cargo bench` passes `--bench`; `--quick` shortens the run (as criterion's flag does).
    let quick = std::env::args().any(|a| a == "--quick");
    let (rounds, scale) = if quick { (8, 4) } else { (30, 1) };
    against_keep_alive(rounds, 1000 / scale);
    against_demo(rounds, 200 / scale);
}
