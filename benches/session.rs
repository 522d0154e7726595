//! The per-request decision: `Session::poll` answering `Send` with a borrowed header, against
//! the browser pattern that decodes the access token before every request.
//!
//! Run: `cargo bench --bench session`. Ratios are against `browser_pattern_serde` in the same run.

use std::hint::black_box;
use std::time::Duration as StdDuration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, EncodingKey, Header};
use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::SimpleJwt;
use jwt_refresh::{Instant, Output, Protocol, RefreshPolicy, Session, TimeClaims};

const IAT: u64 = 1_700_000_000;

fn token() -> String {
    #[derive(serde::Serialize)]
    struct C<'a> {
        token_type: &'a str,
        exp: u64,
        iat: u64,
        jti: &'a str,
        user_id: &'a str,
    }
    let claims = C {
        token_type: "access",
        exp: IAT + 300,
        iat: IAT,
        jti: "0b66cc42f96b4f739ed7066d64f65f55",
        user_id: "1",
    };
    encode(
        &Header::default(),
        &claims,
        &EncodingKey::from_secret(b"bench"),
    )
    .unwrap()
}

#[derive(serde::Deserialize)]
struct Exp {
    exp: Option<u64>,
}

fn decision(c: &mut Criterion) {
    let access = token();
    let mut session: Session<'static> = Session::new(
        Protocol::SimpleJwt(SimpleJwt::default()),
        RefreshPolicy::default(),
    );
    session
        .set_tokens(
            Instant::ZERO,
            Instant::ZERO,
            &access,
            Some("refresh"),
            TokenFacts::default(),
        )
        .unwrap();
    let now = Instant::from_secs(60);
    let wall_now = IAT + 60;
    let mut buf = [0u8; 512];
    assert!(matches!(session.poll(now, &mut buf), Output::Send { .. }));

    let mut group = c.benchmark_group("per_request_decision");
    group.warm_up_time(StdDuration::from_secs(1));
    group.measurement_time(StdDuration::from_secs(3));
    group.bench_function("session_poll_send", |b| {
        b.iter(|| match session.poll(black_box(now), &mut buf) {
            Output::Send { authorization, .. } => black_box(authorization.len()),
            _ => unreachable!(),
        })
    });
    // The browser recipe: decode the payload on every request, refresh when < 300 s remain,
    // then format the header.
    group.bench_function("browser_pattern_serde", |b| {
        b.iter(|| {
            let token = black_box(access.as_str());
            let payload = token.split('.').nth(1).unwrap();
            let bytes = URL_SAFE_NO_PAD.decode(payload).unwrap();
            let claims: Exp = serde_json::from_slice(&bytes).unwrap();
            let expired = claims
                .exp
                .is_none_or(|exp| exp.saturating_sub(wall_now) < 300);
            let header = format!("Bearer {token}");
            black_box((expired, header.len()))
        })
    });
    // The same recipe with this crate's decoder, to separate decoding from the rest.
    group.bench_function("browser_pattern_timeclaims", |b| {
        b.iter(|| {
            let token = black_box(access.as_str());
            let times = TimeClaims::decode(token).unwrap();
            let expired = times
                .exp
                .is_none_or(|exp| exp.as_secs().saturating_sub(wall_now) < 300);
            black_box(expired)
        })
    });
    group.finish();
}

criterion_group!(benches, decision);
criterion_main!(benches);
