//! The shared client: one session for many threads and tasks, against an in-memory SimpleJWT
//! server with rotation and blacklisting. Each test is a timeline: who sends when, what the
//! server saw, and what the session counted.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Barrier, Mutex};
use std::thread;
use std::time::Duration as StdDuration;

use jwt_refresh::mock::{MemStore, MockClock, StoreError, TokenBuilder, EPOCH};
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::shared::{SharedClient, StdRawMutex};
use jwt_refresh::transport::{Endpoint, ErrorKind, ErrorType, Request, Response, Transport};
use jwt_refresh::{Clock, Protocol, RefreshPolicy, Session, TokenStore, UnixTime};

const API: Request<'static> = Request::get("/api/protected/");

fn protocol() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: "device",
            password: "pw",
        }),
        ..SimpleJwt::default()
    })
}

/// No jitter; a token request counts as unanswered after 5 minutes of the mock clock, which
/// the tests below move by 10-30 s every few milliseconds while requests take real time.
fn policy() -> RefreshPolicy {
    RefreshPolicy {
        jitter_permille: 0,
        first_jitter_permille: 0,
        request_timeout: jwt_refresh::Duration::from_secs(300),
        ..RefreshPolicy::default()
    }
}

/// What the server saw.
#[derive(Default)]
struct Seen {
    logins: u32,
    refreshes: u32,
    /// Refreshes that presented a refresh token already rotated away (a second concurrent
    /// refresh, with rotation and blacklisting on).
    blacklisted: u32,
    api_ok: u32,
    /// API requests with an access token that was not the current one.
    api_stale: u32,
}

/// A SimpleJWT server in memory: 5-minute access tokens, rotation and blacklist on; an access
/// token stops being accepted once a newer one is issued. Token requests take `latency`.
struct Server {
    clock: MockClock,
    latency: StdDuration,
    state: Mutex<ServerState>,
}

#[derive(Default)]
struct ServerState {
    access: Option<String>,
    refresh: Option<String>,
    seen: Seen,
}

impl Server {
    fn new(clock: &MockClock, latency_ms: u64) -> Arc<Server> {
        Arc::new(Server {
            clock: clock.clone(),
            latency: StdDuration::from_millis(latency_ms),
            state: Mutex::new(ServerState::default()),
        })
    }

    /// Issues a pair at the clock's time and makes it current.
    fn issue(&self, state: &mut ServerState) -> String {
        let at = self.clock.now().as_millis() / 1000;
        let access = TokenBuilder::access(at, 300).build();
        let refresh = TokenBuilder::refresh(at, 86_400).build();
        state.access = Some(access.clone());
        state.refresh = Some(refresh.clone());
        format!(r#"{{"access":"{access}","refresh":"{refresh}"}}"#)
    }

    fn answer(&self, request: &Request<'_>) -> (u16, String) {
        match request.endpoint {
            Endpoint::Auth => {
                thread::sleep(self.latency);
                let mut state = self.state.lock().unwrap();
                let body = std::str::from_utf8(request.body).unwrap();
                if request.path == "/api/token/" {
                    state.seen.logins += 1;
                    return (200, self.issue(&mut state));
                }
                state.seen.refreshes += 1;
                let presented = body.split('"').nth(3).unwrap_or_default();
                if state.refresh.as_deref() == Some(presented) {
                    (200, self.issue(&mut state))
                } else {
                    state.seen.blacklisted += 1;
                    (
                        401,
                        r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#.into(),
                    )
                }
            }
            Endpoint::Api => {
                let bearer = request
                    .authorization
                    .and_then(|v| v.strip_prefix("Bearer "))
                    .unwrap_or_default()
                    .to_owned();
                let mut state = self.state.lock().unwrap();
                if state.access.as_deref() == Some(bearer.as_str()) {
                    state.seen.api_ok += 1;
                    (200, "{}".into())
                } else {
                    state.seen.api_stale += 1;
                    (401, r#"{"code":"token_not_valid"}"#.into())
                }
            }
        }
    }

    fn seen<T>(&self, f: impl FnOnce(&Seen) -> T) -> T {
        f(&self.state.lock().unwrap().seen)
    }
}

/// One caller's connection to the server.
struct Conn(Arc<Server>);

impl ErrorType for Conn {
    type Error = ErrorKind;
}

impl Transport for Conn {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        let (status, text) = self.0.answer(request);
        let dst = body
            .get_mut(..text.len())
            .ok_or(ErrorKind::BufferTooSmall)?;
        dst.copy_from_slice(text.as_bytes());
        Ok(Response::new(status, text.len()))
    }
}

impl jwt_refresh::AsyncTransport for Conn {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, ErrorKind> {
        Transport::send(self, request, body)
    }
}

/// The in-memory store, with saves that take this many milliseconds (a flash page, a file with
/// fsync), so that other callers poll while one is under way.
#[derive(Clone)]
struct SlowStore(MemStore, u64);

impl TokenStore for SlowStore {
    type Error = StoreError;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, StoreError> {
        self.0.load(buf)
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), StoreError> {
        thread::sleep(StdDuration::from_millis(self.1));
        self.0.save(refresh_token)
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        self.0.clear()
    }
}

type Shared = SharedClient<'static, StdRawMutex, MockClock, SlowStore>;

fn shared(clock: &MockClock, store: &MemStore) -> Shared {
    shared_saving_in(clock, store, 0)
}

fn shared_saving_in(clock: &MockClock, store: &MemStore, save_ms: u64) -> Shared {
    let store = SlowStore(store.clone(), save_ms);
    SharedClient::new(Session::new(protocol(), policy()), clock.clone(), store)
}

fn clock() -> MockClock {
    MockClock::with_wall(UnixTime::from_secs(EPOCH).unwrap())
}

/// One request from this thread, with its own buffers, transport and delay.
fn send(client: &Shared, server: &Arc<Server>, clock: &MockClock) -> u16 {
    let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
    let mut delay = clock.clone();
    let response = client
        .send(
            &mut Conn(server.clone()),
            &mut delay,
            &API,
            &mut scratch,
            &mut body,
        )
        .expect("an answer");
    response.status
}

#[test]
fn eight_threads_without_a_token_share_one_login() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 50);
    let client = shared_saving_in(&clock, &store, 20);
    let start = Barrier::new(8);

    // t=0: eight threads send at once; nobody has a token, the login takes 50 ms and saving
    // its refresh token 20 ms.
    let statuses: Vec<u16> = thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    start.wait();
                    send(&client, &server, &clock)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });

    // One thread logged in; the seven others waited for it, then sent with its token.
    assert_eq!(statuses, [200; 8]);
    assert_eq!(server.seen(|s| s.logins), 1);
    assert_eq!(server.seen(|s| (s.api_ok, s.api_stale)), (8, 0));
    let stats = client.stats();
    assert_eq!((stats.logins, stats.refreshes, stats.failures), (1, 0, 0));
    // Its refresh token was saved once, by one caller, while the others waited for the save.
    assert_eq!(store.saves(), 1);
    assert!(store.token().is_some());
}

#[test]
fn while_one_thread_refreshes_the_others_send_with_the_valid_token() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client = shared(&clock, &store);
    assert_eq!(send(&client, &server, &clock), 200);
    let first_access = server.state.lock().unwrap().access.clone().unwrap();

    // t=280 s: the 5-minute token is due for its refresh but valid until t=300 s. The
    // refresh is held at the server until the other threads have sent.
    clock.advance_secs(280);
    let (arrived_tx, arrived_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let release_rx = Mutex::new(release_rx);
    let refresher = HoldingConn {
        server: server.clone(),
        arrived: arrived_tx,
        release: &release_rx,
    };
    let during = thread::scope(|s| {
        let refresh = s.spawn(|| {
            let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
            let mut conn = refresher;
            client
                .send(&mut conn, &mut clock.clone(), &API, &mut scratch, &mut body)
                .map(|r| r.status)
        });
        arrived_rx.recv().unwrap();
        // The refresh is in flight: six more requests, each sent at once with the first token.
        let during: Vec<u16> = (0..6).map(|_| send(&client, &server, &clock)).collect();
        assert_eq!(
            server.state.lock().unwrap().access.as_deref(),
            Some(first_access.as_str())
        );
        release_tx.send(()).unwrap();
        assert_eq!(refresh.join().unwrap().ok(), Some(200));
        during
    });

    assert_eq!(during, [200; 6]);
    assert_eq!(server.seen(|s| (s.refreshes, s.blacklisted)), (1, 0));
    let stats = client.stats();
    assert_eq!((stats.logins, stats.refreshes), (1, 1));
    // The first request, the six, and the refresher's own with the new token.
    assert_eq!(server.seen(|s| (s.api_ok, s.api_stale)), (8, 0));
    assert_ne!(
        server.state.lock().unwrap().access.as_deref(),
        Some(first_access.as_str())
    );
}

/// A connection whose token requests wait at the server until released.
struct HoldingConn<'r> {
    server: Arc<Server>,
    arrived: mpsc::Sender<()>,
    release: &'r Mutex<mpsc::Receiver<()>>,
}

impl ErrorType for HoldingConn<'_> {
    type Error = ErrorKind;
}

impl Transport for HoldingConn<'_> {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        if request.endpoint == Endpoint::Auth {
            self.arrived.send(()).unwrap();
            self.release.lock().unwrap().recv().unwrap();
        }
        Conn(self.server.clone()).send(request, body)
    }
}

#[test]
fn a_401_on_a_token_replaced_meanwhile_is_retried_without_another_refresh() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client = shared(&clock, &store);
    assert_eq!(send(&client, &server, &clock), 200);

    // Thread A's request with the first token is held at the server...
    let (arrived_tx, arrived_rx) = mpsc::channel::<()>();
    let (release_tx, release_rx) = mpsc::channel::<()>();
    let arrived_tx = Mutex::new(arrived_tx);
    let release_rx = Mutex::new(release_rx);
    let holds = AtomicU32::new(1);
    let a = thread::scope(|s| {
        let a = s.spawn(|| {
            let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
            let mut conn = HookConn {
                server: server.clone(),
                before_api: || {
                    if holds.fetch_sub(1, Ordering::SeqCst) == 1 {
                        arrived_tx.lock().unwrap().send(()).unwrap();
                        release_rx.lock().unwrap().recv().unwrap();
                    }
                },
            };
            client
                .send(&mut conn, &mut clock.clone(), &API, &mut scratch, &mut body)
                .map(|r| r.status)
        });
        arrived_rx.recv().unwrap();
        // ... while thread B, at t=280 s, refreshes: the server now rejects the first token.
        clock.advance_secs(280);
        assert_eq!(send(&client, &server, &clock), 200);
        release_tx.send(()).unwrap();
        a.join().unwrap()
    });

    // A got a 401 for the replaced token and sent again with B's, without a refresh of its own.
    assert_eq!(a.ok(), Some(200));
    assert_eq!(server.seen(|s| (s.refreshes, s.api_stale)), (1, 1));
    let stats = client.stats();
    assert_eq!((stats.logins, stats.refreshes, stats.retries), (1, 1, 1));
}

/// A connection that runs `before_api` before each API request.
struct HookConn<F> {
    server: Arc<Server>,
    before_api: F,
}

impl<F> ErrorType for HookConn<F> {
    type Error = ErrorKind;
}

impl<F: FnMut()> Transport for HookConn<F> {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        if request.endpoint == Endpoint::Api {
            (self.before_api)();
        }
        Conn(self.server.clone()).send(request, body)
    }
}

#[test]
fn many_threads_across_many_expiries_refresh_once_per_lifetime() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 1);
    let client = shared(&clock, &store);

    // Eight threads send 40 requests each, one per 30 s of the clock, which the test moves 30 s
    // every 2 ms: 20 minutes, four token lifetimes.
    let statuses: Vec<Vec<u16>> = thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                s.spawn(|| {
                    (0..40)
                        .map(|_| {
                            let next = clock.now().as_millis() + 30_000;
                            let status = send(&client, &server, &clock);
                            while clock.now().as_millis() < next {
                                thread::sleep(StdDuration::from_millis(1));
                            }
                            status
                        })
                        .collect()
                })
            })
            .collect();
        while !threads.iter().all(|t| t.is_finished()) {
            thread::sleep(StdDuration::from_millis(2));
            clock.advance_secs(30);
        }
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(statuses.iter().flatten().all(|&status| status == 200));

    let (logins, refreshes, blacklisted, stale) =
        server.seen(|s| (s.logins, s.refreshes, s.blacklisted, s.api_stale));
    assert_eq!((logins, blacklisted), (1, 0));
    // One refresh per token lifetime (a refresh is due every 270 s): never two at once.
    let elapsed = clock.now().as_millis() / 1000;
    assert!(elapsed >= 1_200, "{elapsed} s");
    assert!(
        (3..=elapsed / 270 + 1).contains(&u64::from(refreshes)),
        "{refreshes} refreshes in {elapsed} s"
    );
    // A 401 happens only to a request sent with the token that a refresh replaced meanwhile;
    // each was retried (every request above got its 200).
    assert_eq!(client.stats().retries, stale);
    assert_eq!(store.saves(), 1 + refreshes);
}

#[test]
fn a_scratch_buffer_too_small_for_the_authorization_copy_is_an_error() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client = shared(&clock, &store);
    let (mut scratch, mut body) = ([0u8; 64], [0u8; 4096]);
    let err = client
        .send(
            &mut Conn(server.clone()),
            &mut clock.clone(),
            &API,
            &mut scratch,
            &mut body,
        )
        .unwrap_err();
    assert!(matches!(
        err,
        jwt_refresh::Error::Fatal(jwt_refresh::SessionError::BufferTooSmall(_))
    ));
    assert_eq!(server.seen(|s| s.logins), 0);
}

// ---------------------------------------------------------------------------------------------
// Tasks: tokio (std mutex) and embassy-sync (one executor, no std needed)

/// One task's connection: token requests take `latency` of tokio time, or yield once to the
/// executor when there is no runtime (`None`).
struct AsyncConn {
    server: Arc<Server>,
    tokio_latency: Option<StdDuration>,
    /// Token requests never get an answer (a hung connection).
    hang: bool,
}

impl ErrorType for AsyncConn {
    type Error = ErrorKind;
}

impl jwt_refresh::AsyncTransport for AsyncConn {
    async fn send(
        &mut self,
        request: &Request<'_>,
        body: &mut [u8],
    ) -> Result<Response, ErrorKind> {
        if request.endpoint == Endpoint::Auth {
            if self.hang {
                std::future::pending::<()>().await;
            }
            match self.tokio_latency {
                Some(latency) => tokio::time::sleep(latency).await,
                None => YieldOnce(false).await,
            }
        }
        Transport::send(&mut Conn(self.server.clone()), request, body)
    }
}

/// A delay that sleeps in tokio's time while the test moves the mock clock: waiting callers
/// really wait, as with a timer (the mock clock's own delay would move the clock instead).
struct TokioSleep;

impl embedded_hal_async::delay::DelayNs for TokioSleep {
    async fn delay_ns(&mut self, ns: u32) {
        tokio::time::sleep(StdDuration::from_nanos(u64::from(ns))).await;
    }
}

/// A delay that never ends: a waiting task wakes only when the refresh it waits for ends.
struct Forever;

impl embedded_hal_async::delay::DelayNs for Forever {
    async fn delay_ns(&mut self, _ns: u32) {
        std::future::pending::<()>().await;
    }
}

/// Returns `Pending` once (waking itself), so that the executor runs the other tasks.
struct YieldOnce(bool);

impl std::future::Future for YieldOnce {
    type Output = ();

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<()> {
        if std::mem::replace(&mut self.0, true) {
            return std::task::Poll::Ready(());
        }
        cx.waker().wake_by_ref();
        std::task::Poll::Pending
    }
}

async fn send_async<M: jwt_refresh::shared::RawMutex>(
    client: &SharedClient<'static, M, MockClock, SlowStore>,
    conn: &mut AsyncConn,
    mut delay: impl embedded_hal_async::delay::DelayNs,
) -> Result<u16, jwt_refresh::Error<ErrorKind, StoreError>> {
    let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
    client
        .send_async(conn, &mut delay, &API, &mut scratch, &mut body)
        .await
        .map(|r| r.status)
}

#[test]
fn a_hundred_tokio_tasks_share_one_login_and_one_refresh_per_lifetime() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client = Arc::new(shared(&clock, &store));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();

    // 100 tasks, 20 requests each (one per 60 s of the clock), spawned at once without a token;
    // a login or refresh takes 1 ms. The test moves the clock 10 s every 5 ms: 20 minutes, four
    // token lifetimes.
    let statuses: Vec<u16> = runtime.block_on(async {
        let tasks: Vec<_> = (0..100)
            .map(|_| {
                let (client, server, clock) = (client.clone(), server.clone(), clock.clone());
                tokio::spawn(async move {
                    let mut conn = AsyncConn {
                        server,
                        tokio_latency: Some(StdDuration::from_millis(1)),
                        hang: false,
                    };
                    let mut statuses = Vec::new();
                    for _ in 0..20 {
                        let next = clock.now().as_millis() + 60_000;
                        statuses.push(send_async(&client, &mut conn, TokioSleep).await.unwrap());
                        while clock.now().as_millis() < next {
                            tokio::time::sleep(StdDuration::from_millis(1)).await;
                        }
                    }
                    statuses
                })
            })
            .collect();
        while !tasks.iter().all(|t| t.is_finished()) {
            tokio::time::sleep(StdDuration::from_millis(5)).await;
            clock.advance_secs(10);
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        all
    });

    assert_eq!(statuses.len(), 2000);
    assert!(statuses.iter().all(|&status| status == 200));
    let (logins, refreshes, blacklisted) = server.seen(|s| (s.logins, s.refreshes, s.blacklisted));
    assert_eq!((logins, blacklisted), (1, 0));
    let elapsed = clock.now().as_millis() / 1000;
    assert!(elapsed >= 1_200, "{elapsed} s");
    assert!(
        (3..=elapsed / 270 + 1).contains(&u64::from(refreshes)),
        "{refreshes} refreshes in {elapsed} s"
    );
    assert_eq!(client.stats().refreshes, refreshes);
}

#[test]
fn a_task_cancelled_mid_login_lets_the_next_one_log_in() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client = shared(&clock, &store);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();

    runtime.block_on(async {
        // Task A starts the login on a connection that never answers, and is cancelled.
        let mut hung = AsyncConn {
            server: server.clone(),
            tokio_latency: None,
            hang: true,
        };
        let cancelled = tokio::time::timeout(
            StdDuration::from_millis(20),
            send_async(&client, &mut hung, clock.clone()),
        )
        .await;
        assert!(cancelled.is_err());
        assert!(!client.session(|s| s.is_refreshing()).unwrap());

        // Task B: the session counted A's login as unanswered and backs off (the mock delay
        // moves the clock), then B logs in and sends.
        let mut conn = AsyncConn {
            server: server.clone(),
            tokio_latency: None,
            hang: false,
        };
        assert_eq!(
            send_async(&client, &mut conn, clock.clone()).await.ok(),
            Some(200)
        );
    });
    assert_eq!(server.seen(|s| s.logins), 1);
    let stats = client.stats();
    assert_eq!((stats.logins, stats.failures), (1, 1));
}

#[test]
fn two_embassy_tasks_on_one_executor_share_one_login() {
    use embassy_sync::blocking_mutex::raw::NoopRawMutex;
    use jwt_refresh::shared::EmbassyRawMutex;

    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let client: SharedClient<'static, EmbassyRawMutex<NoopRawMutex>, MockClock, SlowStore> =
        SharedClient::new(
            Session::new(protocol(), policy()),
            clock.clone(),
            SlowStore(store.clone(), 0),
        );
    let conn = || AsyncConn {
        server: server.clone(),
        tokio_latency: None,
        hang: false,
    };
    let (mut uplink, mut poller) = (conn(), conn());

    // An MQTT uplink and an HTTP poller start together without a token: the uplink's login
    // yields to the executor, the poller waits for it instead of logging in too. Their delays
    // never end, so the poller can only have been woken by the login's end.
    let (a, b) = pollster::block_on(async {
        tokio::join!(
            send_async(&client, &mut uplink, Forever),
            send_async(&client, &mut poller, Forever)
        )
    });

    assert_eq!((a.ok(), b.ok()), (Some(200), Some(200)));
    assert_eq!(server.seen(|s| (s.logins, s.api_ok)), (1, 2));
    assert_eq!(store.saves(), 1);
}

/// A connection whose token requests wait at a gate (after saying so), then either reach the
/// server or fail with `TimedOut`.
struct GatedConn<'g> {
    server: Arc<Server>,
    arrived: mpsc::Sender<()>,
    release: &'g Mutex<mpsc::Receiver<bool>>,
}

impl ErrorType for GatedConn<'_> {
    type Error = ErrorKind;
}

impl Transport for GatedConn<'_> {
    fn send(&mut self, request: &Request<'_>, body: &mut [u8]) -> Result<Response, ErrorKind> {
        if request.endpoint == Endpoint::Auth {
            self.arrived.send(()).unwrap();
            if !self.release.lock().unwrap().recv().unwrap() {
                return Err(ErrorKind::TimedOut);
            }
        }
        Transport::send(&mut Conn(self.server.clone()), request, body)
    }
}

#[test]
fn a_late_failure_of_an_abandoned_refresh_does_not_fail_the_next_one() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    // A refresh without an answer for 30 s counts as failed.
    let policy = RefreshPolicy {
        request_timeout: jwt_refresh::Duration::from_secs(30),
        ..policy()
    };
    let client: Shared = SharedClient::new(
        Session::new(protocol(), policy),
        clock.clone(),
        SlowStore(store.clone(), 0),
    );
    assert_eq!(send(&client, &server, &clock), 200);
    let gate = |tx| {
        let (release_tx, release_rx) = mpsc::channel::<bool>();
        (release_tx, Mutex::new(release_rx), tx)
    };
    let (arrived_tx, arrived_rx) = mpsc::channel::<()>();
    let (release_a, gate_a, _) = gate(());
    let (release_b, gate_b, _) = gate(());

    // One request from a thread whose token requests wait at `gate`.
    let gated_send = |gate| {
        let mut conn = GatedConn {
            server: server.clone(),
            arrived: arrived_tx.clone(),
            release: gate,
        };
        let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
        client
            .send(&mut conn, &mut clock.clone(), &API, &mut scratch, &mut body)
            .map(|r| r.status)
    };

    let (a, b) = thread::scope(|s| {
        // t=280 s: thread A's refresh hangs in its transport.
        clock.advance_secs(280);
        let a = s.spawn(|| gated_send(&gate_a));
        arrived_rx.recv().unwrap();
        // t=311 s: the session gave up on it (the token expired at 300 s), so thread B
        // refreshes in its turn.
        clock.advance_secs(31);
        let b = s.spawn(|| gated_send(&gate_b));
        arrived_rx.recv().unwrap();
        // A's transport now gives up, while B's refresh is in flight (A then waits for B's);
        // 100 ms later B's is answered. (Were A's failure reported only after B's answer, the
        // test would pass without showing anything; it cannot fail because of the timing.)
        release_a.send(false).unwrap();
        thread::sleep(StdDuration::from_millis(100));
        release_b.send(true).unwrap();
        (a.join().unwrap(), b.join().unwrap())
    });

    // B's refresh was not counted as failed by A's late failure: one failure (A's, abandoned),
    // one refresh, and B's request went out with the new token.
    assert_eq!(b.ok(), Some(200));
    assert!(a.is_err() || a.ok() == Some(200));
    let stats = client.stats();
    assert_eq!((stats.refreshes, stats.failures), (1, 1));
    assert_eq!(server.seen(|s| (s.refreshes, s.blacklisted)), (1, 0));
    assert_eq!(store.saves(), 2);
}

/// A clock that, on one thread and once armed, returns its `n`-th reading only after a 300 ms
/// (real) stall: the thread reads the time, is preempted, then uses the reading.
#[derive(Clone)]
struct StallClock {
    inner: MockClock,
    stall_on: Arc<Mutex<Option<(thread::ThreadId, u32)>>>,
}

impl Clock for StallClock {
    fn now(&self) -> jwt_refresh::Instant {
        let now = self.inner.now();
        let stall = {
            let mut armed = self.stall_on.lock().unwrap();
            let due = match armed.as_mut() {
                Some((id, n)) if *id == thread::current().id() => {
                    *n -= 1;
                    *n == 0
                }
                _ => false,
            };
            if due {
                *armed = None;
            }
            due
        };
        if stall {
            thread::sleep(StdDuration::from_millis(300));
        }
        now
    }

    fn unix_time(&self) -> Option<UnixTime> {
        self.inner.unix_time()
    }
}

#[test]
fn a_time_read_while_another_caller_moves_the_session_on_does_not_move_deadlines() {
    let (clock, store) = (clock(), MemStore::new());
    let server = Server::new(&clock, 0);
    let stalling = StallClock {
        inner: clock.clone(),
        stall_on: Arc::new(Mutex::new(None)),
    };
    let client = SharedClient::<'static, StdRawMutex, _, _>::new(
        Session::new(protocol(), policy()),
        stalling.clone(),
        SlowStore(store, 0),
    );
    let send = || {
        let (mut scratch, mut body) = ([0u8; 2048], [0u8; 4096]);
        client
            .send(
                &mut Conn(server.clone()),
                &mut clock.clone(),
                &API,
                &mut scratch,
                &mut body,
            )
            .map(|r| r.status)
    };

    // t=0: login; a 5-minute token, its refresh due at t=270 s.
    assert_eq!(send().ok(), Some(200));
    clock.advance_secs(100);
    thread::scope(|s| {
        // t=100 s: B sends; its second reading of the clock (the driver's, as it decides) is
        // used 300 ms (real) after it was taken...
        let b = s.spawn(|| {
            *stalling.stall_on.lock().unwrap() = Some((thread::current().id(), 2));
            send()
        });
        // ... while A, at t=200 s, sends too.
        thread::sleep(StdDuration::from_millis(100));
        clock.advance_secs(100);
        assert_eq!(send().ok(), Some(200));
        assert_eq!(b.join().unwrap().ok(), Some(200));
    });
    // t=210 s: still well before the refresh is due. Had B's reading (t=100 s) reached the
    // session after A's (t=200 s), the session would have taken it for the clock going back
    // 100 s and moved every deadline earlier: a refresh now.
    clock.advance_secs(10);
    assert_eq!(send().ok(), Some(200));
    assert_eq!(server.seen(|s| s.refreshes), 0);
    assert_eq!(client.stats().refreshes, 0);
}
