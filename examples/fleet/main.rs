//! Fleet view: a deterministic discrete-event simulation of a fleet of devices (100,000 by
//! default) refreshing JWT access tokens against one token endpoint, to show what the refresh
//! policy does to that endpoint's load.
//!
//! ```text
//! cargo run --release --example fleet [-- --devices N --capacity RPS --seed S ...]
//! ```
//!
//! Prints a table and one JSON line per policy and scenario, and writes
//! `target/fleet/load.csv` (requests per second, per scenario and policy) and
//! `target/fleet/fleet.svg` (the same, plotted).
//!
//! The model:
//!
//! - Time is simulated in 1 ms instants; load is counted per second of arrival at the server.
//!   No threads per device: one pending event per device on a timing wheel. Runs are seeded and
//!   deterministic; independent runs go in parallel.
//! - Every device of the crate's policies runs the crate's real `Session` and `RefreshPolicy`
//!   (its own `seed` each), driven the way `Client::send` drives it: before each API request
//!   `poll` and act until `Send`, sleep through `Timeout`s for at most `max_wait` (60 s), one
//!   refresh and retry after a 401. Nothing refreshes between requests.
//! - Devices speak SimpleJWT: 5-minute access tokens (its default), 1-day refresh tokens, no
//!   rotation. Tokens are real HS256 JWTs with SimpleJWT's claims, minted once per issuing
//!   second and shared by every device served in that second: the session schedules from
//!   `exp - iat` only, so this is exact for scheduling and keeps minting to a few thousand
//!   tokens instead of millions.
//! - Each device sends an API request every `period`, its own, uniform in 10-60 s.
//! - The token endpoint serves `--capacity` requests per second (first come, first served in
//!   each second) and answers 429 to the rest, 503 during an outage; one-way latency 50 ms.
//!   The default capacity, 5,000 requests/s, is sized for the common pattern: with 5-minute
//!   tokens it refreshes before every API request, so its steady load is the fleet's API request
//!   rate (about 3,600/s); the crate's is a tenth of that.
//! - A scenario's initial logins are its premise (served, not counted); the figures count
//!   refreshes and any later logins.
//! - The common browser pattern (`fixed-300s`) is modelled outside the crate, as it is written:
//!   decode `exp`, refresh when less than 300 s remain (with 5-minute tokens: before every
//!   request), no jitter; a failed refresh falls back to a login, and a failed login is retried
//!   at once (one round trip later) until it succeeds. Attempts certain to fail are counted
//!   without an event each.
//! - Expired sends are counted two ways: by the device (`now >= lease.expires_at` when the
//!   session says `Send`, which its invariant forbids) and by the server (the request reaches
//!   the API at or after the token's real `exp`, with the server's `iat` floored to the second).

mod plot;
mod sim;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use jwt_refresh::{Duration, RefreshPolicy};
use sim::{Params, Policy, RunResult, Scenario, ScenarioKind, Tokens};

const USAGE: &str = "\
usage: cargo run --release --example fleet -- [options]
  --devices N          fleet size (default 100000)
  --capacity RPS       token endpoint capacity, requests per second (default 5000)
  --lifetime S         access token lifetime in seconds (default 300)
  --latency-ms MS      one-way network latency (default 50)
  --seed N             simulation seed (default 7)
  --threads N          runs in parallel (default: available cores)
  --out DIR            where load.csv and fleet.svg go (default target/fleet)
  --policies LIST      comma-separated, from default, no-jitter, fixed-<N>s (the browser pattern
                       with an N-second threshold) and the --policy names
                       (default default,fixed-300s,no-jitter)
  --policy NAME:K=V,.. an extra crate policy: the defaults with these fields changed; keys
                       margin, first_jitter, jitter (per mille), min_margin, max_margin,
                       max_jitter, backoff_max (s), backoff_base (ms)
  --scenarios LIST     comma-separated, from provisioning,outage,steady (default all)";

struct Options {
    params: Params,
    threads: usize,
    out: PathBuf,
    policies: Vec<String>,
    extra: Vec<(String, RefreshPolicy)>,
    scenarios: Vec<ScenarioKind>,
}

fn parse_policy(spec: &str) -> Result<(String, RefreshPolicy), String> {
    let (name, fields) = spec
        .split_once(':')
        .ok_or_else(|| format!("--policy {spec}: expected NAME:KEY=VALUE,..."))?;
    let mut p = RefreshPolicy::default();
    for field in fields.split(',').filter(|f| !f.is_empty()) {
        let (key, value) = field
            .split_once('=')
            .ok_or_else(|| format!("--policy: {field} is not KEY=VALUE"))?;
        let n: u64 = value
            .parse()
            .map_err(|_| format!("--policy: {value} is not a whole number"))?;
        let permille = || u16::try_from(n).map_err(|_| format!("--policy: {n} is too large"));
        match key {
            "margin" => p.margin_permille = permille()?,
            "first_jitter" => p.first_jitter_permille = permille()?,
            "jitter" => p.jitter_permille = permille()?,
            "min_margin" => p.min_margin = Duration::from_secs(n),
            "max_margin" => p.max_margin = Duration::from_secs(n),
            "max_jitter" => p.max_jitter = Duration::from_secs(n),
            "backoff_max" => p.backoff_max = Duration::from_secs(n),
            "backoff_base" => p.backoff_base = Duration::from_millis(n),
            _ => return Err(format!("--policy: unknown key {key}")),
        }
    }
    Ok((name.to_owned(), p))
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        params: Params {
            devices: 100_000,
            capacity: 5_000,
            latency_ms: 50,
            lifetime_s: 300,
            period_ms: (10_000, 60_000),
            max_wait_ms: 60_000,
            seed: 7,
        },
        threads: std::thread::available_parallelism().map_or(1, |n| n.get()),
        out: PathBuf::from("target/fleet"),
        policies: ["default", "fixed-300s", "no-jitter"]
            .map(String::from)
            .to_vec(),
        extra: Vec::new(),
        scenarios: vec![
            ScenarioKind::Provisioning,
            ScenarioKind::Outage,
            ScenarioKind::Steady,
        ],
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "-h" || flag == "--help" {
            return Err(String::new());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || -> Result<u64, String> {
            value
                .parse()
                .map_err(|_| format!("{flag}: {value} is not a whole number"))
        };
        match flag.as_str() {
            "--devices" => o.params.devices = number()?.clamp(1, (1 << 24) - 1) as usize,
            "--capacity" => o.params.capacity = number()?.min(u64::from(u32::MAX)) as u32,
            "--lifetime" => o.params.lifetime_s = number()?.max(2),
            "--latency-ms" => o.params.latency_ms = number()?.min(10_000),
            "--seed" => o.params.seed = number()?,
            "--threads" => o.threads = number()?.max(1) as usize,
            "--out" => o.out = PathBuf::from(&value),
            "--policies" => o.policies = value.split(',').map(String::from).collect(),
            "--policy" => {
                let (name, p) = parse_policy(&value)?;
                if !o.policies.contains(&name) {
                    o.policies.push(name.clone());
                }
                o.extra.push((name, p));
            }
            "--scenarios" => {
                o.scenarios = value
                    .split(',')
                    .map(|s| match s {
                        "provisioning" => Ok(ScenarioKind::Provisioning),
                        "outage" => Ok(ScenarioKind::Outage),
                        "steady" => Ok(ScenarioKind::Steady),
                        _ => Err(format!("unknown scenario {s}")),
                    })
                    .collect::<Result<_, _>>()?;
            }
            _ => return Err(format!("unknown option {flag}")),
        }
    }
    Ok(o)
}

fn policy_named(name: &str, o: &Options) -> Result<Policy, String> {
    if let Some((_, p)) = o.extra.iter().find(|(n, _)| n == name) {
        return Ok(Policy::Crate(*p));
    }
    match name {
        "default" => Ok(Policy::Crate(RefreshPolicy::default())),
        "no-jitter" => Ok(Policy::Crate(RefreshPolicy {
            jitter_permille: 0,
            first_jitter_permille: 0,
            ..RefreshPolicy::default()
        })),
        // `fixed-300s` is the common pattern; `fixed-<N>s` its variants.
        _ => name
            .strip_prefix("fixed-")
            .and_then(|n| n.strip_suffix('s'))
            .and_then(|n| n.parse::<u64>().ok())
            .map(|secs| Policy::Fixed {
                threshold_ms: secs * 1000,
            })
            .ok_or_else(|| format!("unknown policy {name}")),
    }
}

/// The scenarios, scaled to the token lifetime `l` (seconds).
fn scenario(kind: ScenarioKind, l: u64) -> Scenario {
    match kind {
        // Everyone logs in within the first second; watched for 12 lifetimes.
        ScenarioKind::Provisioning => Scenario {
            kind,
            boot_spread_ms: 1000,
            outage_ms: None,
            window_s: (0, 12 * l),
        },
        // Booted over one lifetime; from 3 lifetimes in, a 10-minute outage. Watched from 2
        // lifetimes in for 8 (the steady scenario too), and at least 5 after the outage.
        ScenarioKind::Outage => Scenario {
            kind,
            boot_spread_ms: l * 1000,
            outage_ms: Some((3 * l * 1000, 3 * l * 1000 + 600_000)),
            window_s: (2 * l, (10 * l).max(3 * l + 600 + 5 * l)),
        },
        ScenarioKind::Steady => Scenario {
            kind,
            boot_spread_ms: l * 1000,
            outage_ms: None,
            window_s: (2 * l, 10 * l),
        },
    }
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fleet: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let p = o.params;
    let started = std::time::Instant::now();
    let mut jobs = Vec::new();
    for &kind in &o.scenarios {
        for name in &o.policies {
            match policy_named(name, &o) {
                Ok(policy) => jobs.push((name.clone(), policy, scenario(kind, p.lifetime_s))),
                Err(e) => {
                    eprintln!("fleet: {e}\n{USAGE}");
                    return ExitCode::from(2);
                }
            }
        }
    }
    let seconds =
        jobs.iter().map(|(_, _, s)| s.window_s.1).max().unwrap_or(0) + 2 + p.latency_ms / 500;
    let tokens = Tokens::mint(seconds, p.lifetime_s);
    eprintln!(
        "fleet: {} runs of {} devices on {} threads ({} tokens minted in {:.1} s)",
        jobs.len(),
        p.devices,
        o.threads,
        2 * seconds,
        started.elapsed().as_secs_f64()
    );

    // Runs are independent and deterministic: run them in parallel, a few at a time, the long
    // ones (the crate's sessions) first so that the threads finish together.
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&k| matches!(jobs[k].1, Policy::Fixed { .. }));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<RunResult>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..o.threads.min(jobs.len()) {
            scope.spawn(|| {
                while let Some(&k) = order.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (name, policy, scenario) = &jobs[k];
                    let r = sim::run(name, *policy, *scenario, &p, &tokens);
                    eprintln!(
                        "fleet: {:<10} {:<12} {:>6.1} s, {} events",
                        r.policy,
                        r.scenario.name(),
                        r.elapsed.as_secs_f64(),
                        r.counters.events
                    );
                    *results[k].lock().expect("no panics while holding it") = Some(r);
                }
            });
        }
    });
    let results: Vec<RunResult> = results
        .into_iter()
        .filter_map(|m| m.into_inner().ok().flatten())
        .collect();
    let elapsed = started.elapsed();

    print_report(&results, &o, elapsed);
    if let Err(e) = write_outputs(&results, &o) {
        eprintln!("fleet: writing outputs: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

fn steady_mean(results: &[RunResult], policy: &str) -> Option<f64> {
    results
        .iter()
        .find(|r| r.policy == policy && r.scenario.kind == ScenarioKind::Steady)
        .map(RunResult::mean)
}

fn print_report(results: &[RunResult], o: &Options, elapsed: std::time::Duration) {
    let p = o.params;
    println!(
        "Fleet of {} devices, {} s access tokens, token endpoint capacity {} requests/s, \
         {} ms one-way latency, API requests every {}-{} s, seed {}.",
        p.devices,
        p.lifetime_s,
        p.capacity,
        p.latency_ms,
        p.period_ms.0 / 1000,
        p.period_ms.1 / 1000,
        p.seed
    );
    println!(
        "Load = refresh and login requests offered to the token endpoint per second (served or \
         not; a scenario's initial logins excluded), over the scenario's window.\n"
    );
    let mut table = String::new();
    let header = [
        [
            "policy",
            "scenario",
            "peak rps",
            "at s",
            "mean rps",
            "peak/",
            "peak/",
            "after/",
            "during/",
            "rejected",
            "re-login",
            "expired",
            "outage",
            "late",
            "recovered",
        ],
        [
            "",
            "",
            "",
            "",
            "",
            "mean",
            "steady",
            "steady",
            "steady",
            "(429)",
            "devices",
            "dev/srv",
            "503s",
            "sends",
            "p50/p99 s",
        ],
    ];
    for h in header {
        let _ = writeln!(
            table,
            "{:<11} {:<12} {:>8} {:>5} {:>8} {:>6} {:>6} {:>6} {:>7} {:>9} {:>8} {:>7} {:>10} {:>8} {:>10}",
            h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9], h[10], h[11], h[12],
            h[13], h[14]
        );
    }
    for r in results {
        let (peak, at) = r.peak();
        let mean = r.mean();
        let steady = steady_mean(results, &r.policy);
        let ratio = |peak: Option<(u32, u64)>| match (peak, steady) {
            (Some((n, _)), Some(m)) => format!("{:.2}", f64::from(n) / m),
            _ => "-".to_owned(),
        };
        let recovered = match (r.recovered_by(0.5), r.recovered_by(0.99)) {
            (Some(a), Some(b)) => format!("{a:.0}/{b:.0}"),
            (Some(a), None) => format!("{a:.0}/-"),
            _ => "-".to_owned(),
        };
        let c = r.counters;
        let _ = writeln!(
            table,
            "{:<11} {:<12} {:>8} {:>5} {:>8.1} {:>6.2} {:>6} {:>6} {:>7} {:>9} {:>8} {:>7} {:>10} {:>8} {:>10}",
            r.policy,
            r.scenario.name(),
            peak,
            at,
            mean,
            f64::from(peak) / mean.max(f64::MIN_POSITIVE),
            ratio(Some((peak, at))),
            ratio(r.peak_after()),
            ratio(r.peak_during()),
            r.total(|l| l.rejected),
            c.devices_relogged,
            format!("{}/{}", c.expired_device, c.expired_server),
            r.total(|l| l.down),
            c.requests_failed,
            recovered
        );
    }
    print!("{table}");
    println!(
        "\npeak/, after/, during/steady: the peak over the whole window, after the event (for \
         provisioning the whole window,\n  for the outage from its end on) and during the outage, \
         over the same policy's mean in the steady scenario.\n\
         rejected: 429s from the capacity limit. re-login: devices that logged in again after \
         their first login.\n\
         expired dev/srv: API requests sent with a token past the session's deadline (for the \
         browser pattern: past\n  the decoded exp), and requests that reached the API at or \
         after the token's real exp.\n\
         outage 503s: requests that met the outage. late sends: API requests not sent within \
         60 s of being due (the\n  crate gives up after Client::send's max_wait and tries \
         again at the next one; the browser pattern blocks).\n\
         recovered: seconds after the outage's end by which half and 99 % of the devices had a \
         new token.\n"
    );
    for r in results {
        let (peak, _) = r.peak();
        let mean = r.mean();
        // The outage's peaks during it and after its end, over the same policy's steady mean
        // (null without a steady run of that policy).
        let outage = match r.scenario.kind {
            ScenarioKind::Outage => {
                let steady = steady_mean(results, &r.policy);
                let ratio = |peak: Option<(u32, u64)>| match (peak, steady) {
                    (Some((n, _)), Some(m)) => format!("{:.2}", f64::from(n) / m),
                    _ => "null".to_owned(),
                };
                format!(
                    ",\"during_to_steady\":{},\"after_to_steady\":{}",
                    ratio(r.peak_during()),
                    ratio(r.peak_after())
                )
            }
            _ => String::new(),
        };
        println!(
            "{{\"policy\":\"{}\",\"scenario\":\"{}\",\"devices\":{},\"peak_rps\":{},\
             \"mean_rps\":{:.1},\"peak_to_mean\":{:.2},\"rejected\":{},\"logins\":{},\
             \"expired_sends\":{}{outage}}}",
            r.policy,
            r.scenario.name(),
            r.devices,
            peak,
            mean,
            f64::from(peak) / mean.max(f64::MIN_POSITIVE),
            r.total(|l| l.rejected),
            r.counters.devices_relogged,
            r.counters.expired_any
        );
    }
    println!(
        "\n{} runs in {:.1} s; CSV and plot in {}",
        results.len(),
        elapsed.as_secs_f64(),
        o.out.display()
    );
}

fn write_outputs(results: &[RunResult], o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(&o.out)?;
    let csv_path = o.out.join("load.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&csv_path)?);
    writeln!(
        csv,
        "scenario,policy,second,offered,refresh,login,rejected,outage_503"
    )?;
    for r in results {
        for (s, l) in r
            .load
            .iter()
            .enumerate()
            .take(r.scenario.window_s.1 as usize)
        {
            writeln!(
                csv,
                "{},{},{s},{},{},{},{},{}",
                r.scenario.name(),
                r.policy,
                l.offered(),
                l.refresh,
                l.login,
                l.rejected,
                l.down
            )?;
        }
    }
    csv.flush()?;
    let mut groups: Vec<Vec<&RunResult>> = Vec::new();
    for &kind in &o.scenarios {
        groups.push(results.iter().filter(|r| r.scenario.kind == kind).collect());
    }
    plot::plot(&o.out.join("fleet.svg"), &groups, o.params.capacity)?;
    Ok(())
}
