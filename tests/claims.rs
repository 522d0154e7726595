//! Claims decoding: one named test per rule and per error kind.

use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jwt_refresh::claims::{DEFAULT_PAYLOAD_CAPACITY, DEFAULT_STR_CAPACITY};
use jwt_refresh::{ClaimName, Claims, DecodeError, TimeClaims, UnixTime};

const HEADER: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9";

/// A compact JWS with this exact payload text (no re-serialisation) and a dummy signature.
fn token(payload: &str) -> String {
    format!("{HEADER}.{}.c2ln", URL_SAFE_NO_PAD.encode(payload))
}

fn secs(s: u64) -> Option<UnixTime> {
    UnixTime::from_secs(s)
}

fn decode(payload: &str) -> Result<Claims, DecodeError> {
    Claims::decode(&token(payload))
}

#[test]
fn rfc7519_section_3_1_example() {
    let t = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let c = Claims::decode(t).unwrap();
    assert_eq!(c.iss.as_deref(), Some("joe"));
    assert_eq!(c.exp, secs(1_300_819_380));
    assert_eq!(
        (c.nbf, c.iat, c.sub.as_deref(), c.jti.as_deref()),
        (None, None, None, None)
    );
    assert!(c.aud.is_empty());
}

#[test]
fn simplejwt_access_token_shape() {
    let c = decode(r#"{"token_type":"access","exp":1700000300,"iat":1700000000,"jti":"0b66cc42f96b4f739ed7066d64f65f55","user_id":"1"}"#).unwrap();
    assert_eq!(c.exp, secs(1_700_000_300));
    assert_eq!(c.iat, secs(1_700_000_000));
    assert_eq!(c.jti.as_deref(), Some("0b66cc42f96b4f739ed7066d64f65f55"));
    assert_eq!(
        c.times(),
        TimeClaims {
            exp: c.exp,
            nbf: None,
            iat: c.iat
        }
    );
}

#[test]
fn all_registered_claims() {
    let c = decode(r#"{"iss":"https://auth.example.com/","sub":"device-7","aud":"api","exp":20,"nbf":5,"iat":4,"jti":"abc"}"#).unwrap();
    assert_eq!(c.iss.as_deref(), Some("https://auth.example.com/"));
    assert_eq!(c.sub.as_deref(), Some("device-7"));
    assert_eq!(c.audiences().collect::<Vec<_>>(), ["api"]);
    assert_eq!((c.exp, c.nbf, c.iat), (secs(20), secs(5), secs(4)));
    assert_eq!(c.jti.as_deref(), Some("abc"));
}

#[test]
fn aud_as_array() {
    let c = decode(r#"{"aud":["a","b", "c"]}"#).unwrap();
    assert_eq!(c.audiences().collect::<Vec<_>>(), ["a", "b", "c"]);
    assert!(decode(r#"{"aud":[]}"#).unwrap().aud.is_empty());
}

#[test]
fn aud_of_wrong_type() {
    for bad in [
        r#"{"aud":1}"#,
        r#"{"aud":["a",1]}"#,
        r#"{"aud":{"x":"y"}}"#,
        r#"{"aud":null}"#,
    ] {
        assert_eq!(
            decode(bad),
            Err(DecodeError::InvalidClaimType {
                claim: ClaimName::Aud
            }),
            "{bad}"
        );
    }
}

#[test]
fn too_many_audiences() {
    assert_eq!(
        decode(r#"{"aud":["a","b","c","d","e"]}"#),
        Err(DecodeError::TooManyAudiences { capacity: 4 })
    );
    let mut scratch = [0u8; 128];
    let one: Result<Claims<8, 1>, _> = Claims::decode_in(&token(r#"{"aud":"a"}"#), &mut scratch);
    assert_eq!(one.unwrap().aud.len(), 1);
    let two: Result<Claims<8, 1>, _> =
        Claims::decode_in(&token(r#"{"aud":["a","b"]}"#), &mut scratch);
    assert_eq!(two, Err(DecodeError::TooManyAudiences { capacity: 1 }));
}

#[test]
fn unknown_claims_of_every_type_are_skipped() {
    let c = decode(
        r#"{"s":"x\"y","n":-1.5e-3,"t":true,"f":false,"z":null,"a":[1,[2,{"k":[]}]],
            "o":{"nested":{"deeper":[{"exp":"not ours"}]}},"exp":99}"#,
    )
    .unwrap();
    assert_eq!(c.exp, secs(99));
}

#[test]
fn json_escapes_are_decoded() {
    let c = decode(r#"{"iss":"https:\/\/example.com\/","sub":"caf\u00e9 \"quoted\" \\ \u6771","jti":"tab\tnl\n"}"#).unwrap();
    assert_eq!(c.iss.as_deref(), Some("https://example.com/"));
    assert_eq!(c.sub.as_deref(), Some("caf\u{e9} \"quoted\" \\ \u{6771}"));
    assert_eq!(c.jti.as_deref(), Some("tab\tnl\n"));
}

#[test]
fn surrogate_pairs_are_refused_only_in_claims_the_crate_reads() {
    // serde-json-core decodes `\uXXXX` one code unit at a time and refuses a UTF-16
    // surrogate pair (README, "serde-json-core's limits"). In a claim the crate keeps, the
    // payload is unreadable; in a claim it skips, nothing is decoded and nothing fails.
    let emoji = r#""\ud83d\ude00""#;
    assert_eq!(
        decode(&format!(r#"{{"sub":{emoji},"exp":9}}"#)),
        Err(DecodeError::Json)
    );
    let skipped = decode(&format!(r#"{{"name":{emoji},"exp":9}}"#)).unwrap();
    assert_eq!(skipped.exp, secs(9));
    // The scheduling-only decode skips `sub` too, so the deadline is still read.
    assert_eq!(
        TimeClaims::decode(&token(&format!(r#"{{"sub":{emoji},"exp":9}}"#)))
            .unwrap()
            .exp,
        secs(9)
    );
    // Raw UTF-8 needs no escape: an emoji written as itself is read.
    assert_eq!(
        decode("{\"sub\":\"\u{1F600}\"}").unwrap().sub.as_deref(),
        Some("\u{1F600}")
    );
}

#[test]
fn escaped_claim_names_are_recognised() {
    // "e\u0078p" is "exp": a duplicate of the plain one, and a claim on its own.
    assert_eq!(decode(r#"{"e\u0078p":7}"#).unwrap().exp, secs(7));
    assert_eq!(
        decode(r#"{"exp":7,"e\u0078p":8}"#),
        Err(DecodeError::DuplicateClaim {
            claim: ClaimName::Exp
        })
    );
}

#[test]
fn raw_utf8_in_strings() {
    assert_eq!(
        decode(r#"{"sub":"Zoë 東京"}"#).unwrap().sub.as_deref(),
        Some("Zoë 東京")
    );
}

/// With `float-dates`, a non-integer NumericDate is read through `f64` and floored.
#[cfg(feature = "float-dates")]
#[test]
fn non_integer_numeric_dates_are_floored() {
    for (text, want) in [
        ("1700000000.5", 1_700_000_000),
        ("1.7e9", 1_700_000_000),
        ("1.7E+9", 1_700_000_000),
        ("17000000005e-1", 1_700_000_000),
        ("0.5", 0),
        ("1e-400", 0),
        ("-0", 0),
        ("-0.0e5", 0),
        ("0", 0),
        ("253402300799", 253_402_300_799),
        ("2.53402300799e11", 253_402_300_799),
        // f64 has 53 bits: a fraction within 2.4e-7 of the next second rounds up to it
        // (README, "Non-integer dates"). Lifetimes from whole-second claims lose 1 s anyway.
        ("1700000000.999999999999999999999999", 1_700_000_001),
    ] {
        let payload = format!(r#"{{"exp":{text}}}"#);
        assert_eq!(decode(&payload).unwrap().exp, secs(want), "{text}");
    }
}

/// Without `float-dates` no float parsing is linked: a NumericDate that is not a whole
/// number makes the payload unreadable, reported against the claim, and the session schedules
/// the token from `expires_in` or until a 401 (tests/session.rs).
#[cfg(not(feature = "float-dates"))]
#[test]
fn non_integer_numeric_dates_need_the_feature() {
    for text in ["1700000000.5", "1.7e9", "1.7E+9", "0.5", "-0"] {
        for claim in [ClaimName::Exp, ClaimName::Nbf, ClaimName::Iat] {
            let payload = format!(r#"{{"{}":{text},"sub":"x"}}"#, claim.as_str());
            assert_eq!(
                decode(&payload),
                Err(DecodeError::InvalidNumericDate { claim }),
                "{payload}"
            );
        }
    }
    assert_eq!(decode(r#"{"exp":0}"#).unwrap().exp, secs(0));
}

#[test]
fn invalid_numeric_dates() {
    for text in [
        "-1",
        "-0.5",
        "253402300800",
        "1e300",
        "18446744073709551616",
        "99999999999999999999999",
        "1e1000000000",
        "\"1700000000\"",
        "null",
        "true",
        "[1]",
        "{}",
    ] {
        for claim in [ClaimName::Exp, ClaimName::Nbf, ClaimName::Iat] {
            let payload = format!(r#"{{"{}":{text}}}"#, claim.as_str());
            assert_eq!(
                decode(&payload),
                Err(DecodeError::InvalidNumericDate { claim }),
                "{payload}"
            );
            assert_eq!(
                TimeClaims::decode(&token(&payload)),
                Err(DecodeError::InvalidNumericDate { claim })
            );
        }
    }
}

#[test]
fn duplicate_claims() {
    for claim in ["exp", "nbf", "iat"] {
        let payload = format!(r#"{{"{claim}":1,"x":0,"{claim}":2}}"#);
        assert!(
            matches!(decode(&payload), Err(DecodeError::DuplicateClaim { .. })),
            "{payload}"
        );
    }
    for claim in ["iss", "sub", "jti", "aud"] {
        let payload = format!(r#"{{"{claim}":"a","{claim}":"b"}}"#);
        assert!(
            matches!(decode(&payload), Err(DecodeError::DuplicateClaim { .. })),
            "{payload}"
        );
    }
    // Unknown claims may repeat: they are not read.
    assert!(decode(r#"{"x":1,"x":2}"#).is_ok());
}

#[test]
fn string_claims_of_wrong_type() {
    for (claim, name) in [
        (ClaimName::Iss, "iss"),
        (ClaimName::Sub, "sub"),
        (ClaimName::Jti, "jti"),
    ] {
        for value in ["1", "null", "[\"a\"]", "{}", "true"] {
            let payload = format!(r#"{{"{name}":{value}}}"#);
            assert_eq!(
                decode(&payload),
                Err(DecodeError::InvalidClaimType { claim }),
                "{payload}"
            );
        }
    }
}

#[test]
fn claim_too_long_names_the_claim() {
    let long = "x".repeat(DEFAULT_STR_CAPACITY + 1);
    let exact = "x".repeat(DEFAULT_STR_CAPACITY);
    for (claim, name) in [
        (ClaimName::Iss, "iss"),
        (ClaimName::Sub, "sub"),
        (ClaimName::Jti, "jti"),
    ] {
        let ok = format!(r#"{{"{name}":"{exact}"}}"#);
        assert!(decode(&ok).is_ok());
        let bad = format!(r#"{{"{name}":"{long}"}}"#);
        assert_eq!(
            decode(&bad),
            Err(DecodeError::ClaimTooLong {
                claim,
                capacity: DEFAULT_STR_CAPACITY
            })
        );
    }
    let bad = format!(r#"{{"aud":["ok","{long}"]}}"#);
    assert_eq!(
        decode(&bad),
        Err(DecodeError::ClaimTooLong {
            claim: ClaimName::Aud,
            capacity: DEFAULT_STR_CAPACITY
        })
    );
    // Escapes count by their decoded length: 96 escaped bytes fit in 96.
    let escaped = "\\u0041".repeat(DEFAULT_STR_CAPACITY);
    assert_eq!(
        decode(&format!(r#"{{"sub":"{escaped}"}}"#))
            .unwrap()
            .sub
            .unwrap()
            .len(),
        96
    );
}

#[test]
fn long_unknown_claims_do_not_need_room() {
    // An unknown claim is skipped in place: its length is bounded only by the payload buffer.
    let long = "\\u00e9".repeat(120);
    assert_eq!(
        decode(&format!(r#"{{"scope":"{long}","exp":5}}"#))
            .unwrap()
            .exp,
        secs(5)
    );
}

#[test]
fn malformed_segment_counts() {
    assert_eq!(
        Claims::decode(""),
        Err(DecodeError::Malformed { segments: 1 })
    );
    assert_eq!(
        Claims::decode("abc"),
        Err(DecodeError::Malformed { segments: 1 })
    );
    assert_eq!(
        Claims::decode("a.e30"),
        Err(DecodeError::Malformed { segments: 2 })
    );
    assert_eq!(
        Claims::decode("a.e30.b.c"),
        Err(DecodeError::Malformed { segments: 4 })
    );
    assert_eq!(
        Claims::decode("a.b.c.d.e.f"),
        Err(DecodeError::Malformed { segments: 6 })
    );
    // An unsecured JWT (alg "none") has an empty signature and is still readable.
    assert!(Claims::decode("eyJhbGciOiJub25lIn0.e30.").is_ok());
}

#[test]
fn jwe_is_encrypted() {
    let jwe = "eyJhbGciOiJSU0EtT0FFUCIsImVuYyI6IkEyNTZHQ00ifQ.OKOawDo13gRp2ojaHV7LFpZcgV7T6DVZKTyKOMTYUmKoTCVJRgckCL9kiMT03JGeipsEdY3mx_etLbbWSrFr05kLzcSr4qKAq7YN7e9jwQRb23nfa6c9d-StnImGyFDbSv04uVuxIp5Zms1gNxKKK2Da14B8S4rzVRltdYwam_lDp5XnZAYpQdb76FdIKLaVmqgfwX7XWRxv2322i-vDxRfqNzo_tETKzpVLzfiwQyeyPGLBIO56YJ7eObdv0je81860ppamavo35UgoRdbYaBcoh9QcfylQr66oc6vFWXRcZ_ZT2LawVCWTIy3brGPi6UklfCpIMfIjf7iGdXKHzg.48V1_ALb6US04U3b.5eym8TW_c8SuK0ltJ3rpYIzOeDQz7TALvtu6UG9oMo4vpzs9tX_EFShS8iB7j6jiSdiwkIr3ajwQzaBtQD_A.XFBoMYUZodetZdvTiFvSkQ";
    assert_eq!(Claims::decode(jwe), Err(DecodeError::Encrypted));
    assert_eq!(TimeClaims::decode(jwe), Err(DecodeError::Encrypted));
}

#[test]
fn empty_payload() {
    assert_eq!(Claims::decode("a..c"), Err(DecodeError::EmptyPayload));
    assert_eq!(Claims::decode("a.==.c"), Err(DecodeError::EmptyPayload));
}

#[test]
fn bad_base64() {
    for payload in ["e30*", "e3 0", "e", "eyJ+", "eyJ/", "e30==="] {
        let t = format!("{HEADER}.{payload}.c2ln");
        assert_eq!(Claims::decode(&t), Err(DecodeError::Base64), "{payload}");
    }
}

#[test]
fn padding_is_tolerated() {
    let payload = r#"{"exp":12}"#; // 10 bytes: base64 needs two padding characters
    let padded = URL_SAFE.encode(payload);
    assert!(padded.ends_with("=="));
    let t = format!("{HEADER}.{padded}.c2ln");
    assert_eq!(Claims::decode(&t).unwrap().exp, secs(12));
}

#[test]
fn standard_alphabet_is_not_base64url() {
    // `>?` encodes to `Pj8` in both alphabets, but `??>` to `Pz8+` (standard) and `Pz8-` (url).
    let payload = r#"{"sub":"??>"}"#;
    let standard = STANDARD.encode(payload);
    assert!(
        standard.contains('+') || standard.contains('/'),
        "{standard}"
    );
    let t = format!("{HEADER}.{}.c2ln", standard.trim_end_matches('='));
    assert_eq!(Claims::decode(&t), Err(DecodeError::Base64));
}

#[test]
fn payload_too_large_for_scratch() {
    let big = format!(r#"{{"pad":"{}"}}"#, "a".repeat(DEFAULT_PAYLOAD_CAPACITY));
    let needed = big.len();
    assert_eq!(
        decode(&big),
        Err(DecodeError::TooLarge {
            needed,
            capacity: DEFAULT_PAYLOAD_CAPACITY
        })
    );
    // The same payload fits a larger caller buffer.
    let mut scratch = vec![0u8; needed];
    assert!(Claims::<8, 1>::decode_in(&token(&big), &mut scratch).is_ok());
    // One byte short is still an error, never a truncation.
    let mut short = vec![0u8; needed - 1];
    assert_eq!(
        TimeClaims::decode_in(&token(&big), &mut short),
        Err(DecodeError::TooLarge {
            needed,
            capacity: needed - 1
        })
    );
}

#[test]
fn invalid_utf8_payload() {
    let bytes = b"{\"sub\":\"\xff\xfe\"}";
    let t = format!("{HEADER}.{}.c2ln", URL_SAFE_NO_PAD.encode(bytes));
    assert_eq!(Claims::decode(&t), Err(DecodeError::Utf8));
}

#[test]
fn payload_not_an_object() {
    // serde-json-core cannot tell another JSON value from text that is not JSON: anything
    // that does not start with `{` is `not_an_object`.
    for payload in [
        "[]", "42", "\"exp\"", "null", "true", "[", "nope", "not json",
    ] {
        assert_eq!(decode(payload), Err(DecodeError::NotAnObject), "{payload}");
    }
}

#[test]
fn payload_not_json() {
    for payload in [
        "{",
        "{\"exp\" 1}",
        "{\"a\":1,}",
        "{\"a\":1} x",
        "{'a':1}",
        "{\"a\":}",
        "{\"a\":[1,}",
        "{\"a\":\"unterminated}",
    ] {
        assert_eq!(decode(payload), Err(DecodeError::Json), "{payload:?}");
    }
    // What follows a date is read as part of it: the library stops after `1`.
    assert_eq!(
        decode("{\"exp\":1 x"),
        Err(DecodeError::InvalidNumericDate {
            claim: ClaimName::Exp
        })
    );
}

#[test]
fn strings_the_crate_reads_are_strict_json() {
    // serde-json-core's unescaper takes `\u+041` and its parser raw control characters; the
    // crate checks every string it keeps or compares for both.
    for payload in [
        r#"{"iss":"\u+041"}"#,
        "{\"sub\":\"a\nb\"}",
        "{\"jti\":\"\u{1}\"}",
        r#"{"aud":["ok","\u+041"]}"#,
    ] {
        assert_eq!(decode(payload), Err(DecodeError::Json), "{payload:?}");
    }
    // A name that is not strict JSON is no claim name: `e\u+078p` is an unknown member.
    assert_eq!(decode(r#"{"e\u+078p":5}"#).unwrap().exp, None);
    // The same characters escaped are fine.
    assert_eq!(
        decode(r#"{"sub":"a\nb\u0041"}"#).unwrap().sub.as_deref(),
        Some("a\nbA")
    );
}

#[test]
fn unknown_scalars_are_skipped_leniently() {
    // serde-json-core skips an unknown number or literal by reading up to the next `,`, `}`
    // or `]` without checking it (README, "serde-json-core's limits"). The registered claims
    // are still read exactly, and nothing else is taken from such a value.
    for payload in [
        r#"{"a":tru,"exp":5}"#,
        r#"{"a":1.2.3,"exp":5}"#,
        r#"{"a":x y,"exp":5}"#,
    ] {
        assert_eq!(decode(payload).unwrap().exp, secs(5), "{payload}");
    }
}

#[test]
fn nesting_too_deep() {
    let deep = format!(r#"{{"x":{}{}}}"#, "[".repeat(200), "]".repeat(200));
    let mut scratch = vec![0u8; 1024];
    assert_eq!(
        TimeClaims::decode_in(&token(&deep), &mut scratch),
        Err(DecodeError::TooDeep)
    );
    // 16 levels, the top-level object included, are read; 17 are refused before parsing,
    // because serde-json-core skips nested values by recursion.
    let nested = |levels: usize| {
        let inner = levels - 1;
        format!(
            r#"{{"x":{}{},"exp":3}}"#,
            "[".repeat(inner),
            "]".repeat(inner)
        )
    };
    assert_eq!(decode(&nested(16)).unwrap().exp, secs(3));
    assert_eq!(decode(&nested(17)), Err(DecodeError::TooDeep));
    // Brackets inside strings, escaped quotes included, are not nesting.
    let quoted = format!(r#"{{"x":"\"{}","exp":3}}"#, "[".repeat(100));
    assert_eq!(decode(&quoted).unwrap().exp, secs(3));
    // Hostile nesting is refused without parsing, at any depth.
    let hostile = format!("{{\"x\":{}", "[".repeat(100_000));
    let mut big = vec![0u8; hostile.len()];
    assert_eq!(
        TimeClaims::decode_in(&token(&hostile), &mut big),
        Err(DecodeError::TooDeep)
    );
}

#[test]
fn white_space_around_json() {
    assert_eq!(
        decode(" \n{ \"exp\" : 3 ,\t\"iat\":1 }\r\n").unwrap().exp,
        secs(3)
    );
}

#[test]
fn time_claims_skip_string_claims() {
    // The scheduling-only decode does not read string claims, so it needs no room for them.
    let long = "x".repeat(300);
    let payload = format!(r#"{{"sub":"{long}","exp":10,"nbf":2,"iat":1,"aud":5}}"#);
    let times = TimeClaims::decode(&token(&payload)).unwrap();
    assert_eq!(
        times,
        TimeClaims {
            exp: secs(10),
            nbf: secs(2),
            iat: secs(1)
        }
    );
    assert!(decode(&payload).is_err());
}

#[test]
fn debug_never_shows_token_text() {
    let t = token(r#"{"exp":1700000300,"iat":1700000000,"jti":"abc"}"#);
    let payload_b64 = t.split('.').nth(1).unwrap();
    let shown = format!(
        "{:?} {:?}",
        Claims::decode(&t).unwrap(),
        TimeClaims::decode(&t).unwrap()
    );
    assert!(!shown.contains(payload_b64) && !shown.contains(HEADER) && !shown.contains("c2ln"));
    // Errors carry no token bytes either.
    for bad in [format!("{t}.x"), t.replace('.', ".!")] {
        let err = Claims::decode(&bad).unwrap_err();
        let text = format!("{err:?} {err}");
        assert!(!text.contains(payload_b64) && !text.contains('!'), "{text}");
    }
}

#[test]
fn error_kinds_are_snake_case_variant_names() {
    let cases = [
        (DecodeError::Malformed { segments: 2 }, "malformed"),
        (DecodeError::Encrypted, "encrypted"),
        (DecodeError::EmptyPayload, "empty_payload"),
        (DecodeError::Base64, "base64"),
        (
            DecodeError::TooLarge {
                needed: 2,
                capacity: 1,
            },
            "too_large",
        ),
        (DecodeError::Utf8, "utf8"),
        (DecodeError::NotAnObject, "not_an_object"),
        (DecodeError::Json, "json"),
        (DecodeError::TooDeep, "too_deep"),
        (
            DecodeError::DuplicateClaim {
                claim: ClaimName::Exp,
            },
            "duplicate_claim",
        ),
        (
            DecodeError::InvalidClaimType {
                claim: ClaimName::Iss,
            },
            "invalid_claim_type",
        ),
        (
            DecodeError::ClaimTooLong {
                claim: ClaimName::Sub,
                capacity: 1,
            },
            "claim_too_long",
        ),
        (
            DecodeError::TooManyAudiences { capacity: 1 },
            "too_many_audiences",
        ),
        (
            DecodeError::InvalidNumericDate {
                claim: ClaimName::Nbf,
            },
            "invalid_numeric_date",
        ),
    ];
    for (err, kind) in cases {
        assert_eq!(err.kind(), kind);
        let debug = format!("{err:?}");
        let variant: String = debug.chars().take_while(|c| c.is_alphanumeric()).collect();
        let snake: String = variant
            .chars()
            .enumerate()
            .flat_map(|(i, c)| {
                let sep = (i > 0 && c.is_uppercase()).then_some('_');
                sep.into_iter().chain(c.to_lowercase())
            })
            .collect();
        assert_eq!(snake, kind);
        assert!(!err.to_string().is_empty());
    }
}
