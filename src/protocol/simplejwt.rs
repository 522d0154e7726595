//! Django REST Framework SimpleJWT: `POST {login_path}` with `{"username","password"}` answers
//! `{"refresh","access"}`; `POST {refresh_path}` with `{"refresh"}` answers `{"access"}`, plus a
//! new `"refresh"` when the server rotates refresh tokens.
//!
//! A 401 whose `code` is `token_not_valid` means the refresh token is expired or blacklisted.

use core::fmt;

use serde::Serialize;

use super::{BufferTooSmall, Endpoint, EndpointError, Grant, Method, Request, TokenResponse, JSON};

/// A SimpleJWT server's paths and, optionally, the credentials to log in with.
///
/// Use the trailing slashes: without them Django answers 301.
#[derive(Clone, Copy, Debug)]
pub struct SimpleJwt<'c> {
    /// The refresh view (default `/api/token/refresh/`).
    pub refresh_path: &'c str,
    /// The login view (default `/api/token/`).
    pub login_path: &'c str,
    /// Username and password for (re-)login; `None` when tokens are provisioned.
    pub credentials: Option<Credentials<'c>>,
}

impl Default for SimpleJwt<'_> {
    fn default() -> Self {
        SimpleJwt {
            refresh_path: "/api/token/refresh/",
            login_path: "/api/token/",
            credentials: None,
        }
    }
}

/// A username and password. `Debug` does not show the password.
#[derive(Clone, Copy)]
pub struct Credentials<'c> {
    /// The username.
    pub username: &'c str,
    /// The password.
    pub password: &'c str,
}

impl fmt::Debug for Credentials<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl<'c> SimpleJwt<'c> {
    /// `POST {refresh_path}` with `{"refresh":"<token>"}`.
    pub fn refresh_request<'a>(
        &'a self,
        refresh_token: &str,
        buf: &'a mut [u8],
    ) -> Result<Request<'a>, BufferTooSmall> {
        let body = RefreshBody {
            refresh: refresh_token,
        };
        Ok(post(self.refresh_path, json_body(&body, buf)?))
    }

    /// `POST {login_path}` with `{"username":"..","password":".."}`, or `None` without
    /// credentials.
    pub fn login_request<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> Option<Result<Request<'a>, BufferTooSmall>> {
        let Credentials { username, password } = self.credentials?;
        let body = LoginBody { username, password };
        Some(json_body(&body, buf).map(|body| post(self.login_path, body)))
    }
}

/// `{"refresh":"<token>"}`.
#[derive(Serialize)]
struct RefreshBody<'a> {
    refresh: &'a str,
}

/// `{"username":"..","password":".."}`.
#[derive(Serialize)]
struct LoginBody<'a> {
    username: &'a str,
    password: &'a str,
}

/// Serializes `body` into `buf` with `serde_json_core::to_slice`. The library reports only
/// that the buffer is full, so the size needed is worked out from the strings it escapes.
fn json_body<'a, T: Serialize + JsonLen>(
    body: &T,
    buf: &'a mut [u8],
) -> Result<&'a [u8], BufferTooSmall> {
    match serde_json_core::to_slice(body, &mut *buf) {
        Ok(len) => buf.get(..len).ok_or(BufferTooSmall { needed: len }),
        Err(_) => {
            // The library filled the buffer before it failed: half a refresh token or password.
            crate::wipe::bytes(buf);
            Err(BufferTooSmall {
                needed: body.json_len(),
            })
        }
    }
}

/// The length of a body as `serde-json-core` writes it.
trait JsonLen {
    fn json_len(&self) -> usize;
}

impl JsonLen for RefreshBody<'_> {
    fn json_len(&self) -> usize {
        r#"{"refresh":""}"#
            .len()
            .saturating_add(json_str_len(self.refresh))
    }
}

impl JsonLen for LoginBody<'_> {
    fn json_len(&self) -> usize {
        r#"{"username":"","password":""}"#
            .len()
            .saturating_add(json_str_len(self.username))
            .saturating_add(json_str_len(self.password))
    }
}

/// The length of `s` between quotes as `serde-json-core` escapes it: two bytes for `\`, `"`
/// and the control characters with a short escape, six for the other control characters.
fn json_str_len(s: &str) -> usize {
    s.bytes()
        .map(|b| match b {
            b'\\' | b'"' | 0x08 | b'\t' | b'\n' | 0x0C | b'\r' => 2,
            0x00..=0x1F => 6,
            _ => 1,
        })
        .fold(0usize, usize::saturating_add)
}

fn post<'a>(path: &'a str, body: &'a [u8]) -> Request<'a> {
    Request {
        method: Method::Post,
        endpoint: Endpoint::Auth,
        path,
        content_type: Some(JSON),
        authorization: None,
        body,
    }
}

/// Classifies a SimpleJWT error answer (not 2xx, not transient) to a refresh or login.
pub(crate) fn error(grant: Grant, answer: &TokenResponse<'_>) -> EndpointError {
    let status = answer.status;
    match (status, grant) {
        (401, Grant::Login) => EndpointError::CredentialsRejected,
        (401, Grant::Refresh) if error_code(answer.body) == Some("token_not_valid") => {
            EndpointError::RefreshTokenRejected
        }
        _ => EndpointError::Configuration { status, code: None },
    }
}

/// The `code` member of an error body, when it is a plain string.
fn error_code(body: &[u8]) -> Option<&str> {
    super::string_member(body, "code")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::RawStr;
    use crate::protocol::Protocol;
    use crate::protocol::{AnswerError, TokenKind, Tokens};

    /// The whole answer path, as the session takes it.
    fn parse<'b>(grant: Grant, answer: &TokenResponse<'b>) -> Result<Tokens<'b>, EndpointError> {
        Protocol::SimpleJwt(SimpleJwt::default()).parse(grant, answer)
    }

    fn answer(status: u16, body: &str) -> TokenResponse<'_> {
        TokenResponse {
            status,
            body: body.as_bytes(),
            retry_after: None,
        }
    }

    #[test]
    fn refresh_body() {
        let p = SimpleJwt::default();
        let mut buf = [0u8; 64];
        let req = p.refresh_request("a.b.c", &mut buf).unwrap();
        assert_eq!(req.body, br#"{"refresh":"a.b.c"}"#);
        assert_eq!(
            (req.method, req.endpoint, req.path),
            (Method::Post, Endpoint::Auth, "/api/token/refresh/")
        );
        assert_eq!(req.content_type, Some("application/json"));
        let mut small = [0u8; 10];
        assert_eq!(
            p.refresh_request("a.b.c", &mut small).unwrap_err(),
            BufferTooSmall { needed: 19 }
        );
    }

    #[test]
    fn needed_is_exact_for_every_escape() {
        // The size reported when the buffer is full equals what `to_slice` writes, for every
        // kind of escape it uses.
        for password in [
            "",
            "plain",
            "q\"b\\",
            "\u{8}\t\n\u{c}\r",
            "\u{0}\u{1f}\u{7f}",
            "zoë 東",
        ] {
            let p = SimpleJwt {
                credentials: Some(Credentials {
                    username: "u\"",
                    password,
                }),
                ..SimpleJwt::default()
            };
            let mut big = [0u8; 256];
            let written = p.login_request(&mut big).unwrap().unwrap().body.len();
            let mut small = [0u8; 8];
            let Some(Err(BufferTooSmall { needed })) = p.login_request(&mut small) else {
                panic!("{password:?} fitted 8 bytes");
            };
            assert_eq!(needed, written, "{password:?}");
            let mut exact = [0u8; 256];
            assert!(p.login_request(&mut exact[..needed]).unwrap().is_ok());
            assert!(p.login_request(&mut exact[..needed - 1]).unwrap().is_err());
        }
    }

    #[test]
    fn login_body_escapes_credentials() {
        let p = SimpleJwt {
            credentials: Some(Credentials {
                username: "zoë",
                password: "p\"w\\d",
            }),
            ..SimpleJwt::default()
        };
        let mut buf = [0u8; 64];
        let req = p.login_request(&mut buf).unwrap().unwrap();
        assert_eq!(
            req.body,
            "{\"username\":\"zoë\",\"password\":\"p\\\"w\\\\d\"}".as_bytes()
        );
        assert_eq!(req.path, "/api/token/");
        assert!(SimpleJwt::default().login_request(&mut buf).is_none());
    }

    #[test]
    fn success_answers() {
        let t = parse(Grant::Refresh, &answer(200, r#"{"access":"x.y.z"}"#)).unwrap();
        assert_eq!(t.access.unescaped(), Some("x.y.z"));
        assert!(t.refresh.is_none());
        let t = parse(
            Grant::Login,
            &answer(200, r#"{"refresh":"r.r.r","access":"a.a.a","extra":[1]}"#),
        )
        .unwrap();
        assert_eq!(t.refresh.and_then(RawStr::unescaped), Some("r.r.r"));
    }

    #[test]
    fn escaped_member_names_are_the_same_names() {
        // `"refr\u0065sh"` is `"refresh"` to JSON: a rotated token must not be missed.
        let body = r#"{"acc\u0065ss":"a.a.a","refr\u0065sh":"r.r.r"}"#;
        let t = parse(Grant::Refresh, &answer(200, body)).unwrap();
        assert_eq!(t.access.unescaped(), Some("a.a.a"));
        assert_eq!(t.refresh.and_then(RawStr::unescaped), Some("r.r.r"));
        let code = r#"{"detail":"x","c\u006fde":"token_not_valid"}"#;
        assert_eq!(
            parse(Grant::Refresh, &answer(401, code)).unwrap_err(),
            EndpointError::RefreshTokenRejected
        );
    }

    #[test]
    fn bad_success_answers() {
        for (body, want) in [
            ("", AnswerError::Json),
            (r#"{"access":"x.y.z""#, AnswerError::Json),
            ("<html>", AnswerError::Json),
            (r#"{"refresh":"r"}"#, AnswerError::MissingAccessToken),
            (
                r#"{"access":1}"#,
                AnswerError::NotAString {
                    token: TokenKind::Access,
                },
            ),
            (
                r#"{"access":"a","access":"b"}"#,
                AnswerError::DuplicateField,
            ),
        ] {
            assert_eq!(
                parse(Grant::Refresh, &answer(200, body)).unwrap_err(),
                EndpointError::BadAnswer(want),
                "{body}"
            );
        }
    }

    #[test]
    fn a_duplicated_code_is_no_code_in_either_order() {
        // The last copy used to win: `token_not_valid` second dropped the refresh token, first
        // kept it. Duplicates are refused in success answers; here the code is not read at all.
        for body in [
            r#"{"code":"x","code":"token_not_valid"}"#,
            r#"{"code":"token_not_valid","code":"x"}"#,
            r#"{"code":"token_not_valid","code":"token_not_valid"}"#,
            r#"{"c\u006fde":"x","code":"token_not_valid"}"#,
            r#"{"code":"token_not_valid","detail":"d","c\u006fde":"token_not_valid"}"#,
            r#"{"code":"token_not_valid","code":1}"#,
        ] {
            assert_eq!(
                parse(Grant::Refresh, &answer(401, body)).unwrap_err(),
                EndpointError::Configuration {
                    status: 401,
                    code: None
                },
                "{body}"
            );
        }
        // One copy, escaped name or not, is still read.
        let once = r#"{"detail":"d","c\u006fde":"token_not_valid","codes":"x"}"#;
        assert_eq!(
            parse(Grant::Refresh, &answer(401, once)).unwrap_err(),
            EndpointError::RefreshTokenRejected
        );
    }

    #[test]
    fn error_answers_from_a_real_server() {
        let expired = r#"{"detail":"Token is expired","code":"token_not_valid"}"#;
        let blacklisted = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
        assert_eq!(
            parse(Grant::Refresh, &answer(401, expired)).unwrap_err(),
            EndpointError::RefreshTokenRejected
        );
        assert_eq!(
            parse(Grant::Refresh, &answer(401, blacklisted)).unwrap_err(),
            EndpointError::RefreshTokenRejected
        );
        let bad_login = r#"{"detail":"No active account found with the given credentials"}"#;
        assert_eq!(
            parse(Grant::Login, &answer(401, bad_login)).unwrap_err(),
            EndpointError::CredentialsRejected
        );
        // A 401 without the code (a proxy, say) is not proof that the refresh token is dead.
        assert!(matches!(
            parse(Grant::Refresh, &answer(401, "<html>")).unwrap_err(),
            EndpointError::Configuration { status: 401, .. }
        ));
        let missing = r#"{"refresh":["This field is required."]}"#;
        assert!(matches!(
            parse(Grant::Refresh, &answer(400, missing)).unwrap_err(),
            EndpointError::Configuration { status: 400, .. }
        ));
        assert!(matches!(
            parse(Grant::Refresh, &answer(301, "")).unwrap_err(),
            EndpointError::Configuration { status: 301, .. }
        ));
        for status in [500, 502, 503, 429, 408] {
            assert!(matches!(
                parse(Grant::Refresh, &answer(status, "")).unwrap_err(),
                EndpointError::Unavailable { .. }
            ));
        }
    }
}
