//! The decode paths perform zero heap allocations: a counting global allocator watches every
//! decoder and every error path (and the formatting of results), on the measuring thread only.
use std::fmt::{self, Write as _};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_refresh::{Claims, DecodeError, TimeClaims};

#[path = "support/counting.rs"]
mod counting;

use counting::allocations as measure;

/// A fixed-size `fmt::Write` sink on the stack.
struct Sink {
    buf: [u8; 512],
    len: usize,
}

impl fmt::Write for Sink {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let end = self.len + s.len();
        self.buf
            .get_mut(self.len..end)
            .ok_or(fmt::Error)?
            .copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}

fn outcome<T>(result: &Result<T, DecodeError>) -> &'static str {
    match result {
        Ok(_) => "ok",
        Err(e) => e.kind(),
    }
}

/// Runs one case's decoder; returns its outcome.
fn run(decoder: &str, token: &str) -> &'static str {
    match decoder {
        "claims" => outcome(&Claims::decode(token)),
        "claims_in" => {
            let mut scratch = [0u8; 1024];
            outcome(&Claims::<96, 2>::decode_in(token, &mut scratch))
        }
        "claims_in_small" => {
            let mut scratch = [0u8; 64];
            outcome(&Claims::<8, 1>::decode_in(token, &mut scratch))
        }
        "times" => outcome(&TimeClaims::decode(token)),
        "times_in" => {
            let mut scratch = [0u8; 1024];
            outcome(&TimeClaims::decode_in(token, &mut scratch))
        }
        "format" => {
            let mut sink = Sink {
                buf: [0; 512],
                len: 0,
            };
            let result = Claims::decode(token);
            match &result {
                Ok(c) => write!(sink, "{c:?}").ok(),
                Err(e) => write!(sink, "{e:?} {e} {}", e.kind()).ok(),
            };
            assert!(sink.len > 0);
            outcome(&result)
        }
        other => panic!("unknown decoder {other}"),
    }
}

/// `{"alg":"HS256","typ":"JWT"}`.
const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// A compact JWS with exactly these payload bytes.
fn token(payload: impl AsRef<[u8]>) -> String {
    format!("{HEADER}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

/// One measured call: a case name, the decoder the probe runs, the token, and the outcome
/// (`ok` or a `DecodeError::kind()`) that proves the intended path was taken.
struct Case {
    name: &'static str,
    decoder: &'static str,
    token: String,
    outcome: &'static str,
}

/// Every case, built here (with allocation) before the probe measures anything.
fn cases() -> Vec<Case> {
    let simplejwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.\
        eyJ0b2tlbl90eXBlIjoiYWNjZXNzIiwiZXhwIjoxNzAwMDAwMzAwLCJpYXQiOjE3MDAwMDAwMDAsImp0aSI6IjBiNjZjYzQyZjk2YjRmNzM5ZWQ3MDY2ZDY0ZjY1ZjU1IiwidXNlcl9pZCI6IjEifQ.\
        c2lnbmF0dXJl"
        .to_owned();
    let full = token(
        r#"{"iss":"https:\/\/auth.example.com\/","sub":"caf\u00e9 \"q\" \\ \u6771","aud":["api","\u0061pp"],"exp":1700000300,"nbf":1700000000,"iat":1700000000,"jti":"t\tn","e\u0078tra":{"roles":["a",{"exp":"nested","s":"\ud83d\ude00"}],"n":-1.5e-7,"ok":true,"z":null}}"#,
    );
    let big = token(format!(r#"{{"exp":1,"pad":"{}"}}"#, "a".repeat(2100)));
    let medium = token(format!(r#"{{"exp":1,"pad":"{}"}}"#, "a".repeat(100)));
    let deep = token(format!(r#"{{"x":{}{}}}"#, "[".repeat(200), "]".repeat(200)));
    let long_sub = token(format!(r#"{{"sub":"{}"}}"#, "x".repeat(97)));
    let long_escaped_sub = token(format!(r#"{{"s\u0075b":"{}"}}"#, "\\u00e9".repeat(49)));
    let nine = token(r#"{"sub":"123456789"}"#);
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.a.b.c.d".to_owned();

    let mut cases = Vec::new();
    let mut add = |name, decoder, token: &str, outcome| {
        cases.push(Case {
            name,
            decoder,
            token: token.to_owned(),
            outcome,
        })
    };
    for decoder in ["claims", "claims_in", "times", "times_in", "format"] {
        add("simplejwt", decoder, &simplejwt, "ok");
        add("escapes_and_nesting", decoder, &full, "ok");
    }
    add(
        "fits_small_scratch",
        "claims_in_small",
        &token(r#"{"exp":5}"#),
        "ok",
    );
    let errors: [(&str, &str, &str); 19] = [
        ("no_dots", "abc", "malformed"),
        ("four_parts", "a.e30.b.c", "malformed"),
        ("jwe", &jwe, "encrypted"),
        ("empty_payload", "a..c", "empty_payload"),
        ("bad_base64_char", &format!("{HEADER}.e30*.c2ln"), "base64"),
        ("bad_base64_length", &format!("{HEADER}.e.c2ln"), "base64"),
        ("too_large", &big, "too_large"),
        ("not_utf8", &token(b"{\"sub\":\"\xff\"}"), "utf8"),
        ("not_an_object", &token("[1,2]"), "not_an_object"),
        ("bad_json", &token(r#"{"x":}"#), "json"),
        (
            "surrogate_pair",
            &token(r#"{"sub":"\ud83d\ude00"}"#),
            "json",
        ),
        (
            "non_integer_date",
            &token(r#"{"exp":1700000000.5}"#),
            if cfg!(feature = "float-dates") {
                "ok"
            } else {
                "invalid_numeric_date"
            },
        ),
        ("too_deep", &deep, "too_deep"),
        (
            "duplicate",
            &token(r#"{"exp":1,"e\u0078p":2}"#),
            "duplicate_claim",
        ),
        ("wrong_type", &token(r#"{"iss":1}"#), "invalid_claim_type"),
        ("claim_too_long", &long_sub, "claim_too_long"),
        (
            "escaped_claim_too_long",
            &long_escaped_sub,
            "claim_too_long",
        ),
        (
            "too_many_audiences",
            &token(r#"{"aud":["a","b","c","d","e"]}"#),
            "too_many_audiences",
        ),
        (
            "bad_date",
            &token(r#"{"exp":-1.5e300}"#),
            "invalid_numeric_date",
        ),
    ];
    for (name, token, outcome) in errors {
        add(name, "claims", token, outcome);
        add(name, "format", token, outcome);
    }
    for (name, token, outcome) in [
        ("bad_base64_char", format!("{HEADER}.e30*.c2ln"), "base64"),
        ("too_large", big.clone(), "too_large"),
        (
            "bad_date",
            token(r#"{"iat":1e300}"#),
            "invalid_numeric_date",
        ),
        ("too_deep", deep.clone(), "too_deep"),
    ] {
        add(name, "times", &token, outcome);
        add(name, "times_in", &token, outcome);
    }
    add(
        "too_large_for_scratch",
        "claims_in_small",
        &medium,
        "too_large",
    );
    add(
        "too_long_for_capacity",
        "claims_in_small",
        &nine,
        "claim_too_long",
    );
    add(
        "too_many_for_capacity",
        "claims_in",
        &token(r#"{"aud":["a","b","c"]}"#),
        "too_many_audiences",
    );
    cases
}

#[test]
fn decoding_never_allocates() {
    let cases = cases();
    assert!(cases.len() > 50);
    let mut failures = Vec::new();
    for case in &cases {
        let (got, allocations) = measure(|| run(case.decoder, &case.token));
        if allocations != 0 || got != case.outcome {
            failures.push(format!(
                "{} via {}: {allocations} allocations, outcome {got} (expected {})",
                case.name, case.decoder, case.outcome
            ));
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
