//! The discrete-event engine: a simulated clock in milliseconds, one pending event per device
//! on a timing wheel, a token endpoint with a per-second capacity and outage windows, and two
//! kinds of device: the crate's real `Session` driven the way `Client::send` drives it, and the
//! common browser pattern modelled in a few lines.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_refresh::protocol::{Credentials, Grant, SimpleJwt};
use jwt_refresh::{
    ApiVerdict, Instant, Output, Protocol, RefreshPolicy, Session, TimeClaims, TokenId,
    TokenResponse,
};
use serde::Serialize;

/// The servers' wall clock (Unix seconds) at simulated time zero. Every clock in the simulation
/// agrees: the point is load, not skew.
pub const EPOCH: u64 = 1_700_000_000;

/// SimpleJWT's default refresh token lifetime (one day): longer than any run, so the only way
/// back to a login is a failure the client chose to treat as one.
const REFRESH_LIFETIME_S: u64 = 86_400;

const CREDENTIALS: Credentials<'static> = Credentials {
    username: "device",
    password: "secret",
};

/// SplitMix64 of `x`: per-device draws that do not depend on the order of anything else.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A draw for device `device`, purpose `what`, under `seed`.
pub fn draw(seed: u64, device: usize, what: u64) -> u64 {
    mix(mix(mix(seed) ^ device as u64) ^ what)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScenarioKind {
    /// Every device logs in within the same second.
    Provisioning,
    /// A steady fleet meets a token-endpoint outage.
    Outage,
    /// A fleet that booted over one lifetime, watched for twelve.
    Steady,
}

#[derive(Clone, Copy, Debug)]
pub struct Scenario {
    pub kind: ScenarioKind,
    /// Devices boot (and log in) uniformly within `[0, boot_spread_ms)`.
    pub boot_spread_ms: u64,
    /// The token endpoint answers 503 to every request arriving in `[start, end)`.
    pub outage_ms: Option<(u64, u64)>,
    /// The seconds `[from, to)` over which the load figures are taken; the run ends at `to`.
    pub window_s: (u64, u64),
}

impl Scenario {
    pub fn name(&self) -> &'static str {
        match self.kind {
            ScenarioKind::Provisioning => "provisioning",
            ScenarioKind::Outage => "outage",
            ScenarioKind::Steady => "steady",
        }
    }

    pub fn end_ms(&self) -> u64 {
        self.window_s.1 * 1000
    }
}

/// How a device decides to refresh.
#[derive(Clone, Copy, Debug)]
pub enum Policy {
    /// The crate's `Session` with this policy (its `seed` is replaced per device).
    Crate(RefreshPolicy),
    /// The browser pattern: decode `exp`, refresh when less than `threshold_ms` remain, no
    /// jitter, retry at once on failure (falling back to a login, retried at once).
    Fixed { threshold_ms: u64 },
}

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub devices: usize,
    /// Requests per second the token endpoint serves; the rest get 429.
    pub capacity: u32,
    /// One-way network latency, in milliseconds (a round trip is twice this).
    pub latency_ms: u64,
    /// Access token lifetime (`exp - iat`), in seconds.
    pub lifetime_s: u64,
    /// Each device sends an API request every `period` with `period` uniform in this range (ms).
    pub period_ms: (u64, u64),
    /// `ClientConfig::max_wait`: the longest one request waits for a usable token.
    pub max_wait_ms: u64,
    pub seed: u64,
}

/// Token-endpoint traffic arriving in one second.
#[derive(Clone, Copy, Debug, Default)]
pub struct Load {
    /// Refresh requests offered (served or not).
    pub refresh: u32,
    /// Login requests offered, except the scenario's initial logins (served or not).
    pub login: u32,
    /// Requests turned away by the capacity limit (429).
    pub rejected: u32,
    /// Requests that met the outage (503).
    pub down: u32,
}

impl Load {
    pub fn offered(&self) -> u32 {
        self.refresh + self.login
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct Counters {
    /// API requests sent.
    pub api_sent: u64,
    /// Sends with `now >= expires_at` by the device's own schedule (the session's lease; the
    /// decoded `exp` for the browser pattern).
    pub expired_device: u64,
    /// Sends that reached the API at or after the token's real `exp`.
    pub expired_server: u64,
    /// Sends counted by either view.
    pub expired_any: u64,
    /// API requests not sent within `max_wait` of being due (the client gave up, or sent late).
    pub requests_failed: u64,
    /// Devices that logged in again after their initial login.
    pub devices_relogged: u64,
    /// The scenario's initial logins (outside the capacity model and the figures).
    pub initial_logins: u64,
    /// Discrete events processed.
    pub events: u64,
}

pub struct RunResult {
    pub policy: String,
    pub scenario: Scenario,
    pub devices: usize,
    pub load: Vec<Load>,
    pub counters: Counters,
    /// For each device that got a token after the outage's end, how long after (ms), sorted.
    pub recovery_ms: Vec<u64>,
    pub elapsed: std::time::Duration,
}

impl RunResult {
    /// By when the fraction `q` of the fleet had a new token after the outage's end (seconds);
    /// `None` without an outage or when fewer devices got one before the end of the run.
    pub fn recovered_by(&self, q: f64) -> Option<f64> {
        self.scenario.outage_ms?;
        let k = ((q * self.devices as f64).ceil() as usize).max(1);
        self.recovery_ms.get(k - 1).map(|&ms| ms as f64 / 1000.0)
    }

    fn window(&self) -> &[Load] {
        let (from, to) = self.scenario.window_s;
        &self.load[from as usize..to as usize]
    }

    /// The busiest second in the window: (requests, second).
    pub fn peak(&self) -> (u32, u64) {
        let from = self.scenario.window_s.0;
        self.window()
            .iter()
            .enumerate()
            .map(|(i, l)| (l.offered(), from + i as u64))
            .max_by_key(|&(n, s)| (n, Reverse(s)))
            .unwrap_or((0, from))
    }

    /// The busiest second after the event: after the outage ends, or (provisioning) the whole
    /// window; `None` for the steady scenario.
    pub fn peak_after(&self) -> Option<(u32, u64)> {
        let from = match (self.scenario.kind, self.scenario.outage_ms) {
            (ScenarioKind::Steady, _) => return None,
            (_, Some((_, end))) => end.div_ceil(1000),
            (_, None) => self.scenario.window_s.0,
        };
        let to = self.scenario.window_s.1;
        (from..to)
            .map(|s| (self.load[s as usize].offered(), s))
            .max_by_key(|&(n, s)| (n, Reverse(s)))
    }

    /// The busiest second during the outage, if there is one.
    pub fn peak_during(&self) -> Option<(u32, u64)> {
        let (a, b) = self.scenario.outage_ms?;
        (a / 1000..b.div_ceil(1000).min(self.scenario.window_s.1))
            .map(|s| (self.load[s as usize].offered(), s))
            .max_by_key(|&(n, s)| (n, Reverse(s)))
    }

    pub fn mean(&self) -> f64 {
        let w = self.window();
        w.iter().map(|l| f64::from(l.offered())).sum::<f64>() / w.len().max(1) as f64
    }

    pub fn total(&self, f: impl Fn(&Load) -> u32) -> u64 {
        self.load.iter().map(|l| u64::from(f(l))).sum()
    }
}

// ---------------------------------------------------------------------------------------------
// Tokens: one access and one refresh token per issuing second, minted once.

#[derive(Serialize)]
struct Claims {
    token_type: &'static str,
    exp: u64,
    iat: u64,
    jti: String,
    user_id: &'static str,
}

/// What the token endpoint answers when it issues in a given second. Tokens carry SimpleJWT's
/// claims; every device served in the same second gets the same bytes, which changes nothing
/// for scheduling (the session reads `exp` and `iat` only) and keeps minting to one token per
/// second instead of one per refresh.
pub struct Tokens {
    /// `{"access":".."}`: a refresh answer (no rotation, SimpleJWT's default).
    refresh_body: Vec<String>,
    /// `{"refresh":"..","access":".."}`: a login answer.
    login_body: Vec<String>,
    /// The access token's `exp` in simulated milliseconds, decoded from the token itself.
    exp_ms: Vec<u64>,
}

impl Tokens {
    pub fn mint(seconds: u64, lifetime_s: u64) -> Tokens {
        let key = EncodingKey::from_secret(b"fleet-simulation");
        let token = |kind: &'static str, s: u64, lifetime: u64| {
            let claims = Claims {
                token_type: kind,
                exp: EPOCH + s + lifetime,
                iat: EPOCH + s,
                jti: format!("{:016x}{s:016x}", mix(s) ^ kind.len() as u64),
                user_id: "1",
            };
            encode(&Header::default(), &claims, &key).expect("HS256 signing")
        };
        let mut tokens = Tokens {
            refresh_body: Vec::new(),
            login_body: Vec::new(),
            exp_ms: Vec::new(),
        };
        for s in 0..seconds {
            let access = token("access", s, lifetime_s);
            let refresh = token("refresh", s, REFRESH_LIFETIME_S);
            let exp = TimeClaims::decode(&access)
                .ok()
                .and_then(|t| t.exp)
                .expect("a minted token has exp");
            tokens.exp_ms.push((exp.as_secs() - EPOCH) * 1000);
            tokens
                .refresh_body
                .push(format!(r#"{{"access":"{access}"}}"#));
            tokens
                .login_body
                .push(format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#));
        }
        tokens
    }
}

// ---------------------------------------------------------------------------------------------
// The token endpoint.

#[derive(Clone, Copy, Debug)]
enum Outcome {
    /// 200 with the tokens issued in this second.
    Issued(usize),
    /// 429 from the capacity limit.
    Busy,
    /// 503: the outage.
    Down,
}

struct Server<'t> {
    capacity: u32,
    latency: u64,
    outage: Option<(u64, u64)>,
    /// Requests served per second (the capacity window).
    served: Vec<u32>,
    load: Vec<Load>,
    tokens: &'t Tokens,
}

impl Server<'_> {
    fn rtt(&self) -> u64 {
        2 * self.latency
    }

    fn down_at(&self, arrival: u64) -> bool {
        self.outage.is_some_and(|(a, b)| (a..b).contains(&arrival))
    }

    /// A token request sent at `send`; `initial` is a scenario's initial login, which is served
    /// outside the capacity model and not counted.
    ///
    /// Requests are decided in arrival order: the latency is the same for every request, and
    /// events are processed in time order.
    fn request(&mut self, send: u64, grant: Grant, initial: bool) -> Outcome {
        let arrival = send + self.latency;
        let s = (arrival / 1000) as usize;
        if initial {
            return Outcome::Issued(s);
        }
        let down = self.down_at(arrival);
        let load = &mut self.load[s];
        match grant {
            Grant::Refresh => load.refresh += 1,
            Grant::Login => load.login += 1,
        }
        if down {
            load.down += 1;
            Outcome::Down
        } else if self.served[s] >= self.capacity {
            load.rejected += 1;
            Outcome::Busy
        } else {
            self.served[s] += 1;
            Outcome::Issued(s)
        }
    }

    /// A client retrying `grant` every round trip from `send` on: counts every attempt whose
    /// failure is already certain (it arrives during the outage, or in a second whose capacity
    /// is already used up; both only get worse for it) and returns the send time of the first
    /// attempt that has to be decided in its turn. This keeps a retry loop at one event per
    /// device per second at most, however fast it spins.
    fn skip_doomed(&mut self, mut send: u64, grant: Grant, end: u64) -> u64 {
        let rtt = self.rtt();
        while send < end {
            let arrival = send + self.latency;
            let (until, outage) = match self.outage {
                Some((a, b)) if (a..b).contains(&arrival) => (b, true),
                _ if self.served[(arrival / 1000) as usize] >= self.capacity => {
                    ((arrival / 1000 + 1) * 1000, false)
                }
                _ => return send,
            };
            // Attempts arriving at arrival + k * rtt < until, second by second.
            let until = until.min(end + self.latency);
            let mut at = arrival;
            while at < until {
                let s = at / 1000;
                let second_end = ((s + 1) * 1000).min(until);
                let n = (second_end - at).div_ceil(rtt);
                let load = &mut self.load[s as usize];
                match grant {
                    Grant::Refresh => load.refresh += n as u32,
                    Grant::Login => load.login += n as u32,
                }
                if outage {
                    load.down += n as u32;
                } else {
                    load.rejected += n as u32;
                }
                at += n * rtt;
            }
            send = at - self.latency;
        }
        send
    }
}

// ---------------------------------------------------------------------------------------------
// The event queue: at most one pending event per device. A timing wheel of 1 ms slots for the
// next minute or so (nearly every event), each slot a list linked through the devices; a heap
// beyond. Deterministic, and several times faster than a heap of 100,000 entries.

const WHEEL_BITS: u32 = 16;
const WHEEL_MASK: u64 = (1 << WHEEL_BITS) - 1;
const DEVICE_BITS: u32 = 24;
const NIL: u32 = u32::MAX;

struct Queue {
    /// The first device of each slot's list.
    heads: Vec<u32>,
    /// The device after each device in its slot's list.
    next: Vec<u32>,
    /// The list of the current millisecond, being taken.
    current: u32,
    now: u64,
    far: BinaryHeap<Reverse<u64>>,
    len: usize,
}

impl Queue {
    fn new(devices: usize) -> Queue {
        Queue {
            heads: vec![NIL; 1 << WHEEL_BITS],
            next: vec![NIL; devices],
            current: NIL,
            now: 0,
            far: BinaryHeap::new(),
            len: 0,
        }
    }

    fn push(&mut self, at: u64, device: usize) {
        debug_assert!(at >= self.now, "an event in the past");
        self.len += 1;
        let head = if at <= self.now {
            &mut self.current
        } else if at - self.now <= WHEEL_MASK {
            &mut self.heads[(at & WHEEL_MASK) as usize]
        } else {
            self.far.push(Reverse((at << DEVICE_BITS) | device as u64));
            return;
        };
        self.next[device] = *head;
        *head = device as u32;
    }

    fn pop(&mut self) -> Option<(u64, usize)> {
        if self.len == 0 {
            return None;
        }
        while self.current == NIL {
            self.now += 1;
            self.current =
                std::mem::replace(&mut self.heads[(self.now & WHEEL_MASK) as usize], NIL);
            while let Some(&Reverse(key)) = self.far.peek() {
                if key >> DEVICE_BITS > self.now {
                    break;
                }
                self.far.pop();
                let device = (key & ((1 << DEVICE_BITS) - 1)) as usize;
                self.next[device] = self.current;
                self.current = device as u32;
            }
        }
        let device = self.current as usize;
        self.current = self.next[device];
        self.len -= 1;
        Some((self.now, device))
    }

    /// The device of the next event, when it is in this millisecond or the next (to load its
    /// state early).
    fn peek(&self) -> Option<usize> {
        let next = match self.current {
            NIL => self.heads[((self.now + 1) & WHEEL_MASK) as usize],
            device => device,
        };
        (next != NIL).then_some(next as usize)
    }
}

/// What every device has: an API request every `period`, from `phase` on.
#[derive(Clone, Copy, Debug)]
struct Cadence {
    phase: u64,
    period: u64,
}

impl Cadence {
    /// The first tick at or after `t`.
    fn next_tick(&self, t: u64) -> u64 {
        let k = t.saturating_sub(self.phase).div_ceil(self.period);
        self.phase + k * self.period
    }
}

/// Shared by both kinds of device.
struct World<'t> {
    server: Server<'t>,
    queue: Queue,
    counters: Counters,
    end: u64,
    max_wait: u64,
    /// The outage's end, from which recoveries are timed.
    outage_end: Option<u64>,
    recovery_ms: Vec<u64>,
}

impl World<'_> {
    /// A device got a token at `now`; the first one after the outage is its recovery.
    fn got_token(&mut self, now: u64, recovered: &mut bool) {
        if let Some(end) = self.outage_end {
            if now >= end && !*recovered {
                *recovered = true;
                self.recovery_ms.push(now - end);
            }
        }
    }

    /// The device's request that was due at `due` is over at `t`: the next one is due at the
    /// next tick after both.
    fn finish(&mut self, device: usize, cadence: Cadence, due: u64, t: u64) {
        let at = cadence.next_tick(t.max(due + 1));
        if at < self.end {
            self.queue.push(at, device);
        }
    }

    /// An API request with a token that the server considers expired from `real_exp_ms` on;
    /// returns the status the API answers.
    fn api_send(&mut self, now: u64, device_expired: bool, real_exp_ms: u64) -> u16 {
        let server_expired = now + self.server.latency >= real_exp_ms;
        self.counters.api_sent += 1;
        self.counters.expired_device += u64::from(device_expired);
        self.counters.expired_server += u64::from(server_expired);
        self.counters.expired_any += u64::from(device_expired || server_expired);
        if server_expired {
            401
        } else {
            200
        }
    }
}

pub fn run(
    policy_name: &str,
    policy: Policy,
    scenario: Scenario,
    p: &Params,
    tokens: &Tokens,
) -> RunResult {
    let started = std::time::Instant::now();
    let end = scenario.end_ms();
    let seconds = (end / 1000 + 2 + p.latency_ms / 500) as usize;
    assert!(tokens.exp_ms.len() >= seconds, "too few tokens minted");
    assert!(p.devices < 1 << DEVICE_BITS, "too many devices");
    let mut world = World {
        server: Server {
            capacity: p.capacity,
            latency: p.latency_ms,
            outage: scenario.outage_ms,
            served: vec![0; seconds],
            load: vec![Load::default(); seconds],
            tokens,
        },
        queue: Queue::new(p.devices),
        counters: Counters::default(),
        end,
        max_wait: p.max_wait_ms,
        outage_end: scenario.outage_ms.map(|(_, end)| end),
        recovery_ms: Vec::new(),
    };
    // The same devices (cadence, boot time) for every policy in a scenario.
    let scenario_seed = p.seed ^ mix(scenario.kind as u64 + 1);
    let cadences: Vec<Cadence> = (0..p.devices)
        .map(|i| {
            let (lo, hi) = p.period_ms;
            Cadence {
                phase: draw(scenario_seed, i, 1) % scenario.boot_spread_ms.max(1),
                period: lo + draw(scenario_seed, i, 2) % (hi - lo + 1),
            }
        })
        .collect();
    for (i, c) in cadences.iter().enumerate() {
        world.queue.push(c.phase, i);
    }
    match policy {
        Policy::Crate(policy) => {
            let policy = |i: usize| RefreshPolicy {
                seed: draw(p.seed, i, 3),
                ..policy
            };
            run_crate(&mut world, &cadences, policy);
        }
        Policy::Fixed { threshold_ms } => run_fixed(&mut world, &cadences, threshold_ms),
    }
    world.recovery_ms.sort_unstable();
    RunResult {
        policy: policy_name.to_owned(),
        scenario,
        devices: p.devices,
        load: world.server.load,
        counters: world.counters,
        recovery_ms: world.recovery_ms,
        elapsed: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------------------
// The crate's session, driven like `Client::send`: poll, act on the output until it says
// `Send`, sleep through `Timeout`s for at most `max_wait`, one refresh and retry after a 401.

type DeviceSession = Session<'static, 384, 320>;

#[derive(Clone, Copy, Debug)]
enum Next {
    /// The next API request is due.
    Tick,
    /// The request in progress continues (after a `Timeout`, or to retry after a 401).
    Resume,
    /// The token endpoint's answer arrives.
    Answer(Grant, Outcome),
}

struct CrateDevice {
    session: DeviceSession,
    next: Next,
    /// When the request in progress became due.
    due: u64,
    /// The real `exp` of the session's current access token (what the server checks).
    real_exp_ms: u64,
    logged_in: bool,
    relogged: bool,
    recovered: bool,
}

/// What `poll` said, without the borrow.
enum Step {
    Send(TokenId),
    Token(Grant),
    Persist,
    Wait(Instant),
    Stuck,
}

fn run_crate(world: &mut World<'_>, cadences: &[Cadence], policy: impl Fn(usize) -> RefreshPolicy) {
    let protocol = Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(CREDENTIALS),
        ..SimpleJwt::default()
    });
    let mut devices: Vec<CrateDevice> = (0..cadences.len())
        .map(|i| CrateDevice {
            session: Session::new(protocol, policy(i)),
            next: Next::Tick,
            due: 0,
            real_exp_ms: 0,
            logged_in: false,
            relogged: false,
            recovered: false,
        })
        .collect();
    let tokens = world.server.tokens;
    while let Some((now, i)) = world.queue.pop() {
        world.counters.events += 1;
        if let Some(j) = world.queue.peek() {
            // Start fetching the next device's state from memory while this one runs: with
            // 100,000 devices, those cache misses are most of the time.
            let next = &devices[j];
            std::hint::black_box((next.due, next.session.lease(), next.session.is_refreshing()));
        }
        let d = &mut devices[i];
        match d.next {
            Next::Tick => d.due = now,
            Next::Resume => {}
            Next::Answer(grant, outcome) => {
                let (status, body) = match outcome {
                    Outcome::Issued(s) => (
                        200,
                        match grant {
                            Grant::Refresh => tokens.refresh_body[s].as_bytes(),
                            Grant::Login => tokens.login_body[s].as_bytes(),
                        },
                    ),
                    Outcome::Busy => (429, &b"{}"[..]),
                    Outcome::Down => (503, &b""[..]),
                };
                let answer = TokenResponse {
                    status,
                    body,
                    retry_after: None,
                };
                let accepted =
                    d.session
                        .handle_token_response(Instant::from_millis(now), None, &answer);
                if let (Ok(_), Outcome::Issued(s)) = (accepted, outcome) {
                    d.real_exp_ms = tokens.exp_ms[s];
                    d.logged_in |= grant == Grant::Login;
                    world.got_token(now, &mut d.recovered);
                }
            }
        }
        drive_crate(world, i, d, cadences[i], now);
    }
}

fn drive_crate(world: &mut World<'_>, i: usize, d: &mut CrateDevice, cadence: Cadence, now: u64) {
    let rtt = world.server.rtt();
    let mut buf = [0u8; 512];
    // Bounded, like `Client::send` (whose bound is `ClientConfig::max_steps`). 64 polls is
    // ample: each event returns at its first request or wait, only a save polls again.
    for _ in 0..64 {
        let step = match d.session.poll(Instant::from_millis(now), &mut buf) {
            Output::Send { token, .. } => Step::Send(token),
            Output::Refresh(_) => Step::Token(Grant::Refresh),
            Output::Login(_) => Step::Token(Grant::Login),
            Output::Persist(_) => Step::Persist,
            Output::Timeout(at) => Step::Wait(at),
            Output::LoginRequired(_) | Output::Failed(_) => Step::Stuck,
        };
        match step {
            Step::Send(token) => {
                let expired = d
                    .session
                    .lease()
                    .is_none_or(|l| now >= l.expires_at.as_millis());
                let status = world.api_send(now, expired, d.real_exp_ms);
                let done = now + rtt;
                world.counters.requests_failed += u64::from(done - d.due > world.max_wait);
                match d
                    .session
                    .handle_api_status(Instant::from_millis(done), token, status)
                {
                    ApiVerdict::Retry if done < world.end => {
                        d.next = Next::Resume;
                        world.queue.push(done, i);
                    }
                    _ => {
                        d.next = Next::Tick;
                        world.finish(i, cadence, d.due, done);
                    }
                }
                return;
            }
            Step::Token(grant) => {
                let initial = grant == Grant::Login && !d.logged_in;
                if grant == Grant::Login && d.logged_in && !d.relogged {
                    d.relogged = true;
                    world.counters.devices_relogged += 1;
                }
                world.counters.initial_logins += u64::from(initial);
                let outcome = world.server.request(now, grant, initial);
                d.next = Next::Answer(grant, outcome);
                world.queue.push(now + rtt, i);
                return;
            }
            Step::Persist => d.session.handle_persisted(true),
            Step::Wait(at) => {
                let at = at.as_millis().max(now + 1);
                if at - d.due > world.max_wait || at >= world.end {
                    // `Client::send` gives up with `RetryLater`; the device tries again at its
                    // next tick.
                    world.counters.requests_failed += 1;
                    d.next = Next::Tick;
                    world.finish(i, cadence, d.due, now);
                } else {
                    d.next = Next::Resume;
                    world.queue.push(at, i);
                }
                return;
            }
            Step::Stuck => break,
        }
    }
    world.counters.requests_failed += 1;
    d.next = Next::Tick;
    world.finish(i, cadence, d.due, now);
}

// ---------------------------------------------------------------------------------------------
// The common browser pattern, outside the crate:
//
//     if (!access || decode(access).exp - now < 300) await refresh()   // before every request
//     refresh(): POST refresh; on failure: log in; a failed login is retried at once
//
// With 5-minute tokens `exp - now < 300` always holds: it refreshes before every request.

#[derive(Clone, Copy, Debug)]
enum FixedNext {
    Tick,
    /// Send this token request now (a retry that had to wait for its turn).
    Attempt(Grant),
    Answer(Grant, Outcome),
}

#[derive(Clone, Copy, Debug)]
struct FixedDevice {
    /// The access token's `exp` (decoded from it), in simulated ms; 0 when there is none.
    exp_ms: u64,
    has_refresh: bool,
    logged_in: bool,
    relogged: bool,
    recovered: bool,
    due: u64,
    next: FixedNext,
}

fn run_fixed(world: &mut World<'_>, cadences: &[Cadence], threshold_ms: u64) {
    let mut devices = vec![
        FixedDevice {
            exp_ms: 0,
            has_refresh: false,
            logged_in: false,
            relogged: false,
            recovered: false,
            due: 0,
            next: FixedNext::Tick,
        };
        cadences.len()
    ];
    let tokens = world.server.tokens;
    while let Some((now, i)) = world.queue.pop() {
        world.counters.events += 1;
        let d = &mut devices[i];
        let cadence = cadences[i];
        let grant = match d.next {
            FixedNext::Tick => {
                d.due = now;
                if d.exp_ms == 0 || !d.has_refresh {
                    Some(Grant::Login)
                } else if d.exp_ms < now + threshold_ms {
                    Some(Grant::Refresh)
                } else {
                    None
                }
            }
            FixedNext::Attempt(grant) => Some(grant),
            FixedNext::Answer(grant, Outcome::Issued(s)) => {
                d.exp_ms = tokens.exp_ms[s];
                world.got_token(now, &mut d.recovered);
                if grant == Grant::Login {
                    d.has_refresh = true;
                    d.logged_in = true;
                }
                None
            }
            FixedNext::Answer(grant, Outcome::Busy | Outcome::Down) => {
                if grant == Grant::Refresh {
                    // The refresh failed: log out, log in again.
                    d.has_refresh = false;
                    if !d.relogged {
                        d.relogged = true;
                        world.counters.devices_relogged += 1;
                    }
                }
                // Retry at once: attempts certain to fail are counted without an event each.
                let at = world.server.skip_doomed(now, Grant::Login, world.end);
                if at >= world.end {
                    continue;
                }
                if at > now {
                    d.next = FixedNext::Attempt(Grant::Login);
                    world.queue.push(at, i);
                    continue;
                }
                Some(Grant::Login)
            }
        };
        match grant {
            Some(grant) => {
                let initial = grant == Grant::Login && !d.logged_in;
                world.counters.initial_logins += u64::from(initial);
                let outcome = world.server.request(now, grant, initial);
                d.next = FixedNext::Answer(grant, outcome);
                world.queue.push(now + world.server.rtt(), i);
            }
            None => {
                let expired = now >= d.exp_ms;
                let _status = world.api_send(now, expired, d.exp_ms);
                let done = now + world.server.rtt();
                world.counters.requests_failed += u64::from(done - d.due > world.max_wait);
                d.next = FixedNext::Tick;
                world.finish(i, cadence, d.due, done);
            }
        }
    }
}
