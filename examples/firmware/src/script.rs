//! The scripted run: the real blocking `Client` against the scripted servers, through login,
//! sends, refreshes ahead of expiry, rotation, a failed refresh with backoff, a 401 with one
//! retry, a rejected refresh token ending in login, a reboot that restores the saved refresh
//! token, and the same with OAuth 2.0 client credentials. Then the decisions seen are checked
//! against [`EXPECTED`].
//!
//! Request times are chosen so that every decision holds for any jitter draw: a 300 s SimpleJWT
//! token (used for 299 s) is refreshed between 149.5 s and 269.1 s after it was fetched on a
//! first lease, and between 239.2 s and 269.1 s on later ones.

use core::hint::black_box;

use jwt_refresh::protocol::{ClientAuth, Credentials, OAuth2, OAuth2Login, SimpleJwt, FORM, JSON};
use jwt_refresh::transport::{Endpoint, Method, Transport};
use jwt_refresh::{Client, Error, Protocol, RefreshPolicy, Request, Session, TokenStore};

use crate::server::{
    Fault, Server, CLIENT_ID, CLIENT_SECRET, OAUTH_TOKEN_PATH, PASSWORD, SCOPE,
    SIMPLEJWT_LOGIN_PATH, SIMPLEJWT_REFRESH_PATH, USERNAME,
};
use crate::sim::{Event, Log, Outcome, SimClock, SimDelay, Tok, NO_ANSWER};
use crate::stack;
use crate::store::{FlashPage, FlashStore};
use crate::tokens::SIMPLEJWT_REFRESH;

/// The client as a device would build it: default capacities (1536-byte access token buffer,
/// 1024-byte refresh token buffer), the scripted server as transport, the simulated clock and
/// delay, the flash page store.
/// `'b` borrows the server, the store and the scratch buffer; `'w` the simulated world.
pub type FwClient<'b, 'w> =
    Client<'static, 'b, &'b mut Server<'w>, &'w SimClock, SimDelay<'w>, &'b mut FlashStore<'w>>;

/// Refresh and login request bodies (the OAuth 2.0 refresh body is the longest, ~90 bytes;
/// a SimpleJWT refresh with a 1 KiB refresh token would need 1040).
pub const SCRATCH_SIZE: usize = 512;
/// API answers and token endpoint answers (a SimpleJWT rotation answer is ~560 bytes).
pub const BODY_SIZE: usize = 1024;

/// The API requests the device makes.
const TELEMETRY: Request<'static> = Request::get("/api/telemetry/");
const READING: Request<'static> = Request::post("/api/readings/", JSON, br#"{"celsius":21.5}"#);

/// The script's `Client::send` calls: when, and what for (printed with the log).
pub const STEPS: [(u64, &str); 14] = [
    (0, "first request: no tokens, log in"),
    (100_000, "token fresh: send"),
    (285_000, "token near expiry: refresh ahead of it"),
    (
        570_000,
        "near expiry again; the server now rotates refresh tokens",
    ),
    (
        845_000,
        "refresh due, the token endpoint times out: back off, send with the valid token",
    ),
    (
        858_000,
        "refresh again: 503 Retry-After 300 s, send with the still-valid token",
    ),
    (
        1_150_000,
        "token expired, backing off: sleep until Retry-After, refresh, send",
    ),
    (
        1_180_000,
        "the API revoked the token: 401, one refresh, one retry",
    ),
    (
        1_200_000,
        "the API rejects every token: 401, one refresh, one retry, then give up",
    ),
    (
        1_580_000,
        "refresh token blacklisted: token_not_valid, log in again",
    ),
    (
        1_590_000,
        "after a reboot: the refresh token saved in flash, refresh without login",
    ),
    (2_000_000, "OAuth 2.0: client-credentials login"),
    (
        2_560_000,
        "OAuth 2.0: refresh ahead of expiry (no new refresh token)",
    ),
    (
        3_300_000,
        "OAuth 2.0: refresh token revoked, invalid_grant, log in again",
    ),
];

use Event::{Api, Clear, Done, Load, Login, Reboot, Refresh, Save, Send, Sleep, Stats};
use Tok::{A, OA, OR, R};

/// Step 3's first decision. The `deliberate-mismatch` build expects the client to send with
/// the old token instead of refreshing ahead of expiry, which it does not do: the run must fail.
#[cfg(not(feature = "deliberate-mismatch"))]
const STEP3: Event = Refresh {
    with: R(0),
    status: 200,
};
#[cfg(feature = "deliberate-mismatch")]
const STEP3: Event = Api {
    with: A(0),
    status: 200,
};

/// Every decision the client must make, in order.
pub const EXPECTED: &[Event] = &[
    // Boot: the flash page is empty.
    Load { found: None },
    // 1. Log in; the refresh token is saved before the access token is used.
    Send { step: 1 },
    Login { status: 200 },
    Save { tok: R(0) },
    Api {
        with: A(0),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 2. The token is fresh.
    Send { step: 2 },
    Api {
        with: A(0),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 3. Refresh ahead of expiry (no rotation yet): only a new access token.
    Send { step: 3 },
    STEP3,
    Api {
        with: A(1),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 4. Rotation: a new refresh token, saved before use; R0 is blacklisted by the server.
    Send { step: 4 },
    Refresh {
        with: R(0),
        status: 200,
    },
    Save { tok: R(1) },
    Api {
        with: A(2),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 5. The refresh gets no answer: backoff, but the valid token still goes out.
    Send { step: 5 },
    Refresh {
        with: R(1),
        status: NO_ANSWER,
    },
    Api {
        with: A(2),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 6. After the first retry's backoff (a quarter to half of the 23.96 s the token had left at
    //    845.040 s: over by 857.02 s): 503 with Retry-After 300 s; the token is still valid.
    Send { step: 6 },
    Refresh {
        with: R(1),
        status: 503,
    },
    Api {
        with: A(2),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 7. The token expired during the backoff: sleep until Retry-After (858.040 s + 300 s,
    //    longer than the second backoff, about one refresh interval: 254 to 284 s),
    //    refresh with rotation, send.
    Send { step: 7 },
    Sleep { ms: 8_040 },
    Refresh {
        with: R(1),
        status: 200,
    },
    Save { tok: R(2) },
    Api {
        with: A(3),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 8. A 401 on a token the API had accepted: one refresh, one retry that succeeds.
    Send { step: 8 },
    Api {
        with: A(3),
        status: 401,
    },
    Refresh {
        with: R(2),
        status: 200,
    },
    Save { tok: R(3) },
    Api {
        with: A(4),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 9. 401 again on the token fresh from the refresh: no second refresh, no second retry.
    Send { step: 9 },
    Api {
        with: A(4),
        status: 401,
    },
    Refresh {
        with: R(3),
        status: 200,
    },
    Save { tok: R(4) },
    Api {
        with: A(5),
        status: 401,
    },
    Done {
        outcome: Outcome::Unauthorized(401),
    },
    // 10. The refresh token was blacklisted: cleared from flash, log in again.
    Send { step: 10 },
    Refresh {
        with: R(4),
        status: 401,
    },
    Clear,
    Login { status: 200 },
    Save { tok: R(5) },
    Api {
        with: A(6),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    Stats {
        logins: 2,
        refreshes: 5,
        failures: 3,
    },
    // 11. Reboot: the new session restores R5 from flash and refreshes instead of logging in.
    Reboot,
    Load { found: Some(R(5)) },
    Send { step: 11 },
    Refresh {
        with: R(5),
        status: 200,
    },
    Save { tok: R(6) },
    Api {
        with: A(7),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    Stats {
        logins: 0,
        refreshes: 1,
        failures: 0,
    },
    // 12. OAuth 2.0 on its own flash page: client-credentials login, POST to the API.
    Load { found: None },
    Send { step: 12 },
    Login { status: 200 },
    Save { tok: OR(0) },
    Api {
        with: OA(0),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 13. Refresh ahead of the 600 s `expires_in`; the answer has no refresh token.
    Send { step: 13 },
    Refresh {
        with: OR(0),
        status: 200,
    },
    Api {
        with: OA(1),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    // 14. invalid_grant: the store is cleared and the client logs in again.
    Send { step: 14 },
    Refresh {
        with: OR(0),
        status: 400,
    },
    Clear,
    Login { status: 200 },
    Save { tok: OR(1) },
    Api {
        with: OA(2),
        status: 200,
    },
    Done {
        outcome: Outcome::Ok(200),
    },
    Stats {
        logins: 2,
        refreshes: 1,
        failures: 1,
    },
];

#[cfg(crate_calls)]
fn outcome<T, S>(result: &Result<jwt_refresh::Response, Error<T, S>>) -> Outcome {
    match result {
        Ok(response) => Outcome::Ok(response.status),
        Err(Error::Unauthorized(response)) => Outcome::Unauthorized(response.status),
        Err(Error::LoginRequired(_)) => Outcome::LoginRequired,
        Err(Error::RetryLater { .. }) => Outcome::RetryLater,
        Err(Error::Fatal(_)) => Outcome::Fatal,
        Err(Error::Transport(_)) => Outcome::Transport,
        Err(Error::Store(_)) => Outcome::Store,
        Err(_) => Outcome::Other,
    }
}

#[cfg(crate_calls)]
/// One `Client::send` at the step's time, logged. Never inlined: everything below the
/// caller's stack frame is the client's (and its callbacks') stack.
#[inline(never)]
fn send(
    client: &mut FwClient<'_, '_>,
    clock: &SimClock,
    log: &Log,
    step: u8,
    request: &Request<'_>,
    body: &mut [u8],
) {
    clock.set_ms(STEPS[usize::from(step) - 1].0);
    log.push(Send { step });
    let result = client.send(request, body);
    log.push(Done {
        outcome: outcome(&result),
    });
}

#[cfg(crate_calls)]
/// `Client::restore()` at boot, never inlined (like [`send`]).
#[inline(never)]
fn restore(client: &mut FwClient<'_, '_>) -> bool {
    client.restore().unwrap_or(false)
}

#[cfg(crate_calls)]
fn stats(client: &FwClient<'_, '_>, log: &Log) {
    let s = client.session().stats();
    log.push(Stats {
        logins: s.logins,
        refreshes: s.refreshes,
        failures: s.failures,
    });
}

/// A device builds its session and client once: one construction site, as in a real firmware
/// (inlined three times, `Client::new` would count three times in the flash figure).
#[cfg(crate_calls)]
#[inline(never)]
fn new_client<'b, 'w>(
    protocol: Protocol<'static>,
    server: &'b mut Server<'w>,
    clock: &'w SimClock,
    delay: SimDelay<'w>,
    store: &'b mut FlashStore<'w>,
    scratch: &'b mut [u8],
) -> FwClient<'b, 'w> {
    let session: Session<'static> = Session::new(protocol, policy());
    Client::new(session, server, clock, delay, store, scratch)
}

#[cfg(crate_calls)]
fn simplejwt() -> Protocol<'static> {
    Protocol::SimpleJwt(SimpleJwt {
        credentials: Some(Credentials {
            username: USERNAME,
            password: PASSWORD,
        }),
        ..SimpleJwt::default()
    })
}

#[cfg(crate_calls)]
fn policy() -> RefreshPolicy {
    RefreshPolicy {
        seed: 0x0007_5eed, // a device's serial number
        ..RefreshPolicy::default()
    }
}

/// What the scripted run measured.
pub struct RunStats {
    /// The stack pointer in [`run`], whose frame holds the clients and buffers.
    pub caller_sp: usize,
    pub api_requests: u32,
    pub token_requests: u32,
    pub flash_erases: u32,
    pub store_errors: u32,
}

/// Runs the whole script. The clients, sessions and buffers live in this function's frame.
#[cfg(crate_calls)]
#[inline(never)]
pub fn run(
    clock: &SimClock,
    log: &Log,
    page_a: &mut FlashPage,
    page_b: &mut FlashPage,
) -> RunStats {
    let caller_sp = stack::sp();
    let mut server = Server::new(clock, log);
    let mut store_a = FlashStore::new(page_a, log);
    let mut store_b = FlashStore::new(page_b, log);
    let mut scratch = [0u8; SCRATCH_SIZE];
    let mut body = [0u8; BODY_SIZE];
    let delay = SimDelay { clock, log };
    let mut store_errors = 0;

    // SimpleJWT, first boot.
    {
        let mut client = new_client(
            simplejwt(),
            &mut server,
            clock,
            delay,
            &mut store_a,
            &mut scratch,
        );
        restore(&mut client);
        send(&mut client, clock, log, 1, &TELEMETRY, &mut body);
        send(&mut client, clock, log, 2, &TELEMETRY, &mut body);
        send(&mut client, clock, log, 3, &TELEMETRY, &mut body);
        client.transport_mut().rotate = true;
        send(&mut client, clock, log, 4, &TELEMETRY, &mut body);
        client.transport_mut().fault = Some(Fault::NoAnswer);
        send(&mut client, clock, log, 5, &TELEMETRY, &mut body);
        client.transport_mut().fault = Some(Fault::Unavailable { retry_after_s: 300 });
        send(&mut client, clock, log, 6, &TELEMETRY, &mut body);
        send(&mut client, clock, log, 7, &TELEMETRY, &mut body);
        client.transport_mut().revoke_access();
        send(&mut client, clock, log, 8, &TELEMETRY, &mut body);
        client.transport_mut().api_rejects_all = true;
        send(&mut client, clock, log, 9, &TELEMETRY, &mut body);
        client.transport_mut().api_rejects_all = false;
        client.transport_mut().blacklist_refresh();
        send(&mut client, clock, log, 10, &TELEMETRY, &mut body);
        stats(&client, log);
        store_errors += u32::from(client.take_store_error().is_some());
    }

    // Reboot: a new session and client; the refresh token comes back from flash.
    {
        log.push(Reboot);
        clock.set_ms(STEPS[10].0);
        let mut client = new_client(
            simplejwt(),
            &mut server,
            clock,
            delay,
            &mut store_a,
            &mut scratch,
        );
        restore(&mut client);
        send(&mut client, clock, log, 11, &TELEMETRY, &mut body);
        stats(&client, log);
        store_errors += u32::from(client.take_store_error().is_some());
    }

    // OAuth 2.0 client credentials with HTTP Basic client authentication, its own flash page.
    {
        let protocol = Protocol::OAuth2(OAuth2 {
            token_path: OAUTH_TOKEN_PATH,
            client_id: Some(CLIENT_ID),
            client_secret: Some(CLIENT_SECRET),
            client_auth: ClientAuth::Basic,
            scope: Some(SCOPE),
            login: OAuth2Login::ClientCredentials,
        });
        let mut client = new_client(
            protocol,
            &mut server,
            clock,
            delay,
            &mut store_b,
            &mut scratch,
        );
        restore(&mut client);
        send(&mut client, clock, log, 12, &READING, &mut body);
        send(&mut client, clock, log, 13, &READING, &mut body);
        client.transport_mut().revoke_oauth_refresh();
        send(&mut client, clock, log, 14, &READING, &mut body);
        stats(&client, log);
        store_errors += u32::from(client.take_store_error().is_some());
    }

    RunStats {
        caller_sp,
        api_requests: server.api_requests,
        token_requests: server.token_requests,
        flash_erases: store_a.erases + store_b.erases,
        store_errors,
    }
}

/// The stand-in for [`run`] in the images without the crate's calls: the harness alone, no call into the crate.
#[cfg(not(crate_calls))]
#[inline(never)]
pub fn run(
    clock: &SimClock,
    log: &Log,
    page_a: &mut FlashPage,
    page_b: &mut FlashPage,
) -> RunStats {
    let caller_sp = stack::sp();
    let mut body = [0u8; BODY_SIZE];
    exercise_harness(clock, log, page_a, &mut body);
    exercise_harness(clock, log, page_b, &mut body);
    RunStats {
        caller_sp,
        api_requests: black_box(0),
        token_requests: black_box(0),
        flash_erases: black_box(0),
        store_errors: black_box(0),
    }
}

/// Calls every path of the scripted server, the store and the delay directly, with inputs the
/// optimiser cannot see through, and returns the most stack any one call used. The images
/// without the crate's calls run only this (so that the harness is in both images and the size difference is the
/// crate's); the normal build runs it after the script to measure the callbacks' own stack.
#[inline(never)]
pub fn exercise_harness(
    clock: &SimClock,
    log: &Log,
    page: &mut FlashPage,
    body: &mut [u8],
) -> usize {
    let mut server = Server::new(clock, log);
    let mut store = FlashStore::new(page, log);
    let mut delay = SimDelay { clock, log };
    let mut peak = 0;
    let mut note = |used: usize| peak = peak.max(used);
    let login = br#"{"username":"device-7","password":"hunter2"}"#;
    let basic = Some("Basic ZGV2aWNlLTc6czNjcmV0");
    let requests = [
        (SIMPLEJWT_LOGIN_PATH, JSON, None, &login[..]),
        (
            SIMPLEJWT_REFRESH_PATH,
            JSON,
            None,
            &b"{\"refresh\":\"x\"}"[..],
        ),
        (
            OAUTH_TOKEN_PATH,
            FORM,
            basic,
            &b"grant_type=client_credentials&scope=telemetry"[..],
        ),
        (
            OAUTH_TOKEN_PATH,
            FORM,
            basic,
            &b"grant_type=refresh_token&refresh_token=x&scope=telemetry"[..],
        ),
    ];
    server.rotate = black_box(true);
    server.fault = black_box(None);
    for (path, content_type, authorization, request_body) in requests {
        let request = Request {
            method: Method::Post,
            endpoint: Endpoint::Auth,
            path,
            content_type: Some(content_type),
            authorization,
            body: request_body,
        };
        note(stack::measure(|| black_box(server.send(black_box(&request), body)).is_ok()).1);
    }
    server.fault = black_box(Some(Fault::Unavailable { retry_after_s: 1 }));
    note(stack::measure(|| black_box(server.send(black_box(&TELEMETRY), body)).is_ok()).1);
    let api = Request {
        authorization: Some("Bearer x"),
        ..READING
    };
    note(stack::measure(|| black_box(server.send(black_box(&api), body)).is_ok()).1);
    server.revoke_access();
    server.blacklist_refresh();
    server.revoke_oauth_refresh();
    note(stack::measure(|| black_box(store.save(black_box(SIMPLEJWT_REFRESH[0]))).is_ok()).1);
    note(stack::measure(|| black_box(store.load(body).map(|t| t.map(str::len))).is_ok()).1);
    note(stack::measure(|| black_box(store.clear()).is_ok()).1);
    note(stack::measure(|| embedded_hal::delay::DelayNs::delay_ms(&mut delay, black_box(1))).1);
    note(stack::measure(|| embedded_hal::delay::DelayNs::delay_ns(&mut delay, black_box(1))).1);
    black_box(clock.now_ms());
    peak
}
