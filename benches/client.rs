//! The crate's per-request overhead: one `Client::send` through an in-memory transport, against
//! calling that transport directly with a prebuilt `Authorization` header.
//!
//! Run: `cargo bench --bench client`.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::SimpleJwt;
use jwt_refresh::transport::{ErrorKind, ErrorType, Response};
use jwt_refresh::{
    Client, Clock, Instant, NoStore, Protocol, RefreshPolicy, Request, Session, Transport,
};

/// Answers every request with the same small JSON body, from memory.
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

/// A clock stopped at one minute.
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

fn overhead(c: &mut Criterion) {
    #[derive(serde::Serialize)]
    struct Claims {
        exp: u64,
        iat: u64,
    }
    let access = encode(
        &Header::default(),
        &Claims {
            exp: 1_700_000_300,
            iat: 1_700_000_000,
        },
        &EncodingKey::from_secret(b"bench"),
    )
    .unwrap();
    let mut session: Session<'static> = Session::new(
        Protocol::SimpleJwt(SimpleJwt::default()),
        RefreshPolicy::default(),
    );
    session
        .set_tokens(
            Instant::ZERO,
            Instant::ZERO,
            &access,
            Some("r"),
            TokenFacts::default(),
        )
        .unwrap();
    let mut scratch = [0u8; 512];
    let mut client = Client::new(session, InMemory, Fixed, NoDelay, NoStore, &mut scratch);
    let request = Request::get("/api/protected/");
    let header = format!("Bearer {access}");
    let mut body = [0u8; 256];

    let mut group = c.benchmark_group("request");
    group.warm_up_time(StdDuration::from_secs(1));
    group.measurement_time(StdDuration::from_secs(3));
    group.bench_function("client_send", |b| {
        b.iter(|| {
            client
                .send(black_box(&request), &mut body)
                .unwrap()
                .body_len
        })
    });
    let mut direct = InMemory;
    group.bench_function("transport_direct_prebuilt_header", |b| {
        b.iter(|| {
            let r = Request {
                authorization: Some(header.as_str()),
                ..*black_box(&request)
            };
            direct.send(&r, &mut body).unwrap().body_len
        })
    });
    group.finish();
}

criterion_group!(benches, overhead);
criterion_main!(benches);
