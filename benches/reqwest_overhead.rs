//! The reqwest adapter's overhead: the same requests to the same in-process loopback HTTP/1.1
//! server, in the same run, with bare reqwest (the same client settings, the answer read with
//! `.bytes()` as an application would) and through `ReqwestTransport::send` (the answer
//! streamed into a caller buffer, `Retry-After` and `WWW-Authenticate` read). The two run in
//! alternating batches, their order swapped every round, so that drift (CPU frequency, other
//! load) falls on both alike.
//!
//! Two cases: API requests (`GET` with a bearer token, one kept-alive connection) and token
//! requests (`POST` of a JSON body, a new connection each, as the adapter's token client does).
//! The server answers a 600-byte JSON body (the size of a SimpleJWT token answer) at once, so
//! the client side dominates the time: the harshest setting for an overhead figure.
//!
//! Printed: the mean time per request of each, the overhead of the totals, and the median of
//! the rounds' overheads, which a burst of other load on the machine moves least (the 2 % goal
//! is checked on it).
//!
//! `cargo bench --features reqwest --bench reqwest_overhead` (goal: under 2 % per request)

use std::hint::black_box;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use jwt_refresh::reqwest::{ReqwestTransport, DEFAULT_TIMEOUT};
use jwt_refresh::transport::{Endpoint, Request};
use jwt_refresh::AsyncTransport;
use reqwest::header::{HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE};

const ROUNDS: usize = 60;
const WARMUP: usize = 200;
const AUTHORIZATION_VALUE: &str =
    "Bearer eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwMDAzMDB9.c2lnbmF0dXJl";
const TOKEN_BODY: &[u8] =
    br#"{"refresh":"eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MDAwODY0MDB9.c2lnbmF0dXJl"}"#;

// ---------------------------------------------------------------------------------------------
// The server: HTTP/1.1 keep-alive, a fixed answer, one thread per connection
// ---------------------------------------------------------------------------------------------

struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accept: Option<JoinHandle<()>>,
}

impl Server {
    fn start(answer: Vec<u8>) -> Server {
        let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind 127.0.0.1");
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accept_stop = Arc::clone(&stop);
        let answer: Arc<[u8]> = answer.into();
        let accept = thread::spawn(move || {
            // Bounded in time whatever happens to the bench.
            let until = Instant::now() + Duration::from_secs(600);
            let mut connections = Vec::new();
            while !accept_stop.load(Ordering::SeqCst) && Instant::now() < until {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let answer = Arc::clone(&answer);
                        connections.push(thread::spawn(move || serve(stream, &answer)));
                        connections.retain(|c: &JoinHandle<()>| !c.is_finished());
                    }
                    Err(_) => thread::sleep(Duration::from_micros(200)),
                }
            }
            for connection in connections {
                let _ = connection.join();
            }
        });
        Server {
            addr,
            stop,
            accept: Some(accept),
        }
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Answers every request on the connection until the client closes it.
fn serve(mut stream: TcpStream, answer: &[u8]) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(30)));
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 4096];
    loop {
        // One request: the head, then its Content-Length body.
        let consumed = loop {
            let mut headers = [httparse::EMPTY_HEADER; 32];
            let mut request = httparse::Request::new(&mut headers);
            if let Ok(httparse::Status::Complete(head)) = request.parse(&buf) {
                let length: usize = request
                    .headers
                    .iter()
                    .find(|h| h.name.eq_ignore_ascii_case("content-length"))
                    .and_then(|h| std::str::from_utf8(h.value).ok()?.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= head + length {
                    break head + length;
                }
            }
            match stream.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        buf.drain(..consumed);
        if stream.write_all(answer).is_err() {
            return;
        }
    }
}

fn answer() -> Vec<u8> {
    // A SimpleJWT-sized JSON answer (two tokens of about 280 bytes).
    let token = format!("eyJhbGciOiJIUzI1NiJ9.{}.c2lnbmF0dXJl", "x".repeat(250));
    let body = format!(r#"{{"access":"{token}","refresh":"{token}"}}"#);
    let mut out = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nVary: Accept\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body.as_bytes());
    out
}

// ---------------------------------------------------------------------------------------------
// The two clients
// ---------------------------------------------------------------------------------------------

/// One case: how to send its request with bare reqwest, and the same through the adapter.
#[derive(Clone, Copy)]
enum Case {
    /// `GET /api/protected/` with a bearer token, on the API client (connection reuse).
    Api,
    /// `POST /api/token/refresh/` with a JSON body, on the token client (a new connection).
    Token,
}

impl Case {
    fn name(self) -> &'static str {
        match self {
            Case::Api => "API GET, kept-alive connection",
            Case::Token => "token POST, new connection each",
        }
    }

    fn batch(self) -> usize {
        match self {
            Case::Api => 100,
            Case::Token => 30,
        }
    }

    fn request(self) -> Request<'static> {
        match self {
            Case::Api => Request {
                authorization: Some(AUTHORIZATION_VALUE),
                ..Request::get("/api/protected/")
            },
            Case::Token => Request {
                endpoint: Endpoint::Auth,
                ..Request::post("/api/token/refresh/", "application/json", TOKEN_BODY)
            },
        }
    }
}

struct Bare {
    client: reqwest::Client,
    url: String,
}

impl Bare {
    fn new(case: Case, base: &str) -> Bare {
        // The adapter's client settings, built the same way.
        let builder = match case {
            Case::Api => ReqwestTransport::api_client_builder(),
            Case::Token => ReqwestTransport::token_client_builder(),
        };
        Bare {
            client: builder.build().expect("a reqwest client"),
            url: format!("{base}{}", case.request().path),
        }
    }

    /// As an application would: the same headers and timeout, the body as `Bytes`.
    async fn send(&self, case: Case) -> usize {
        let builder = match case {
            Case::Api => self
                .client
                .get(&self.url)
                .header(AUTHORIZATION, AUTHORIZATION_VALUE),
            Case::Token => self
                .client
                .post(&self.url)
                .header(ACCEPT, HeaderValue::from_static("application/json"))
                .header(CONTENT_TYPE, "application/json")
                .body(TOKEN_BODY),
        };
        let response = builder
            .timeout(DEFAULT_TIMEOUT)
            .send()
            .await
            .expect("bare request");
        assert!(response.status().is_success());
        response.bytes().await.expect("bare body").len()
    }
}

async fn adapter_send(transport: &mut ReqwestTransport, case: Case, body: &mut [u8]) -> usize {
    let response = transport
        .send(&case.request(), body)
        .await
        .expect("adapter request");
    assert!(response.is_success());
    response.body_len
}

// ---------------------------------------------------------------------------------------------
// Measurement
// ---------------------------------------------------------------------------------------------

struct Figures {
    bare_ns: f64,
    adapter_ns: f64,
    /// The median over rounds of (adapter / bare - 1).
    median_overhead: f64,
}

async fn measure(case: Case, base: &str) -> Figures {
    let bare = Bare::new(case, base);
    let mut transport = ReqwestTransport::new(base, base).expect("a transport");
    let mut body = vec![0u8; 2048];
    let expected = bare.send(case).await;
    assert_eq!(
        adapter_send(&mut transport, case, &mut body).await,
        expected
    );
    for _ in 0..WARMUP {
        black_box(bare.send(case).await);
        black_box(adapter_send(&mut transport, case, &mut body).await);
    }
    let n = case.batch();
    let (mut bare_total, mut adapter_total) = (Duration::ZERO, Duration::ZERO);
    let mut ratios = Vec::with_capacity(ROUNDS);
    for round in 0..ROUNDS {
        let mut bare_time = Duration::ZERO;
        let mut adapter_time = Duration::ZERO;
        for bare_first in [round % 2 == 0, round % 2 != 0] {
            let start = Instant::now();
            if bare_first {
                for _ in 0..n {
                    black_box(bare.send(case).await);
                }
                bare_time += start.elapsed();
            } else {
                for _ in 0..n {
                    black_box(adapter_send(&mut transport, case, &mut body).await);
                }
                adapter_time += start.elapsed();
            }
        }
        ratios.push(adapter_time.as_secs_f64() / bare_time.as_secs_f64() - 1.0);
        bare_total += bare_time;
        adapter_total += adapter_time;
    }
    ratios.sort_by(f64::total_cmp);
    let requests = (ROUNDS * n) as f64;
    Figures {
        bare_ns: bare_total.as_nanos() as f64 / requests,
        adapter_ns: adapter_total.as_nanos() as f64 / requests,
        median_overhead: ratios[ROUNDS / 2],
    }
}

fn main() {
    // `cargo bench` passes `--bench`; without it (`cargo test --benches`), one request per case.
    let quick = !std::env::args().any(|a| a == "--bench");
    let server = Server::start(answer());
    let base = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    if quick {
        runtime.block_on(async {
            for case in [Case::Api, Case::Token] {
                let mut transport = ReqwestTransport::new(&base, &base).expect("a transport");
                let mut body = vec![0u8; 2048];
                let len = adapter_send(&mut transport, case, &mut body).await;
                assert_eq!(len, Bare::new(case, &base).send(case).await);
            }
        });
        println!("reqwest_overhead: one request per case, ok");
        return;
    }
    println!(
        "reqwest_overhead: {ROUNDS} rounds, bare reqwest and ReqwestTransport::send in alternating batches, loopback"
    );
    println!(
        "{:<34} {:>10} {:>10} {:>10} {:>12}",
        "case", "bare", "adapter", "overhead", "median round"
    );
    for case in [Case::Api, Case::Token] {
        let f = runtime.block_on(measure(case, &base));
        let overhead = f.adapter_ns / f.bare_ns - 1.0;
        println!(
            "{:<34} {:>7.1} us {:>7.1} us {:>+9.2} % {:>+11.2} %   ({} requests each){}",
            case.name(),
            f.bare_ns / 1e3,
            f.adapter_ns / 1e3,
            overhead * 100.0,
            f.median_overhead * 100.0,
            ROUNDS * case.batch(),
            if f.median_overhead < 0.02 {
                ""
            } else {
                "  over the 2 % goal"
            }
        );
    }
    drop(runtime);
    drop(server);
}
