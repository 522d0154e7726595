//! Decoding one realistic ~340-byte access token: `jwt_refresh` against `jsonwebtoken`'s
//! unverified decoders and a hand-written `serde_json` + `base64` decode.
//!
//! Run with `cargo bench --bench decode` (about 25 s once built). Every decoder reads the same token,
//! minted once at startup with `jsonwebtoken::encode` (HS256), and they are checked to agree
//! on `exp` and `iat` before anything is measured.
//!
//! The comparison is not like for like in one respect: the serde decoders allocate (a `Vec`
//! for the decoded payload, a `String` per string claim), while `Claims::decode` copies the
//! same claims into fixed-size stack buffers and `TimeClaims::decode` copies no string at all.

use std::hint::black_box;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use criterion::{criterion_group, criterion_main, Criterion};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};

/// What the token carries: djangorestframework-simplejwt's access-token claims plus the
/// usual OAuth-style `iss`, `aud` and `scope`.
#[derive(Serialize)]
struct MintedClaims<'a> {
    token_type: &'a str,
    exp: u64,
    iat: u64,
    jti: &'a str,
    user_id: &'a str,
    iss: &'a str,
    aud: &'a str,
    scope: &'a str,
}

/// The serde decoders' target: the same registered claims `jwt_refresh::Claims` reads.
#[derive(Debug, Deserialize)]
struct RegisteredClaims {
    exp: Option<u64>,
    nbf: Option<u64>,
    iat: Option<u64>,
    iss: Option<String>,
    sub: Option<String>,
    jti: Option<String>,
    aud: Option<Audience>,
}

/// `aud` is either one string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

const IAT: u64 = 1_700_000_000;
const EXP: u64 = IAT + 300;

fn mint_token() -> String {
    let claims = MintedClaims {
        token_type: "access",
        exp: EXP,
        iat: IAT,
        jti: "0b66cc42f96b4f739ed7066d64f65f55",
        user_id: "4271",
        iss: "https://auth.example.com",
        aud: "api.example.com",
        scope: "read write",
    };
    let key = EncodingKey::from_secret(b"benchmark secret, not a real key");
    encode(&Header::new(Algorithm::HS256), &claims, &key).expect("HS256 encoding")
}

/// What most hand-rolled "read the exp" code does: split, base64url-decode to a `Vec`, then
/// `serde_json::from_slice`.
fn serde_json_base64(token: &str) -> Option<RegisteredClaims> {
    let payload = token.split('.').nth(1)?;
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Checks, once, that every decoder reads the same `exp` and `iat` (and the strings where
/// both sides have them).
fn check_agreement(token: &str) {
    let expected = (Some(EXP), Some(IAT));

    let claims = jwt_refresh::Claims::decode(token).expect("Claims::decode");
    let secs = |t: Option<jwt_refresh::UnixTime>| t.map(jwt_refresh::UnixTime::as_secs);
    assert_eq!((secs(claims.exp), secs(claims.iat)), expected);

    let times = jwt_refresh::TimeClaims::decode(token).expect("TimeClaims::decode");
    assert_eq!((secs(times.exp), secs(times.iat)), expected);

    let serde_decoders: [(&str, RegisteredClaims); 3] = [
        (
            "insecure_decode_claims",
            jsonwebtoken::dangerous::insecure_decode_claims(token).expect("insecure_decode_claims"),
        ),
        (
            "insecure_decode",
            jsonwebtoken::dangerous::insecure_decode(token)
                .expect("insecure_decode")
                .claims,
        ),
        (
            "serde_json_base64",
            serde_json_base64(token).expect("serde_json + base64"),
        ),
    ];
    for (name, c) in serde_decoders {
        assert_eq!((c.exp, c.iat), expected, "{name}");
        assert_eq!(c.jti.as_deref(), claims.jti.as_deref(), "{name}");
        assert_eq!(c.iss.as_deref(), claims.iss.as_deref(), "{name}");
        assert_eq!((c.nbf, c.sub.as_deref()), (None, None), "{name}");
        let aud: Vec<&str> = match &c.aud {
            Some(Audience::One(one)) => vec![one.as_str()],
            Some(Audience::Many(many)) => many.iter().map(String::as_str).collect(),
            None => Vec::new(),
        };
        assert_eq!(aud, claims.audiences().collect::<Vec<_>>(), "{name}");
    }
}

fn decode_340b(c: &mut Criterion) {
    let token = mint_token();
    eprintln!("decode_340B: token is {} bytes", token.len());
    check_agreement(&token);
    let token = token.as_str();

    let mut group = c.benchmark_group("decode_340B");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));

    group.bench_function("jwt_refresh::Claims::decode", |b| {
        b.iter(|| black_box(jwt_refresh::Claims::decode(black_box(token))))
    });
    group.bench_function("jwt_refresh::TimeClaims::decode", |b| {
        b.iter(|| black_box(jwt_refresh::TimeClaims::decode(black_box(token))))
    });
    group.bench_function("jwt_refresh::TimeClaims::decode_in (reused buffer)", |b| {
        let mut scratch = [0u8; 1024];
        b.iter(|| {
            black_box(jwt_refresh::TimeClaims::decode_in(
                black_box(token),
                &mut scratch,
            ))
        })
    });
    group.bench_function("jsonwebtoken::insecure_decode_claims", |b| {
        b.iter(|| {
            black_box(jsonwebtoken::dangerous::insecure_decode_claims::<
                RegisteredClaims,
            >(black_box(token)))
        })
    });
    group.bench_function("jsonwebtoken::insecure_decode", |b| {
        b.iter(|| {
            black_box(
                jsonwebtoken::dangerous::insecure_decode::<RegisteredClaims>(black_box(token)),
            )
        })
    });
    group.bench_function("serde_json+base64", |b| {
        b.iter(|| black_box(serde_json_base64(black_box(token))))
    });
    group.finish();
}

/// The same decoders timed in turn, round after round, each round's best kept: on a shared or
/// throttled machine the sequential criterion runs above drift apart, while rounds that
/// alternate see the same machine. Prints each decoder's best time per decode and its ratio to
/// `insecure_decode_claims`.
fn interleaved(_: &mut Criterion) {
    const ROUNDS: usize = 300;
    const PER_ROUND: u32 = 2_000;
    let token = mint_token();
    let token = token.as_str();
    let decoders: [(&str, &dyn Fn()); 4] = [
        ("jsonwebtoken::insecure_decode_claims", &|| {
            black_box(jsonwebtoken::dangerous::insecure_decode_claims::<
                RegisteredClaims,
            >(black_box(token)))
            .ok();
        }),
        ("jwt_refresh::Claims::decode", &|| {
            black_box(jwt_refresh::Claims::decode(black_box(token))).ok();
        }),
        ("jwt_refresh::TimeClaims::decode", &|| {
            black_box(jwt_refresh::TimeClaims::decode(black_box(token))).ok();
        }),
        ("serde_json+base64", &|| {
            black_box(serde_json_base64(black_box(token)));
        }),
    ];
    let mut best = [f64::MAX; 4];
    for _ in 0..ROUNDS {
        for (slot, (_, decode)) in best.iter_mut().zip(&decoders) {
            let start = std::time::Instant::now();
            for _ in 0..PER_ROUND {
                decode();
            }
            let ns = start.elapsed().as_nanos() as f64 / f64::from(PER_ROUND);
            *slot = slot.min(ns);
        }
    }
    eprintln!("interleaved, best of {ROUNDS} rounds of {PER_ROUND} decodes each:");
    for ((name, _), ns) in decoders.iter().zip(best) {
        eprintln!(
            "  {name:40} {ns:7.0} ns  {:.2}x insecure_decode_claims",
            ns / best[0]
        );
    }
}

criterion_group!(benches, decode_340b, interleaved);
criterion_main!(benches);
