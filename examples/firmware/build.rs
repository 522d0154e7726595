//! Puts `memory.x` where cortex-m-rt's `link.x` finds it, adds defmt's linker script when the
//! `defmt` feature is on, sets the `crate_calls` and `telemetry` cfgs from the image's feature
//! (see Cargo.toml), and writes the scripted server's precomputed tokens and the stack cases of
//! the claims decoder (`tokens.rs`).
//!
//! The client never verifies signatures, so the tokens are well-formed SimpleJWT-style JWTs
//! with a fixed fake signature, and opaque OAuth 2.0 tokens. Everything is deterministic.
//!
//! The deepest stack case nests exactly as deep as the crate allows: its depth is read from
//! `MAX_DEPTH` in the crate's `src/json.rs`, so the worst case follows the limit if it changes.

use std::env;
use std::fmt::Write as _;
use std::fs;
use std::path::PathBuf;

/// Tokens the server can issue, per kind (the script uses fewer).
const COUNT: usize = 12;
/// First `iat` (2023-11-14T22:13:20Z); each token is issued 600 s after the previous one.
const EPOCH: u64 = 1_700_000_000;
/// SimpleJWT's defaults: 5-minute access tokens, 1-day refresh tokens.
const ACCESS_LIFETIME: u64 = 300;
const REFRESH_LIFETIME: u64 = 86_400;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("OUT_DIR is set by cargo"));
    fs::write(out.join("memory.x"), include_bytes!("memory.x")).expect("write memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    if env::var_os("CARGO_FEATURE_DEFMT").is_some() {
        println!("cargo:rustc-link-arg=-Tdefmt.x");
    }
    image_cfgs();
    let max_depth = max_depth();
    let mut generated = tokens();
    generated.push_str(&stack_cases(max_depth));
    fs::write(out.join("tokens.rs"), generated).expect("write tokens.rs");
    // The opt-level, for the firmware's first line of output.
    let opt = env::var("OPT_LEVEL").unwrap_or_default();
    println!("cargo:rustc-env=FIRMWARE_OPT_LEVEL={opt}");
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={JSON_RS}");
}

/// The crate's source that holds `MAX_DEPTH`, from this folder.
const JSON_RS: &str = "../../src/json.rs";

/// The image's features, as two cfgs: `crate_calls` (the firmware calls jwt-refresh: not in
/// the `baseline` and `baseline-libs` images) and `telemetry` (the firmware uses serde-json-core
/// and base64 for its own data: not in the `baseline` and `no-libs` images).
fn image_cfgs() {
    let on = |feature: &str| env::var_os(format!("CARGO_FEATURE_{feature}")).is_some();
    let images = [on("BASELINE"), on("BASELINE_LIBS"), on("NO_LIBS")];
    if images.iter().filter(|&&on| on).count() > 1 {
        panic!("enable at most one of the features `baseline`, `baseline-libs` and `no-libs`");
    }
    let [baseline, baseline_libs, no_libs] = images;
    println!("cargo:rustc-check-cfg=cfg(crate_calls)");
    println!("cargo:rustc-check-cfg=cfg(telemetry)");
    if !baseline && !baseline_libs {
        println!("cargo:rustc-cfg=crate_calls");
    }
    if !baseline && !no_libs {
        println!("cargo:rustc-cfg=telemetry");
    }
}

/// `MAX_DEPTH` of the crate's JSON reader (the nesting it accepts, the top-level object
/// included).
fn max_depth() -> usize {
    let source = fs::read_to_string(JSON_RS).expect("read the crate's src/json.rs");
    source
        .lines()
        .find_map(|line| {
            let rest = line
                .trim()
                .strip_prefix("pub(crate) const MAX_DEPTH: usize =")?;
            rest.trim()
                .trim_end_matches(';')
                .trim()
                .replace('_', "")
                .parse()
                .ok()
        })
        .expect("src/json.rs declares `pub(crate) const MAX_DEPTH: usize = N;`")
}

/// A deterministic pseudo-random stream (SplitMix64), for jti values and fake signatures.
fn bytes(seed: u64, n: usize) -> Vec<u8> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) as u8
        })
        .collect()
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// base64url without padding (RFC 7515 section 2).
fn b64url(data: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
        }
    }
    out
}

/// A compact JWS with an HS256-style header, `payload` and a fake signature.
fn jws(payload: &str, seed: u64) -> String {
    format!(
        "{}.{}.{}",
        b64url(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url(payload.as_bytes()),
        b64url(&bytes(seed, 32))
    )
}

/// A payload whose member `x` nests `depth` levels of arrays or objects (the top-level object
/// included, as the crate's depth guard counts) with a string at the bottom, then the time
/// claims and a `jti`.
fn nested_payload(depth: usize, objects: bool, exp: u64) -> String {
    let inner = depth - 1;
    let (open, close) = if objects {
        (r#"{"x":"#, "}")
    } else {
        ("[", "]")
    };
    format!(
        r#"{{"x":{}"bottom"{},"exp":{exp},"iat":{},"jti":"nested"}}"#,
        open.repeat(inner),
        close.repeat(inner),
        exp - ACCESS_LIFETIME
    )
}

/// The tokens of the claims decoder's stack cases: a payload with escaped strings and an `aud`
/// array, payloads nested to the limit (arrays, objects), to half the limit (for the cost of a
/// level), and one level past it (refused before parsing).
fn stack_cases(max_depth: usize) -> String {
    let exp = EPOCH + ACCESS_LIFETIME;
    // One raw literal: `concat!` would hand `format!` the escapes decoded.
    let escaped = format!(
        r#"{{"token_type":"access","exp":{exp},"iat":{iat},"iss":"https:\/\/auth.example.com\/realms\/d\u0065vices","sub":"device\u002d7 \"greenhouse\"","aud":["api.example.com","telemetry\/v2","\u006fta"],"jti":"9f2c\u0034e1d","note":"tab\tand \\ backslash"}}"#,
        iat = exp - ACCESS_LIFETIME
    );
    let half = max_depth / 2;
    let cases = [
        ("CLAIMS_ESCAPED", escaped),
        ("CLAIMS_DEEP_ARRAYS", nested_payload(max_depth, false, exp)),
        ("CLAIMS_DEEP_OBJECTS", nested_payload(max_depth, true, exp)),
        ("CLAIMS_HALF_ARRAYS", nested_payload(half, false, exp)),
        ("CLAIMS_TOO_DEEP", nested_payload(max_depth + 1, false, exp)),
    ];
    let mut s = String::from("\n// The claims decoder's stack cases.\n\n");
    writeln!(
        s,
        "/// `MAX_DEPTH` in the crate's `src/json.rs` when this was built."
    )
    .unwrap();
    writeln!(s, "pub const MAX_DEPTH: usize = {max_depth};").unwrap();
    writeln!(s, "/// The depth of `CLAIMS_HALF_ARRAYS`.").unwrap();
    writeln!(s, "pub const HALF_DEPTH: usize = {half};").unwrap();
    writeln!(s, "/// `exp` of every stack case.").unwrap();
    writeln!(s, "pub const CASE_EXP: u64 = {exp};\n").unwrap();
    for (i, (name, payload)) in cases.iter().enumerate() {
        writeln!(s, "/// Payload: `{}`", payload.replace('`', "'")).unwrap();
        writeln!(
            s,
            "pub const {name}: &str = {:?};",
            jws(payload, 0x5ac << 32 | i as u64)
        )
        .unwrap();
    }
    s
}

fn jwt(kind: &str, i: usize) -> (String, String, u64, u64) {
    let lifetime = if kind == "access" {
        ACCESS_LIFETIME
    } else {
        REFRESH_LIFETIME
    };
    let iat = EPOCH + 600 * i as u64;
    let exp = iat + lifetime;
    let salt = if kind == "access" { 0xa } else { 0xf };
    let jti = hex(&bytes(salt << 32 | i as u64, 16));
    let header = br#"{"alg":"HS256","typ":"JWT"}"#;
    let payload =
        format!(r#"{{"token_type":"{kind}","exp":{exp},"iat":{iat},"jti":"{jti}","user_id":"7"}}"#);
    let signature = bytes(salt << 40 | i as u64, 32);
    let token = format!(
        "{}.{}.{}",
        b64url(header),
        b64url(payload.as_bytes()),
        b64url(&signature)
    );
    (token, jti, iat, exp)
}

fn tokens() -> String {
    let mut s = String::from("// Generated by build.rs: the scripted server's tokens.\n\n");
    let mut list = |name: &str, doc: &str, items: Vec<String>| {
        writeln!(s, "/// {doc}\npub const {name}: [&str; {COUNT}] = [").unwrap();
        for item in items {
            writeln!(s, "    {item:?},").unwrap();
        }
        writeln!(s, "];\n").unwrap();
    };
    let access: Vec<_> = (0..COUNT).map(|i| jwt("access", i)).collect();
    let refresh: Vec<_> = (0..COUNT).map(|i| jwt("refresh", i)).collect();
    list(
        "SIMPLEJWT_ACCESS",
        "SimpleJWT access tokens (HS256-shaped JWTs, `exp - iat` = 300 s).",
        access.iter().map(|t| t.0.clone()).collect(),
    );
    list(
        "SIMPLEJWT_ACCESS_JTI",
        "The `jti` claim of each SimpleJWT access token.",
        access.iter().map(|t| t.1.clone()).collect(),
    );
    list(
        "SIMPLEJWT_REFRESH",
        "SimpleJWT refresh tokens (JWTs, `exp - iat` = 1 day).",
        refresh.iter().map(|t| t.0.clone()).collect(),
    );
    list(
        "OAUTH_ACCESS",
        "Opaque OAuth 2.0 access tokens (their lifetime is the answer's `expires_in`).",
        (0..COUNT)
            .map(|i| format!("oat_{}", hex(&bytes(0x0a0a << 32 | i as u64, 20))))
            .collect(),
    );
    list(
        "OAUTH_REFRESH",
        "Opaque OAuth 2.0 refresh tokens.",
        (0..COUNT)
            .map(|i| format!("ort_{}", hex(&bytes(0x0f0f << 32 | i as u64, 24))))
            .collect(),
    );
    writeln!(
        s,
        "/// `exp` and `iat` of SimpleJWT access token `i`: `iat = {EPOCH} + 600 i`."
    )
    .unwrap();
    writeln!(
        s,
        "pub const SIMPLEJWT_ACCESS_EXP_MINUS_IAT: u64 = {ACCESS_LIFETIME};"
    )
    .unwrap();
    writeln!(s, "pub const FIRST_IAT: u64 = {EPOCH};").unwrap();
    s
}
