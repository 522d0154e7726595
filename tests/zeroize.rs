//! Secret hygiene: token buffers are wiped when tokens are replaced, logged out or dropped, the
//! drivers wipe the request and answer buffers they used for tokens, and no `Debug` or
//! `Display` output of a public type shows a token, a password or a client secret.
// Reading a session's raw bytes needs `unsafe`; the library itself forbids it.
#![allow(unsafe_code)]

use std::mem::{size_of, ManuallyDrop};

use jwt_refresh::mock::{simplejwt, MockClock, MockTransport, Transaction};
use jwt_refresh::policy::TokenFacts;
use jwt_refresh::protocol::{ClientAuth, Credentials, OAuth2, SimpleJwt};
use jwt_refresh::{
    AsyncClient, Client, Instant, NoStore, Output, Protocol, RefreshPolicy, Request, Session,
    TokenResponse,
};

/// The bytes of a value, as they lie in memory (padding included: this is a test, reading
/// whatever is there is the point).
fn raw<T>(value: &T) -> Vec<u8> {
    let ptr = (value as *const T).cast::<u8>();
    // SAFETY: `value` is a live reference to `size_of::<T>()` bytes. Padding bytes may be
    // uninitialised; the test only searches them for a pattern.
    unsafe { std::slice::from_raw_parts(ptr, size_of::<T>()) }.to_vec()
}

fn contains(hay: &[u8], needle: &str) -> bool {
    hay.windows(needle.len()).any(|w| w == needle.as_bytes())
}

/// A token with a distinctive middle that cannot occur by chance.
fn token(marker: &str) -> String {
    format!("opaque.{marker}{marker}{marker}.tail")
}

fn session_with(access: &str, refresh: &str) -> Session<'static, 256, 256> {
    let mut s = Session::new(
        Protocol::SimpleJwt(SimpleJwt::default()),
        RefreshPolicy::default(),
    );
    s.set_tokens(
        Instant::ZERO,
        Instant::ZERO,
        access,
        Some(refresh),
        TokenFacts::default(),
    )
    .unwrap();
    s
}

#[test]
fn replaced_tokens_leave_no_trace() {
    let (old_access, old_refresh) = (token("OLDACCESS"), token("OLDREFRESH"));
    let mut s = session_with(&old_access, &old_refresh);
    assert!(contains(&raw(&s), "OLDACCESS") && contains(&raw(&s), "OLDREFRESH"));
    // Shorter new tokens: a plain `clear()` would leave the old ones' tails in the buffers.
    s.set_tokens(
        Instant::ZERO,
        Instant::ZERO,
        "new-a",
        Some("new-r"),
        TokenFacts::default(),
    )
    .unwrap();
    let bytes = raw(&s);
    assert!(contains(&bytes, "new-a") && contains(&bytes, "new-r"));
    assert!(
        !contains(&bytes, "OLDACCESS"),
        "old access token left in RAM"
    );
    assert!(
        !contains(&bytes, "OLDREFRESH"),
        "old refresh token left in RAM"
    );
}

#[test]
fn refresh_answer_replacing_tokens_wipes_the_old_ones() {
    let protocol = Protocol::SimpleJwt(SimpleJwt::default());
    let mut s: Session<'static, 256, 256> = Session::new(protocol, RefreshPolicy::default());
    s.set_refresh_token(Instant::ZERO, &token("FIRSTREFRESH"), None)
        .unwrap();
    let mut buf = [0u8; 512];
    assert!(matches!(
        s.poll(Instant::ZERO, &mut buf),
        Output::Refresh(_)
    ));
    let answer = br#"{"access":"a2","refresh":"r2"}"#;
    s.handle_token_response(
        Instant::ZERO,
        None,
        &TokenResponse {
            status: 200,
            body: answer,
            retry_after: None,
        },
    )
    .unwrap();
    assert!(!contains(&raw(&s), "FIRSTREFRESH"));
}

#[test]
fn logout_wipes_both_tokens() {
    let mut s = session_with(&token("LOGOUTACCESS"), &token("LOGOUTREFRESH"));
    s.logout();
    let bytes = raw(&s);
    assert!(!contains(&bytes, "LOGOUTACCESS") && !contains(&bytes, "LOGOUTREFRESH"));
}

#[test]
fn dropping_a_session_wipes_both_tokens() {
    let mut slot = ManuallyDrop::new(session_with(&token("DROPACCESS"), &token("DROPREFRESH")));
    assert!(contains(&raw(&*slot), "DROPACCESS"));
    // SAFETY: dropped once, and `slot` is only read as raw bytes afterwards.
    unsafe { ManuallyDrop::drop(&mut slot) };
    let bytes = raw(&*slot);
    assert!(!contains(&bytes, "DROPACCESS") && !contains(&bytes, "DROPREFRESH"));
}

/// The new tokens of the refresh answer.
const NEW_TOKENS: &str =
    r#"{"access":"opaque.NEWACCESSNEWACCESS.tail","refresh":"opaque.NEWREFRESHNEWREFRESH.tail"}"#;

/// A server that answers the refresh with new tokens, then the API with a short body.
fn two_step() -> MockTransport {
    MockTransport::new(&[
        simplejwt::refresh_request(&token("SENTREFRESH")).respond(200, NEW_TOKENS),
        Transaction::get("/api/protected/").respond(200, "{}"),
    ])
}

fn provisioned() -> Session<'static, 256, 256> {
    let mut s = Session::new(
        Protocol::SimpleJwt(SimpleJwt::default()),
        RefreshPolicy::default(),
    );
    s.set_refresh_token(Instant::ZERO, &token("SENTREFRESH"), None)
        .unwrap();
    s
}

#[test]
fn drivers_wipe_the_buffers_they_used_for_tokens() {
    let (mut server, clock) = (two_step(), MockClock::new());
    let mut scratch = [0u8; 512];
    let mut body = [0u8; 512];
    let session = provisioned();
    let mut client = Client::new(
        session,
        server.clone(),
        clock.clone(),
        clock,
        NoStore,
        &mut scratch,
    );
    client
        .send(&Request::get("/api/protected/"), &mut body)
        .unwrap();
    drop(client);
    // The refresh request body held the old refresh token; the answer held the new tokens.
    assert!(
        !contains(&scratch, "SENTREFRESH"),
        "request body left in the scratch buffer"
    );
    assert!(!contains(&body, "NEWACCESS") && !contains(&body, "NEWREFRESH"));
    server.done();
}

#[test]
fn the_async_driver_wipes_them_too() {
    let (mut server, clock) = (two_step(), MockClock::new());
    let mut scratch = [0u8; 512];
    let mut body = [0u8; 512];
    let session = provisioned();
    let mut client = AsyncClient::new(
        session,
        server.clone(),
        clock.clone(),
        clock,
        NoStore,
        &mut scratch,
    );
    pollster::block_on(client.send(&Request::get("/api/protected/"), &mut body)).unwrap();
    drop(client);
    assert!(
        !contains(&scratch, "SENTREFRESH"),
        "request body left in the scratch buffer"
    );
    assert!(!contains(&body, "NEWACCESS") && !contains(&body, "NEWREFRESH"));
    server.done();
}

#[test]
fn no_debug_or_display_output_shows_a_secret() {
    let access = token("DBGACCESS");
    let refresh = token("DBGREFRESH");
    let protocols = [
        Protocol::SimpleJwt(SimpleJwt {
            credentials: Some(Credentials {
                username: "u",
                password: "DBGPASSWORD",
            }),
            ..SimpleJwt::default()
        }),
        Protocol::OAuth2(OAuth2 {
            client_id: Some("id"),
            client_secret: Some("DBGCLIENTSECRET"),
            client_auth: ClientAuth::Basic,
            ..OAuth2::default()
        }),
    ];
    let mut shown = String::new();
    for protocol in protocols {
        shown += &format!("{protocol:?}");
        // Opaque tokens are refreshed after an assumed minute.
        let policy = RefreshPolicy {
            assumed_lifetime: Some(jwt_refresh::Duration::from_secs(60)),
            ..RefreshPolicy::default()
        };
        let mut s: Session<'_, 256, 256> = Session::new(protocol, policy);
        s.set_tokens(
            Instant::ZERO,
            Instant::ZERO,
            &access,
            Some(&refresh),
            TokenFacts::default(),
        )
        .unwrap();
        shown += &format!("{s:?}");
        let mut buf = [0u8; 512];
        // Send (the Authorization value), then a refresh request (body, Basic header).
        let out = s.poll(Instant::ZERO, &mut buf);
        shown += &format!("{out:?}");
        let out = s.poll(Instant::from_secs(1_000_000), &mut buf);
        if let Output::Refresh(r) = &out {
            shown += &format!("{r:?}");
        }
        shown += &format!("{out:?}");
        let answer = format!(r#"{{"access":"{access}","refresh":"{refresh}"}}"#);
        let response = TokenResponse {
            status: 200,
            body: answer.as_bytes(),
            retry_after: None,
        };
        shown += &format!("{response:?}");
        match s.handle_token_response(Instant::from_secs(1_000_000), None, &response) {
            Ok(g) => shown += &format!("{g:?}"),
            Err(e) => shown += &format!("{e:?} {e}"),
        }
        let out = s.poll(Instant::from_secs(1_000_000), &mut buf);
        shown += &format!("{out:?}");
        let bad = TokenResponse {
            status: 200,
            body: b"{\"access\":\"a b\"}",
            retry_after: None,
        };
        if let Err(e) = s.handle_token_response(Instant::ZERO, None, &bad) {
            shown += &format!("{e:?} {e}");
        }
    }
    for secret in [
        "DBGACCESS",
        "DBGREFRESH",
        "DBGPASSWORD",
        "DBGCLIENTSECRET",
        "aWQ6REJH",
    ] {
        assert!(!shown.contains(secret), "{secret} shown in: {shown}");
    }
    // The output did describe things (it is not just empty).
    assert!(
        shown.contains("Send") && shown.contains("Refresh") && shown.contains("Persist"),
        "{shown}"
    );
}
