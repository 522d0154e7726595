//! jwt-refresh's `AsyncClient` on an emulated RISC-V microcontroller: embassy's executor and
//! timers, embassy-net (smoltcp) over a virtio-net device, reqwless for HTTP, against the real
//! Django SimpleJWT server of `tests/interop`, reached through QEMU's user network.
//!
//! One boot: read the run's settings from `firmware.cfg` (semihosting, written by run.sh),
//! bring the network up, restore the refresh token from the store, then send `requests` API
//! requests `interval_ms` apart through the client, printing one JSON line per request and a
//! summary (never a token). Exits 0 through semihosting only when every request got its 200.
//! run.sh boots it twice (the second boot restores the token the first one saved) and checks
//! the server's request log.
#![no_std]
#![no_main]

#[cfg(not(feature = "baseline"))]
mod app;
#[cfg(feature = "baseline")]
#[path = "baseline.rs"]
mod app;
mod clint;
mod config;
mod net;
mod stack;
mod store;

use embassy_executor::Spawner;
use embassy_net::dns::DnsSocket;
use embassy_net::tcp::client::{TcpClient, TcpClientState};
use embassy_net::{Ipv4Address, Ipv4Cidr, StackResources, StaticConfigV4};
use embassy_time::{Instant, Timer};
use semihosting::println;
use static_cell::StaticCell;

/// The test server, as QEMU's `guestfwd` rule presents it to the guest.
#[cfg_attr(feature = "baseline", allow(dead_code))]
const SERVER: &str = "http://10.0.2.100:8000";

/// The guest's address on QEMU's user network (10.0.2.0/24, gateway 10.0.2.2).
const ADDRESS: Ipv4Address = Ipv4Address::new(10, 0, 2, 15);
const GATEWAY: Ipv4Address = Ipv4Address::new(10, 0, 2, 2);

/// The TCP client reqwless connects through: one connection at a time (the transport opens one
/// per request), 2 KiB of buffer each way.
type Tcp = TcpClient<'static, 1, 2048, 2048>;

/// The token-related counts of a run, for the summary line.
#[derive(Default)]
struct Counts {
    refreshes: u32,
    logins: u32,
    failures: u32,
}

#[embassy_executor::task]
async fn net_task(mut runner: embassy_net::Runner<'static, net::VirtioNet>) -> ! {
    runner.run().await
}

/// Stops the run: prints why (never a secret) and exits with status 2.
fn fail(what: &str) -> ! {
    println!("{{\"fatal\":\"{}\"}}", what);
    semihosting::process::exit(2)
}

#[embassy_executor::main]
async fn main(spawner: Spawner) {
    stack::paint();
    clint::init();
    let Some(cfg) = config::load() else {
        fail("firmware.cfg is missing or malformed")
    };
    let device = match net::VirtioNet::probe() {
        Ok(device) => device,
        Err(net::NetError::NoDevice) => fail("no virtio-net device"),
        Err(net::NetError::Virtio(e)) => {
            println!("{{\"fatal\":\"virtio-net: {}\"}}", e);
            semihosting::process::exit(2)
        }
    };
    // smoltcp's seed (TCP initial sequence numbers, local ports) differs at every boot: here
    // from run.sh's settings file, on hardware from the board's TRNG.
    let seed = cfg.seed;
    let ip = embassy_net::Config::ipv4_static(StaticConfigV4 {
        address: Ipv4Cidr::new(ADDRESS, 24),
        gateway: Some(GATEWAY),
        dns_servers: heapless::Vec::new(),
    });
    static RESOURCES: StaticCell<StackResources<2>> = StaticCell::new();
    let (stack, runner) = embassy_net::new(device, ip, RESOURCES.init(StackResources::new()), seed);
    spawner.spawn(net_task(runner).unwrap_or_else(|_| fail("spawn")));
    stack.wait_config_up().await;

    static TCP: StaticCell<TcpClientState<1, 2048, 2048>> = StaticCell::new();
    let tcp: Tcp = TcpClient::new(stack, TCP.init(TcpClientState::new()));
    let dns = DnsSocket::new(stack);
    let mut head = [0u8; 1024];
    let mut scratch = [0u8; 2048];
    let mut app = app::App::new(&tcp, &dns, &cfg, &mut head, &mut scratch);
    let restored = app.restore();
    println!(
        "{{\"boot\":{{\"restored\":{},\"dma_pages\":{}}}}}",
        restored,
        net::dma_pages_used()
    );

    // The API's answers and the token endpoint's (about 600 bytes from SimpleJWT).
    let mut body = [0u8; 1024];
    let (mut ok, mut unauthorized) = (0u32, 0u32);
    let (mut total_us, mut max_us) = (0u64, 0u64);
    for i in 0..cfg.requests {
        let started = Instant::now();
        let result = app.send(&mut body).await;
        let us = started.elapsed().as_micros();
        total_us += us;
        max_us = max_us.max(us);
        let counts = app.counts();
        match result {
            Ok(status) => {
                ok += u32::from(status == 200);
                unauthorized += u32::from(status == 401);
                println!(
                    "{{\"i\":{},\"status\":{},\"refreshes\":{},\"logins\":{},\"us\":{}}}",
                    i, status, counts.refreshes, counts.logins, us
                );
            }
            Err(e) => println!(
                "{{\"i\":{},\"status\":null,\"refreshes\":{},\"logins\":{},\"us\":{},\"error\":\"{}\"}}",
                i, counts.refreshes, counts.logins, us, e
            ),
        }
        Timer::after_millis(cfg.interval_ms).await;
    }
    let counts = app.counts();
    println!(
        "{{\"summary\":{{\"requests\":{},\"ok\":{},\"unauthorized\":{},\"errors\":{},\"refreshes\":{},\"logins\":{},\"failures\":{},\"mean_us\":{},\"max_us\":{},\"stack_peak\":{},\"stack_size\":{}}}}}",
        cfg.requests,
        ok,
        unauthorized,
        cfg.requests - ok - unauthorized,
        counts.refreshes,
        counts.logins,
        counts.failures,
        total_us / u64::from(cfg.requests.max(1)),
        max_us,
        stack::peak(),
        stack::top() - stack::bottom()
    );
    semihosting::process::exit(if ok == cfg.requests { 0 } else { 1 })
}

/// Exits with status 101. Without the `panic-location` feature it does not read the
/// `PanicInfo`, so the image keeps no panic message or source path (whose length would make the
/// measured sizes depend on where the sources are checked out).
#[panic_handler]
fn panic(_info: &core::panic::PanicInfo) -> ! {
    #[cfg(feature = "panic-location")]
    println!("{{\"fatal\":\"panic at {:?}\"}}", _info.location());
    #[cfg(not(feature = "panic-location"))]
    println!("{{\"fatal\":\"panic (build with --features panic-location for where)\"}}");
    semihosting::process::exit(101)
}
