//! The demo server (`examples/support/server.rs`) against a tiny raw `TcpStream` client: each
//! test writes one request, reads to EOF and checks the bytes against `wire.md`.

#[path = "../examples/support/server.rs"]
mod server;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::{json, Value};
use server::{
    EventKind, Fault, FaultAction, Framing, OAuth2Config, Server, ServerConfig, PROTECTED_PATH,
    REFRESH_PATH, TOKEN_PATH,
};

// ---------------------------------------------------------------------------------------------
// A raw client

/// Writes `request` as is, reads until the server closes.
fn raw(addr: SocketAddr, request: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).expect("write");
    let mut out = Vec::new();
    stream.read_to_end(&mut out).expect("read to EOF");
    out
}

fn request_bytes(method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Vec<u8> {
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() || method == "POST" {
        req.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    req.push_str("\r\n");
    req.push_str(body);
    req.into_bytes()
}

#[derive(Debug)]
struct Answer {
    status: u16,
    head: String,
    body: String,
    raw: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.head.split("\r\n").skip(1).find_map(|line| {
            let (n, v) = line.split_once(':')?;
            n.eq_ignore_ascii_case(name).then(|| v.trim())
        })
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.body))
    }
}

/// Splits the head, then de-frames the body by `Content-Length`, chunked or close.
fn parse(raw: Vec<u8>) -> Answer {
    let text = String::from_utf8(raw.clone()).expect("UTF-8 answer");
    let (head, rest) = text.split_once("\r\n\r\n").expect("a complete head");
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("status");
    let mut answer = Answer {
        status,
        head: head.to_string(),
        body: String::new(),
        raw,
    };
    answer.body = if let Some(len) = answer.header("content-length") {
        let len: usize = len.parse().unwrap();
        assert_eq!(rest.len(), len, "Content-Length matches the body");
        rest.to_string()
    } else if answer.header("transfer-encoding") == Some("chunked") {
        dechunk(rest)
    } else {
        rest.to_string()
    };
    answer
}

fn dechunk(mut rest: &str) -> String {
    let mut body = String::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").expect("chunk size line");
        let n = usize::from_str_radix(size, 16).expect("hex chunk size");
        if n == 0 {
            assert_eq!(tail, "\r\n", "last chunk then an empty trailer");
            return body;
        }
        body.push_str(&tail[..n]);
        assert_eq!(&tail[n..n + 2], "\r\n");
        rest = &tail[n + 2..];
    }
}

fn call(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    parse(raw(addr, &request_bytes(method, path, headers, body)))
}

fn post_json(addr: SocketAddr, path: &str, body: &Value) -> Answer {
    let headers = [("Content-Type", "application/json")];
    call(addr, "POST", path, &headers, &body.to_string())
}

fn get_protected(addr: SocketAddr, token: Option<&str>) -> Answer {
    match token {
        Some(t) => {
            let auth = format!("Bearer {t}");
            call(addr, "GET", PROTECTED_PATH, &[("Authorization", &auth)], "")
        }
        None => call(addr, "GET", PROTECTED_PATH, &[], ""),
    }
}

fn login(server: &Server) -> (String, String) {
    let c = server.config();
    let a = post_json(
        server.addr(),
        TOKEN_PATH,
        &json!({"username": c.username, "password": c.password}),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    let v = a.json();
    (
        v["access"].as_str().unwrap().to_string(),
        v["refresh"].as_str().unwrap().to_string(),
    )
}

fn claims(server: &Server, token: &str) -> Value {
    let mut validation = Validation::new(Algorithm::HS256);
    validation.validate_exp = false;
    validation.required_spec_claims.clear();
    let key = DecodingKey::from_secret(server.config().secret.as_bytes());
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .expect("a valid HS256 token")
        .claims
}

fn payload_json(token: &str) -> String {
    use std::collections::HashMap;
    let segment = token.split('.').nth(1).unwrap();
    // base64url without padding, decoded by hand to see the claims' order.
    let alphabet: HashMap<u8, u32> =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
            .iter()
            .enumerate()
            .map(|(i, &c)| (c, i as u32))
            .collect();
    let (mut acc, mut bits, mut out) = (0u32, 0, Vec::new());
    for c in segment.bytes() {
        acc = (acc << 6) | alphabet[&c];
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    String::from_utf8(out).unwrap()
}

const BEARER_REALM: &str = "Bearer realm=\"api\"";

// ---------------------------------------------------------------------------------------------
// SimpleJWT

#[test]
fn login_and_protected_view() {
    let server = Server::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    assert!(addr.ip().is_loopback());
    assert_eq!(server.url(), format!("http://127.0.0.1:{}", addr.port()));

    // Wrong password: 401, the SimpleJWT body and the Bearer challenge.
    let a = post_json(
        addr,
        TOKEN_PATH,
        &json!({"username": "device", "password": "nope"}),
    );
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":"No active account found with the given credentials"}"#
    );
    assert_eq!(a.header("www-authenticate"), Some(BEARER_REALM));
    assert_eq!(a.header("connection"), Some("close"));

    // Missing fields: 400 per field.
    let a = post_json(addr, TOKEN_PATH, &json!({}));
    assert_eq!(a.status, 400);
    assert_eq!(
        a.json(),
        json!({"username": ["This field is required."], "password": ["This field is required."]})
    );

    // Login: refresh first, then access; real HS256 tokens with SimpleJWT's claims.
    let before = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let c = server.config();
    let a = post_json(
        addr,
        TOKEN_PATH,
        &json!({"username": c.username, "password": c.password}),
    );
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with("{\"refresh\":\""), "{}", a.body);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let v = a.json();
    let access = v["access"].as_str().unwrap();
    let refresh = v["refresh"].as_str().unwrap();
    for (token, kind, lifetime) in [(access, "access", 2), (refresh, "refresh", 86_400)] {
        assert!((150..400).contains(&token.len()), "{} bytes", token.len());
        let claims = claims(&server, token);
        assert_eq!(claims["token_type"], kind);
        assert_eq!(claims["user_id"], "1");
        let iat = claims["iat"].as_u64().unwrap();
        assert!(iat >= before && iat <= before + 1);
        assert_eq!(claims["exp"].as_u64().unwrap(), iat + lifetime);
        let jti = claims["jti"].as_str().unwrap();
        assert_eq!(jti.len(), 32);
        assert!(jti
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
        let order = payload_json(token);
        let pos = |k: &str| order.find(&format!("\"{k}\"")).unwrap();
        assert!(pos("token_type") < pos("exp") && pos("exp") < pos("iat"));
        assert!(pos("iat") < pos("jti") && pos("jti") < pos("user_id"));
    }
    assert_ne!(
        claims(&server, access)["jti"],
        claims(&server, refresh)["jti"]
    );

    // Protected: without a token, with it, with garbage, with the refresh token.
    let a = get_protected(addr, None);
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":"Authentication credentials were not provided."}"#
    );
    assert_eq!(a.header("www-authenticate"), Some(BEARER_REALM));

    let a = get_protected(addr, Some(access));
    assert_eq!(a.status, 200);
    assert_eq!(a.body, r#"{"ok":true,"user_id":"1"}"#);

    let mut forged = access.to_string();
    forged.pop();
    forged.push(if access.ends_with('A') { 'B' } else { 'A' });
    let a = get_protected(addr, Some(&forged));
    assert_eq!(a.status, 401);
    assert_eq!(a.header("www-authenticate"), Some(BEARER_REALM));
    assert_eq!(a.json()["code"], "token_not_valid");
    assert_eq!(a.json()["messages"][0]["message"], "Token is invalid");

    let a = get_protected(addr, Some(refresh));
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["messages"][0]["message"], "Token has wrong type");

    // The log.
    let events = server.events();
    assert_eq!(events.len(), 7);
    assert_eq!(server.count(EventKind::Login), 3);
    assert_eq!(server.count(EventKind::Protected), 4);
    let ok_login = &events[2];
    assert_eq!((ok_login.status, ok_login.method.as_str()), (200, "POST"));
    assert_eq!(ok_login.path, TOKEN_PATH);
    assert_eq!(
        ok_login.issued_jti.as_deref(),
        claims(&server, access)["jti"].as_str()
    );
    let ok_protected = &events[4];
    assert_eq!(ok_protected.token_jti, ok_login.issued_jti);
    assert!(events.iter().all(|e| !e.presented_expired && !e.faulted));
    assert!(events.windows(2).all(|w| w[0].at <= w[1].at));
}

#[test]
fn refresh_rotates_and_blacklists() {
    let server = Server::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    let (_, refresh) = login(&server);

    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh}));
    assert_eq!(a.status, 200);
    assert!(a.body.starts_with("{\"access\":\""), "{}", a.body);
    let v = a.json();
    let access2 = v["access"].as_str().unwrap().to_string();
    let refresh2 = v["refresh"].as_str().unwrap().to_string();
    assert_ne!(refresh2, refresh);
    assert_eq!(claims(&server, &refresh2)["token_type"], "refresh");
    assert_eq!(get_protected(addr, Some(&access2)).status, 200);

    // The old refresh token is dead after one use; the new one works.
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh}));
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#
    );
    assert_eq!(a.header("www-authenticate"), Some(BEARER_REALM));
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh2}));
    assert_eq!(a.status, 200);

    // An expired refresh token, `{}`, malformed JSON, an access token.
    let expired = server.mint_token("refresh", Duration::ZERO);
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": expired}));
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":"Token is expired","code":"token_not_valid"}"#
    );
    let a = post_json(addr, REFRESH_PATH, &json!({}));
    assert_eq!(a.status, 400);
    assert_eq!(a.body, r#"{"refresh":["This field is required."]}"#);
    let headers = [("Content-Type", "application/json")];
    let a = call(addr, "POST", REFRESH_PATH, &headers, "{\"refresh\":");
    assert_eq!(a.status, 400);
    assert!(
        a.json()["detail"]
            .as_str()
            .unwrap()
            .starts_with("JSON parse error - "),
        "{}",
        a.body
    );
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": access2}));
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["detail"], "Token has wrong type");

    let refreshes: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::Refresh)
        .collect();
    assert_eq!(refreshes.len(), 7);
    let statuses: Vec<u16> = refreshes.iter().map(|e| e.status).collect();
    assert_eq!(statuses, [200, 401, 200, 401, 400, 400, 401]);
    assert!(refreshes[3].presented_expired);
    assert_eq!(refreshes[0].token_jti, refreshes[1].token_jti);

    // Rotation off: only an access token, and the refresh token stays usable.
    let server = Server::start(ServerConfig {
        rotate: false,
        ..ServerConfig::default()
    })
    .unwrap();
    let (_, refresh) = login(&server);
    for _ in 0..2 {
        let a = post_json(server.addr(), REFRESH_PATH, &json!({"refresh": refresh}));
        assert_eq!(a.status, 200);
        let v = a.json();
        assert!(v["access"].is_string());
        assert!(v.get("refresh").is_none(), "{}", a.body);
    }
}

#[test]
fn access_token_expires_after_its_lifetime() {
    let server = Server::start(ServerConfig {
        access_lifetime: Duration::from_secs(1),
        refresh_lifetime: Duration::from_secs(1),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let (access, refresh) = login(&server);
    let exp = claims(&server, &access)["exp"].as_f64().unwrap();
    assert_eq!(get_protected(addr, Some(&access)).status, 200);

    // The only sleep of the suite: until the server's `now >= exp` (at most one second).
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    std::thread::sleep(Duration::from_secs_f64((exp - now).max(0.0) + 0.05));

    let a = get_protected(addr, Some(&access));
    assert_eq!(a.status, 401);
    assert_eq!(
        a.body,
        r#"{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is expired"}]}"#
    );
    assert_eq!(a.header("www-authenticate"), Some(BEARER_REALM));
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh}));
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["detail"], "Token is expired");

    let protected: Vec<_> = server
        .events()
        .into_iter()
        .filter(|e| e.kind == EventKind::Protected)
        .collect();
    let expired: Vec<bool> = protected.iter().map(|e| e.presented_expired).collect();
    assert_eq!(expired, [false, true]);
}

#[test]
fn missing_trailing_slash_is_a_301() {
    let server = Server::start(ServerConfig::default()).unwrap();
    let a = post_json(server.addr(), "/api/token", &json!({"username": "device"}));
    assert_eq!(a.status, 301);
    assert!(a.head.starts_with("HTTP/1.1 301 Moved Permanently\r\n"));
    assert_eq!(a.header("location"), Some(TOKEN_PATH));
    assert_eq!(a.header("content-length"), Some("0"));
    assert_eq!(a.body, "");
    assert_eq!(server.count(EventKind::Login), 0);
    assert_eq!(server.events()[0].path, "/api/token");

    let a = call(server.addr(), "GET", "/api/nothing/", &[], "");
    assert_eq!(a.status, 404);
    let a = call(server.addr(), "GET", TOKEN_PATH, &[], "");
    assert_eq!(a.status, 405);
    assert_eq!(a.body, r#"{"detail":"Method \"GET\" not allowed."}"#);
}

// ---------------------------------------------------------------------------------------------
// Framing

fn framed(framing: Framing) -> Server {
    Server::start(ServerConfig {
        framing,
        ..ServerConfig::default()
    })
    .unwrap()
}

fn login_raw(server: &Server) -> Answer {
    let c = server.config();
    let body = json!({"username": c.username, "password": c.password}).to_string();
    let headers = [("Content-Type", "application/json")];
    parse(raw(
        server.addr(),
        &request_bytes("POST", TOKEN_PATH, &headers, &body),
    ))
}

fn assert_chunked(a: &Answer) {
    let text = String::from_utf8(a.raw.clone()).unwrap();
    assert!(
        text.contains("\r\nTransfer-Encoding: chunked\r\n"),
        "{text}"
    );
    assert!(a.header("content-length").is_none());
    let (_, mut rest) = text.split_once("\r\n\r\n").unwrap();
    let mut sizes = Vec::new();
    loop {
        let (size, tail) = rest.split_once("\r\n").unwrap();
        assert!(
            size.bytes()
                .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)),
            "upper-case hex size {size:?}"
        );
        let n = usize::from_str_radix(size, 16).unwrap();
        sizes.push(size.to_string());
        if n == 0 {
            break;
        }
        rest = &tail[n + 2..];
    }
    assert!(sizes.len() >= 3, "several chunks: {sizes:?}");
    assert!(sizes
        .iter()
        .any(|s| s.contains(|c: char| c.is_ascii_uppercase())));
    assert!(a.json()["access"].is_string());
}

fn assert_close_delimited(a: &Answer) {
    assert!(a.header("content-length").is_none());
    assert!(a.header("transfer-encoding").is_none());
    assert_eq!(a.header("connection"), Some("close"));
    assert!(a.json()["access"].is_string());
}

#[test]
fn framing_modes() {
    let server = framed(Framing::ContentLength);
    let a = login_raw(&server);
    assert_eq!(
        a.header("content-length"),
        Some(a.body.len().to_string().as_str())
    );
    assert!(a.header("transfer-encoding").is_none());
    assert!(a.header("date").is_some_and(|d| d.ends_with(" GMT")));

    let a = login_raw(&framed(Framing::Chunked));
    assert_chunked(&a);

    let a = login_raw(&framed(Framing::Close));
    assert_close_delimited(&a);

    // Round robin: Content-Length, chunked, close, then Content-Length again.
    let server = framed(Framing::RoundRobin);
    let a = login_raw(&server);
    assert!(a.header("content-length").is_some());
    assert_chunked(&login_raw(&server));
    assert_close_delimited(&login_raw(&server));
    assert!(login_raw(&server).header("content-length").is_some());

    // An empty chunked body is just the last chunk.
    let server = framed(Framing::Chunked);
    let a = call(server.addr(), "POST", "/api/token", &[], "");
    assert_eq!(a.status, 301);
    assert!(a.raw.ends_with(b"\r\n\r\n0\r\n\r\n"));
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn scripted_faults() {
    let server = Server::start(ServerConfig {
        faults: vec![
            Fault::on_path(
                REFRESH_PATH,
                1,
                FaultAction::Unavailable {
                    retry_after_secs: 1,
                },
            ),
            Fault::on_path(REFRESH_PATH, 2, FaultAction::TruncatedBody),
            Fault::on_path(REFRESH_PATH, 4, FaultAction::CloseWithoutAnswer),
            Fault::on_request(
                1,
                FaultAction::Status {
                    status: 500,
                    body: "{\"detail\":\"boom\"}".into(),
                },
            ),
        ],
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();

    // Request 1 is a 500; the login is not processed.
    let c = server.config();
    let creds = json!({"username": c.username, "password": c.password});
    let a = post_json(addr, TOKEN_PATH, &creds);
    assert_eq!((a.status, a.body.as_str()), (500, "{\"detail\":\"boom\"}"));
    let (_, refresh) = login(&server);

    // Refresh 1: 503 with Retry-After, nothing consumed.
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh}));
    assert_eq!(a.status, 503);
    assert_eq!(a.header("retry-after"), Some("1"));

    // Refresh 2: processed (the old token is now blacklisted) but the body is cut short.
    let bytes = raw(
        addr,
        &request_bytes(
            "POST",
            REFRESH_PATH,
            &[("Content-Type", "application/json")],
            &json!({"refresh": refresh}).to_string(),
        ),
    );
    let text = String::from_utf8(bytes).unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"));
    let declared: usize = head
        .split("\r\n")
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(body.len(), declared / 2);
    assert!(serde_json::from_str::<Value>(body).is_err());

    // Refresh 3: the rotated-away token is blacklisted.
    let a = post_json(addr, REFRESH_PATH, &json!({"refresh": refresh}));
    assert_eq!(a.json()["detail"], "Token is blacklisted");

    // Refresh 4: the connection closes without a byte.
    let body = json!({"refresh": refresh}).to_string();
    let headers = [("Content-Type", "application/json")];
    assert!(raw(addr, &request_bytes("POST", REFRESH_PATH, &headers, &body)).is_empty());

    let events = server.events();
    let log: Vec<(EventKind, u16, bool)> = events
        .iter()
        .map(|e| (e.kind, e.status, e.faulted))
        .collect();
    assert_eq!(
        log,
        [
            (EventKind::Login, 500, true),
            (EventKind::Login, 200, false),
            (EventKind::Refresh, 503, true),
            (EventKind::Refresh, 200, true),
            (EventKind::Refresh, 401, false),
            (EventKind::Refresh, 0, true),
        ]
    );
}

#[test]
fn delay_fault_and_malformed_requests() {
    let server = Server::start(ServerConfig {
        faults: vec![Fault::every(
            PROTECTED_PATH,
            FaultAction::Delay(Duration::from_millis(150)),
        )],
        ..ServerConfig::default()
    })
    .unwrap();
    let started = std::time::Instant::now();
    let a = get_protected(server.addr(), None);
    assert_eq!(a.status, 401);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let a = parse(raw(server.addr(), b"NONSENSE\r\n\r\n"));
    assert_eq!(a.status, 400);
    // A body sent in pieces after the head is still read in full.
    let body = br#"{"username":"device","password":"device-password"}"#;
    let mut stream = TcpStream::connect(server.addr()).unwrap();
    let head = format!(
        "POST {TOKEN_PATH} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    stream.write_all(&body[..10]).unwrap();
    stream.flush().unwrap();
    std::thread::sleep(Duration::from_millis(30));
    stream.write_all(&body[10..]).unwrap();
    let mut out = Vec::new();
    stream.read_to_end(&mut out).unwrap();
    assert_eq!(parse(out).status, 200);
}

// ---------------------------------------------------------------------------------------------
// OAuth 2.0

fn form(addr: SocketAddr, path: &str, basic: Option<&str>, body: &str) -> Answer {
    let auth = basic.map(|b| format!("Basic {b}"));
    let mut headers = vec![("Content-Type", "application/x-www-form-urlencoded")];
    if let Some(auth) = &auth {
        headers.push(("Authorization", auth));
    }
    call(addr, "POST", path, &headers, body)
}

#[test]
fn oauth2_token_endpoint() {
    let server = Server::start(ServerConfig {
        oauth2: Some(OAuth2Config {
            client_id: "dev ice".into(),
            client_secret: "s&cret".into(),
            token_path: "/oauth/token".into(),
            refresh_on_client_credentials: false,
        }),
        ..ServerConfig::default()
    })
    .unwrap();
    let addr = server.addr();
    let path = "/oauth/token";
    let creds = "client_id=dev+ice&client_secret=s%26cret";
    let (_, provisioned) = server.issue_tokens();

    // Refresh grant, client authentication in the body.
    let a = form(
        addr,
        path,
        None,
        &format!("grant_type=refresh_token&refresh_token={provisioned}&{creds}"),
    );
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.header("cache-control"), Some("no-store"));
    let v = a.json();
    assert_eq!(v["token_type"], "Bearer");
    assert_eq!(v["expires_in"], 2);
    let access = v["access_token"].as_str().unwrap();
    let rotated = v["refresh_token"].as_str().unwrap().to_string();
    assert_eq!(get_protected(addr, Some(access)).status, 200);

    // The old refresh token: invalid_grant.
    let a = form(
        addr,
        path,
        None,
        &format!("grant_type=refresh_token&refresh_token={provisioned}&{creds}"),
    );
    assert_eq!(a.status, 400);
    assert_eq!(a.json()["error"], "invalid_grant");

    // HTTP Basic with the form-encoded id and secret ("dev+ice:s%26cret").
    let basic = "ZGV2K2ljZTpzJTI2Y3JldA==";
    let body = format!("grant_type=refresh_token&refresh_token={rotated}&scope=read+write");
    let a = form(addr, path, Some(basic), &body);
    assert_eq!(a.status, 200, "{}", a.body);
    assert_eq!(a.json()["scope"], "read write");

    // A wrong secret: 401 invalid_client.
    let a = form(addr, path, Some("ZGV2K2ljZTp3cm9uZw=="), &body);
    assert_eq!(a.status, 401);
    assert_eq!(a.json()["error"], "invalid_client");
    assert!(a.header("www-authenticate").is_some());

    // Client credentials: an access token, no refresh token.
    let a = form(
        addr,
        path,
        None,
        &format!("grant_type=client_credentials&{creds}"),
    );
    assert_eq!(a.status, 200);
    let v = a.json();
    assert!(v["access_token"].is_string());
    assert!(v.get("refresh_token").is_none(), "{}", a.body);

    // Configuration problems.
    let a = form(addr, path, None, &format!("grant_type=password&{creds}"));
    assert_eq!(
        (a.status, a.json()["error"].clone()),
        (400, json!("unsupported_grant_type"))
    );
    let a = form(addr, path, None, creds);
    assert_eq!(
        (a.status, a.json()["error"].clone()),
        (400, json!("invalid_request"))
    );
    let a = post_json(addr, path, &json!({"grant_type": "client_credentials"}));
    assert_eq!(
        (a.status, a.json()["error"].clone()),
        (400, json!("invalid_request"))
    );

    let kinds: Vec<EventKind> = server
        .events()
        .into_iter()
        .filter(|e| e.path == path)
        .map(|e| e.kind)
        .collect();
    use EventKind::{Login, Refresh};
    assert_eq!(
        kinds,
        [Refresh, Refresh, Refresh, Refresh, Login, Login, Login, Login]
    );
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

#[test]
fn stop_releases_the_port_and_keeps_the_log() {
    let mut server = Server::start(ServerConfig::default()).unwrap();
    let addr = server.addr();
    let _ = login(&server);
    // A connection that never sends a request must not hold `stop` up for long.
    let idle = TcpStream::connect(addr).unwrap();
    let started = std::time::Instant::now();
    server.stop();
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens after stop"
    );
    server.stop();
    assert_eq!(server.count(EventKind::Login), 1);
    drop(idle);

    let addr = {
        let server = Server::start(ServerConfig::default()).unwrap();
        server.addr()
    };
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens after drop"
    );
}

#[test]
fn concurrent_clients() {
    let server = Server::start(ServerConfig::default()).unwrap();
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| {
                let (access, _) = login(&server);
                assert_eq!(get_protected(server.addr(), Some(&access)).status, 200);
            });
        }
    });
    assert_eq!(server.count(EventKind::Login), 8);
    assert_eq!(server.count(EventKind::Protected), 8);
    // Two concurrent uses of one refresh token: exactly one wins.
    let (_, refresh) = login(&server);
    let statuses: Vec<u16> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..2)
            .map(|_| {
                s.spawn(|| {
                    post_json(server.addr(), REFRESH_PATH, &json!({"refresh": refresh})).status
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut sorted = statuses;
    sorted.sort_unstable();
    assert_eq!(sorted, [200, 401]);
}
