//! `jwt-refresh` on a Cortex-M3 (QEMU's lm3s6965evb): the real blocking `Client` against an
//! auth server and an API server scripted inside the firmware, with a simulated clock and delay
//! and a refresh-token store over a RAM-backed flash page. The firmware checks every decision
//! it saw against the expected sequence and exits through semihosting with status 0 only when
//! all matched, 1 otherwise (101 on a panic, 102 on a HardFault).
//!
//! It also uses serde-json-core and base64 for its own data, as a device that already speaks
//! JSON would (`telemetry`), and measures what the crate costs: the peak stack below the caller
//! (by painting the stack) of `Client::send` and of the claims decoders on worst-case payloads
//! (`decode`), the `size_of` of the session and client, and, through `size-report.sh`, the
//! flash the crate adds against the images built without it (features `baseline`,
//! `baseline-libs` and `no-libs`, turned into the `crate_calls` and `telemetry` cfgs by
//! build.rs).

#![no_std]
#![no_main]
// The images without the crate's calls leave the crate-facing half of the script unused.
#![cfg_attr(not(crate_calls), allow(unused))]

use core::mem::size_of;

use cortex_m_rt::{entry, exception, ExceptionFrame};

/// One line of output: text over semihosting, or a defmt frame in the `defmt` build (text
/// would corrupt the frames).
#[cfg(not(feature = "defmt"))]
macro_rules! say {
    ($($arg:tt)*) => { semihosting::println!($($arg)*) };
}
#[cfg(feature = "defmt")]
macro_rules! say {
    ($($arg:tt)*) => { defmt::println!($($arg)*) };
}

mod decode;
mod script;
mod server;
mod sim;
mod stack;
mod store;
#[cfg(telemetry)]
mod telemetry;
#[allow(dead_code)]
mod tokens {
    include!(concat!(env!("OUT_DIR"), "/tokens.rs"));
}

// The critical-section implementation (single core) that defmt-semihosting takes.
use cortex_m as _;
// The defmt build sends its log frames (the crate's and the firmware's) over semihosting.
#[cfg(feature = "defmt")]
use defmt_semihosting as _;

use sim::{Event, Log, Outcome, SimClock};
use store::FlashPage;

/// Exit statuses.
const EXIT_PASS: i32 = 0;
const EXIT_MISMATCH: i32 = 1;
const EXIT_PANIC: i32 = 101;
const EXIT_HARD_FAULT: i32 = 102;

fn exit(code: i32) -> ! {
    semihosting::process::exit(code)
}

#[entry]
fn main() -> ! {
    let clock = SimClock::new();
    let log = Log::new();
    let mut page_a = FlashPage::erased();
    let mut page_b = FlashPage::erased();
    let mut harness_page = FlashPage::erased();
    let mut harness_body = [0u8; script::BODY_SIZE];

    say!(
        "jwt-refresh firmware: Cortex-M3 (thumbv7m-none-eabi), opt-level {}, {}",
        env!("FIRMWARE_OPT_LEVEL"),
        if cfg!(feature = "defmt") {
            "defmt"
        } else {
            "text output"
        }
    );

    // The firmware's own JSON and base64 (not in the `baseline` and `no-libs` images).
    #[cfg(telemetry)]
    let telemetry_ok = telemetry::run();
    #[cfg(not(telemetry))]
    let telemetry_ok = true;

    // The client: everything below `run`'s frame is the client's stack and its callbacks'.
    // (The images without the crate's calls run the harness alone instead: see `script::run`.)
    stack::paint();
    let run = script::run(&clock, &log, &mut page_a, &mut page_b);
    let lowest = stack::lowest_touched();
    let overflowed = stack::overflowed(lowest);
    let client_peak = run.caller_sp.saturating_sub(lowest);
    let callback_depth = run.caller_sp.saturating_sub(stack::lowest_callback_sp());
    let total = stack::top().saturating_sub(lowest);
    let caller_frames = stack::top().saturating_sub(run.caller_sp);

    // The claims decoders with their default 1 KiB stack scratch buffer, case by case: the
    // decoder's frame is the first below this one.
    let mut decode_peaks = [0usize; decode::CASES.len()];
    let mut decode_failed = None;
    for (case, peak) in decode::CASES.iter().zip(decode_peaks.iter_mut()) {
        stack::paint();
        let sp = stack::sp();
        let ok = decode::run(case);
        *peak = sp.saturating_sub(stack::lowest_touched());
        if !ok && decode_failed.is_none() {
            decode_failed = Some(case.what);
        }
    }

    // The harness's callbacks alone (the scripted server, store and delay), for comparison.
    let harness_log = Log::new();
    let harness_peak =
        script::exercise_harness(&clock, &harness_log, &mut harness_page, &mut harness_body);

    let matched = report(&log);
    say!(
        "server: {} API requests, {} token endpoint requests; flash page erases: {}; store errors: {}",
        run.api_requests,
        run.token_requests,
        run.flash_erases,
        run.store_errors
    );
    print_sizes();
    say!("stack (bytes, painted from the end of .bss to the initial stack pointer):");
    say!(
        "  measure stack_client_peak={} (below the caller's frame: Client::send and its callbacks)",
        client_peak
    );
    say!("  measure stack_client_depth_at_callbacks={} (deepest point at which the client called the transport, store or delay)", callback_depth);
    say!("  measure stack_harness_peak={} (the most any one callback of the scripted server, store or delay uses, called directly)", harness_peak);
    if client_peak > callback_depth + harness_peak {
        say!("  the deepest point is inside the crate, not in a callback: the client peak is the crate's own");
    }
    say!(
        "claims decoders, default 1 KiB scratch (MAX_DEPTH = {} nesting levels):",
        tokens::MAX_DEPTH
    );
    for (case, peak) in decode::CASES.iter().zip(decode_peaks) {
        say!("  measure {}={} ({})", case.key, peak, case.what);
    }
    let peak_of = |key: &str| {
        decode::CASES
            .iter()
            .zip(decode_peaks)
            .find(|(case, _)| case.key == key)
            .map_or(0, |(_, peak)| peak)
    };
    let deep = peak_of(decode::DEEP_ARRAYS).max(peak_of(decode::DEEP_OBJECTS));
    say!(
        "  measure stack_claims_decode_deep_peak={} (the deeper of the two nested to MAX_DEPTH)",
        deep
    );
    let worst = deep
        .max(peak_of(decode::FLAT))
        .max(peak_of(decode::ESCAPED));
    say!(
        "  measure stack_claims_decode_worst_peak={} (every case above)",
        worst
    );
    let levels = tokens::MAX_DEPTH - tokens::HALF_DEPTH;
    say!(
        "  measure stack_claims_decode_per_level={} (arrays: ({} nested - {} nested) / {} levels, rounded up)",
        peak_of(decode::DEEP_ARRAYS)
            .saturating_sub(peak_of(decode::HALF_ARRAYS))
            .div_ceil(levels),
        tokens::MAX_DEPTH,
        tokens::HALF_DEPTH,
        levels
    );
    say!("  measure max_depth={}", tokens::MAX_DEPTH);
    say!("  measure stack_caller_frames={} (reset handler, main, and the frame holding the clients and buffers)", caller_frames);
    say!(
        "  measure stack_total_peak={} (of {} bytes between .bss and the top of RAM)",
        total,
        stack::top() - stack::bottom()
    );

    let mut ok = matched;
    if overflowed {
        say!("FAIL: the stack reached the end of .bss");
        ok = false;
    }
    if let Some(what) = decode_failed {
        say!(
            "FAIL: the claims decoder did not read what it must: {}",
            what
        );
        ok = false;
    }
    if !telemetry_ok {
        say!("FAIL: the firmware's own JSON and base64 (see above)");
        ok = false;
    }
    if run.store_errors != 0 {
        say!("FAIL: the flash store failed");
        ok = false;
    }
    if ok {
        say!(
            "PASS: all {} decisions matched the expected sequence",
            log.len()
        );
        exit(EXIT_PASS);
    }
    say!("FAIL: see above");
    exit(EXIT_MISMATCH);
}

fn print_sizes() {
    say!("RAM (bytes, size_of on thumbv7m):");
    say!(
        "  measure size_session_default={} (Session<'_>: 1536-byte access, 1024-byte refresh buffers)",
        size_of::<jwt_refresh::Session<'static>>()
    );
    say!(
        "  measure size_session_small={} (Session<'_, 384, 320>: enough for SimpleJWT)",
        size_of::<jwt_refresh::Session<'static, 384, 320>>()
    );
    say!(
        "  measure size_client_default={} (this firmware's Client, default capacities)",
        size_of::<script::FwClient<'static, 'static>>()
    );
    say!("  measure size_claims={}", size_of::<jwt_refresh::Claims>());
    say!(
        "  measure size_time_claims={}",
        size_of::<jwt_refresh::TimeClaims>()
    );
    say!(
        "  caller buffers: scratch {} bytes, body {} bytes",
        script::SCRATCH_SIZE,
        script::BODY_SIZE
    );
}

/// Prints the log next to the expected sequence; true when they are the same.
fn report(log: &Log) -> bool {
    let mut first_mismatch = None;
    let len = log.len().max(script::EXPECTED.len());
    for i in 0..len {
        let seen = log.get(i);
        let expected = script::EXPECTED.get(i).copied();
        let same = seen == expected;
        if !same && first_mismatch.is_none() {
            first_mismatch = Some(i);
        }
        let mark = if same { "  " } else { "!!" };
        match seen {
            Some(event) => print_event(mark, event),
            None => say!("{} (nothing)", mark),
        }
        if !same {
            match expected {
                Some(event) => print_event("   expected:", event),
                None => say!("   expected: (nothing more)"),
            }
        }
    }
    if log.overflowed() {
        say!("FAIL: the event log overflowed");
        return false;
    }
    match first_mismatch {
        None => true,
        Some(i) => {
            say!(
                "FAIL: decision {} of {} differs from the expected sequence ({} seen)",
                i + 1,
                script::EXPECTED.len(),
                log.len()
            );
            false
        }
    }
}

fn print_event(mark: &str, event: Event) {
    match event {
        Event::Send { step } => {
            let (at_ms, what) = script::STEPS[usize::from(step) - 1];
            say!("{} [{}] t={} ms: {}", mark, step, at_ms, what);
        }
        Event::Reboot => say!("{} reboot: new session and client", mark),
        Event::Login { status } => say!("{}     token endpoint: login -> {}", mark, status),
        Event::Refresh { with, status } => say!(
            "{}     token endpoint: refresh with {}{} -> {}",
            mark,
            with.prefix(),
            with.number(),
            status
        ),
        Event::Api { with, status } => say!(
            "{}     API with {}{} -> {}",
            mark,
            with.prefix(),
            with.number(),
            status
        ),
        Event::Save { tok } => say!("{}     flash: saved {}{}", mark, tok.prefix(), tok.number()),
        Event::Clear => say!("{}     flash: erased", mark),
        Event::Load { found: Some(tok) } => {
            say!(
                "{}     flash: loaded {}{}",
                mark,
                tok.prefix(),
                tok.number()
            )
        }
        Event::Load { found: None } => say!("{}     flash: empty", mark),
        Event::Sleep { ms } => say!("{}     backoff: slept {} ms", mark, ms),
        Event::Done { outcome } => {
            let (what, status) = match outcome {
                Outcome::Ok(s) => ("Ok", s),
                Outcome::Unauthorized(s) => ("Err(Unauthorized)", s),
                Outcome::LoginRequired => ("Err(LoginRequired)", 0),
                Outcome::RetryLater => ("Err(RetryLater)", 0),
                Outcome::Fatal => ("Err(Fatal)", 0),
                Outcome::Transport => ("Err(Transport)", 0),
                Outcome::Store => ("Err(Store)", 0),
                Outcome::Other => ("Err(other)", 0),
            };
            say!("{}     => {} {}", mark, what, status)
        }
        Event::Stats {
            logins,
            refreshes,
            failures,
        } => say!(
            "{} session totals: {} logins, {} refreshes, {} failed refreshes or logins",
            mark,
            logins,
            refreshes,
            failures
        ),
    }
}

#[panic_handler]
fn panic(info: &core::panic::PanicInfo<'_>) -> ! {
    // A production firmware's handler (panic-halt, panic-reset) never reads the `PanicInfo`,
    // and the optimiser then drops the panic messages' formatting code. Reading anything in it,
    // even the location alone, keeps every message's arguments alive: with the crate's
    // libraries, `core::str::slice_error_fail`'s `char` and `Range` Debug and Unicode tables
    // among them, about 6.8 KB more crate flash at opt-level z. So the location is opt-in
    // (`--features panic-location`), and the measured images have the production-like handler.
    #[cfg(feature = "panic-location")]
    if let Some(location) = info.location() {
        say!("PANIC at {}:{}", location.file(), location.line());
        exit(EXIT_PANIC)
    }
    let _ = info;
    say!("PANIC");
    exit(EXIT_PANIC)
}

#[exception]
unsafe fn HardFault(_frame: &ExceptionFrame) -> ! {
    say!("HARD FAULT");
    exit(EXIT_HARD_FAULT)
}
