//! OAuth 2.0 token endpoint (RFC 6749): the refresh grant (section 6), the client-credentials
//! grant for devices (section 4.4), client authentication in the body or by HTTP Basic (section
//! 2.3.1), success answers (section 5.1) and error answers (section 5.2).

use core::fmt;

use super::write::{form_encode, Base64, Writer};
use super::{BufferTooSmall, Endpoint, EndpointError, Grant, Method, Request, TokenResponse, FORM};

/// An OAuth 2.0 token endpoint and the client's registration.
#[derive(Clone, Copy)]
pub struct OAuth2<'c> {
    /// The token endpoint's path (default `/token`).
    pub token_path: &'c str,
    /// The client identifier, if the server wants one.
    pub client_id: Option<&'c str>,
    /// The client secret, for confidential clients.
    pub client_secret: Option<&'c str>,
    /// How the client authenticates (default: in the body).
    pub client_auth: ClientAuth,
    /// The scope to ask for, if any.
    pub scope: Option<&'c str>,
    /// How to log in when there is no usable refresh token (default: not at all; the refresh
    /// token is provisioned).
    pub login: OAuth2Login,
}

impl Default for OAuth2<'_> {
    fn default() -> Self {
        OAuth2 {
            token_path: "/token",
            client_id: None,
            client_secret: None,
            client_auth: ClientAuth::Body,
            scope: None,
            login: OAuth2Login::None,
        }
    }
}

impl fmt::Debug for OAuth2<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuth2")
            .field("token_path", &self.token_path)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.map(|_| "<redacted>"))
            .field("client_auth", &self.client_auth)
            .field("scope", &self.scope)
            .field("login", &self.login)
            .finish()
    }
}

/// Where client credentials go (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form fields of the body.
    Body,
    /// `Authorization: Basic`, with the form-encoded id and secret.
    Basic,
}

/// How an OAuth 2.0 session logs in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OAuth2Login {
    /// It does not: the refresh token is provisioned, and its rejection needs the application.
    None,
    /// The client-credentials grant (section 4.4), for devices that own a client secret.
    ClientCredentials,
}

/// The `error` of an OAuth 2.0 error answer (RFC 6749 section 5.2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OAuthErrorCode {
    /// `invalid_request`.
    InvalidRequest,
    /// `invalid_client`.
    InvalidClient,
    /// `invalid_grant`.
    InvalidGrant,
    /// `unauthorized_client`.
    UnauthorizedClient,
    /// `unsupported_grant_type`.
    UnsupportedGrantType,
    /// `invalid_scope`.
    InvalidScope,
    /// `server_error` (an authorization-endpoint code some token endpoints use too).
    ServerError,
    /// `temporarily_unavailable` (likewise).
    TemporarilyUnavailable,
    /// Any other code.
    Other,
}

impl OAuthErrorCode {
    fn from_str(code: &str) -> OAuthErrorCode {
        const KNOWN: [OAuthErrorCode; 8] = [
            OAuthErrorCode::InvalidRequest,
            OAuthErrorCode::InvalidClient,
            OAuthErrorCode::InvalidGrant,
            OAuthErrorCode::UnauthorizedClient,
            OAuthErrorCode::UnsupportedGrantType,
            OAuthErrorCode::InvalidScope,
            OAuthErrorCode::ServerError,
            OAuthErrorCode::TemporarilyUnavailable,
        ];
        KNOWN
            .iter()
            .copied()
            .find(|known| known.as_str() == code)
            .unwrap_or(OAuthErrorCode::Other)
    }

    /// The code as it appears on the wire (`"other"` for unknown ones).
    pub const fn as_str(self) -> &'static str {
        match self {
            OAuthErrorCode::InvalidRequest => "invalid_request",
            OAuthErrorCode::InvalidClient => "invalid_client",
            OAuthErrorCode::InvalidGrant => "invalid_grant",
            OAuthErrorCode::UnauthorizedClient => "unauthorized_client",
            OAuthErrorCode::UnsupportedGrantType => "unsupported_grant_type",
            OAuthErrorCode::InvalidScope => "invalid_scope",
            OAuthErrorCode::ServerError => "server_error",
            OAuthErrorCode::TemporarilyUnavailable => "temporarily_unavailable",
            OAuthErrorCode::Other => "other",
        }
    }
}

impl<'c> OAuth2<'c> {
    /// `grant_type=refresh_token&refresh_token=..[&scope=..]` plus client authentication.
    pub fn refresh_request<'a>(
        &'a self,
        refresh_token: &str,
        buf: &'a mut [u8],
    ) -> Result<Request<'a>, BufferTooSmall> {
        self.request(
            buf,
            "grant_type=refresh_token&refresh_token=",
            Some(refresh_token),
        )
    }

    /// `grant_type=client_credentials[&scope=..]` plus client authentication, or `None` when
    /// [`OAuth2::login`] is [`OAuth2Login::None`].
    pub fn login_request<'a>(
        &'a self,
        buf: &'a mut [u8],
    ) -> Option<Result<Request<'a>, BufferTooSmall>> {
        match self.login {
            OAuth2Login::None => None,
            OAuth2Login::ClientCredentials => {
                Some(self.request(buf, "grant_type=client_credentials", None))
            }
        }
    }

    /// Writes `Basic <credentials>` (when configured) then the body into `buf`.
    fn request<'a>(
        &'a self,
        buf: &'a mut [u8],
        grant: &str,
        token: Option<&str>,
    ) -> Result<Request<'a>, BufferTooSmall> {
        let basic = match (self.client_auth, self.client_id) {
            (ClientAuth::Basic, Some(id)) => Some((id, self.client_secret.unwrap_or(""))),
            _ => None,
        };
        let header_len = match basic {
            Some((id, secret)) => {
                let mut w = Writer::new(&mut *buf);
                w.str("Basic ");
                let mut b64 = Base64::new(&mut w);
                form_encode(id, &mut |b| b64.push(b));
                b64.push(b':');
                form_encode(secret, &mut |b| b64.push(b));
                b64.finish();
                w.len()
            }
            None => 0,
        };
        let body_len = {
            let rest = buf.get_mut(header_len..).unwrap_or_default();
            let mut w = Writer::new(rest);
            w.str(grant);
            if let Some(token) = token {
                w.form(token);
            }
            if let Some(scope) = self.scope {
                w.str("&scope=");
                w.form(scope);
            }
            if basic.is_none() {
                if let Some(id) = self.client_id {
                    w.str("&client_id=");
                    w.form(id);
                    if let Some(secret) = self.client_secret {
                        w.str("&client_secret=");
                        w.form(secret);
                    }
                }
            }
            w.len()
        };
        let needed = header_len.saturating_add(body_len);
        if needed > buf.len() {
            // The writer filled what fits: part of the Basic header, the secret or the token.
            crate::wipe::bytes(buf);
            return Err(BufferTooSmall { needed });
        }
        let buf: &'a [u8] = buf;
        let (header, rest) = buf
            .split_at_checked(header_len)
            .ok_or(BufferTooSmall { needed })?;
        let body = rest.get(..body_len).ok_or(BufferTooSmall { needed })?;
        let authorization = match basic {
            // The header is base64 and ASCII, so this cannot fail.
            Some(_) => Some(core::str::from_utf8(header).map_err(|_| BufferTooSmall { needed })?),
            None => None,
        };
        Ok(Request {
            method: Method::Post,
            endpoint: Endpoint::Auth,
            path: self.token_path,
            content_type: Some(FORM),
            authorization,
            body,
        })
    }
}

/// Classifies an OAuth 2.0 error answer (not 2xx, not transient) to a refresh or a
/// client-credentials login.
pub(crate) fn error(grant: Grant, answer: &TokenResponse<'_>) -> EndpointError {
    let status = answer.status;
    let code = error_code(answer.body);
    match (code, grant) {
        (Some(OAuthErrorCode::InvalidGrant), Grant::Refresh) => EndpointError::RefreshTokenRejected,
        (Some(OAuthErrorCode::InvalidClient), Grant::Login) => EndpointError::CredentialsRejected,
        (Some(OAuthErrorCode::ServerError | OAuthErrorCode::TemporarilyUnavailable), _) => {
            EndpointError::Unavailable {
                status,
                retry_after: answer.retry_after,
            }
        }
        _ => EndpointError::Configuration { status, code },
    }
}

/// The `error` member of an error answer.
fn error_code(body: &[u8]) -> Option<OAuthErrorCode> {
    super::string_member(body, "error").map(OAuthErrorCode::from_str)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::RawStr;
    use crate::protocol::Protocol;
    use crate::protocol::{AnswerError, Tokens};

    /// The whole answer path, as the session takes it.
    fn parse<'b>(grant: Grant, answer: &TokenResponse<'b>) -> Result<Tokens<'b>, EndpointError> {
        Protocol::OAuth2(OAuth2::default()).parse(grant, answer)
    }
    use core::fmt::Write as _;

    fn answer(status: u16, body: &str) -> TokenResponse<'_> {
        TokenResponse {
            status,
            body: body.as_bytes(),
            retry_after: None,
        }
    }

    fn text<'a>(req: &Request<'a>) -> &'a str {
        core::str::from_utf8(req.body).unwrap()
    }

    #[test]
    fn refresh_body_is_form_encoded() {
        let p = OAuth2 {
            scope: Some("read write"),
            client_id: Some("dev ice"),
            client_secret: Some("s&cret"),
            ..OAuth2::default()
        };
        let mut buf = [0u8; 256];
        let req = p
            .refresh_request("tGzv3JOkF0XG5Qx2TlKWIA+/=", &mut buf)
            .unwrap();
        assert_eq!(
            text(&req),
            "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA%2B%2F%3D&scope=read+write&client_id=dev+ice&client_secret=s%26cret"
        );
        assert_eq!(req.content_type, Some("application/x-www-form-urlencoded"));
        assert_eq!((req.path, req.authorization), ("/token", None));
    }

    #[test]
    fn basic_client_authentication() {
        // RFC 6749 section 2.3.1 example: client "s6BhdRkqt3", secret "7Fjfp0ZBr1KtDRbnfVdmIw".
        let p = OAuth2 {
            client_id: Some("s6BhdRkqt3"),
            client_secret: Some("7Fjfp0ZBr1KtDRbnfVdmIw"),
            client_auth: ClientAuth::Basic,
            ..OAuth2::default()
        };
        let mut buf = [0u8; 256];
        let req = p
            .refresh_request("tGzv3JOkF0XG5Qx2TlKWIA", &mut buf)
            .unwrap();
        assert_eq!(
            req.authorization,
            Some("Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3")
        );
        assert_eq!(
            text(&req),
            "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA"
        );
        // Too small a buffer reports the whole need, header and body.
        let mut small = [0u8; 60];
        let needed = "Basic czZCaGRSa3F0Mzo3RmpmcDBaQnIxS3REUmJuZlZkbUl3".len() + 61;
        assert_eq!(
            p.refresh_request("tGzv3JOkF0XG5Qx2TlKWIA", &mut small)
                .unwrap_err(),
            BufferTooSmall { needed }
        );
    }

    #[test]
    fn client_credentials_login() {
        let mut buf = [0u8; 128];
        assert!(OAuth2::default().login_request(&mut buf).is_none());
        let p = OAuth2 {
            login: OAuth2Login::ClientCredentials,
            client_id: Some("dev"),
            client_secret: Some("sec"),
            scope: Some("telemetry"),
            ..OAuth2::default()
        };
        let req = p.login_request(&mut buf).unwrap().unwrap();
        assert_eq!(
            text(&req),
            "grant_type=client_credentials&scope=telemetry&client_id=dev&client_secret=sec"
        );
    }

    #[test]
    fn success_answer_rfc6749_section_5_1() {
        let body = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":3600,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#;
        // The RFC's example has token_type "example": not a bearer token.
        assert_eq!(
            parse(Grant::Refresh, &answer(200, body)).unwrap_err(),
            EndpointError::BadAnswer(AnswerError::UnsupportedTokenType)
        );
        let body = body.replace("\"example\"", "\"bEaReR\"");
        let t = parse(Grant::Refresh, &answer(200, &body)).unwrap();
        assert_eq!(t.access.unescaped(), Some("2YotnFZFEjr1zCsicMWpAA"));
        assert_eq!(
            t.refresh.and_then(RawStr::unescaped),
            Some("tGzv3JOkF0XG5Qx2TlKWIA")
        );
        assert_eq!(t.expires_in, Some(3600));
    }

    #[test]
    fn escaped_member_names_are_the_same_names() {
        let body = r#"{"access\u005ftoken":"a","token_type":"Bearer","refresh_t\u006fken":"r","expires\u005fin":60}"#;
        let t = parse(Grant::Refresh, &answer(200, body)).unwrap();
        assert_eq!(t.access.unescaped(), Some("a"));
        assert_eq!(t.refresh.and_then(RawStr::unescaped), Some("r"));
        assert_eq!(t.expires_in, Some(60));
    }

    #[test]
    fn expires_in_forms() {
        for (value, want) in [
            ("3600", Some(3600)),
            ("\"3600\"", Some(3600)),
            #[cfg(feature = "float-dates")]
            ("59.9", Some(59)),
        ] {
            let body = format_body(value);
            assert_eq!(
                parse(Grant::Refresh, &answer(200, &body))
                    .unwrap()
                    .expires_in,
                want,
                "{value}"
            );
        }
        for value in [
            "-1",
            "\"soon\"",
            "null",
            "1e400",
            "\"-5\"",
            "\"12ab\"",
            "\"\"",
            "\"1.5\"",
            "[60]",
            "{}",
            // Without `float-dates` a fraction is not read: the answer is refused, typed.
            #[cfg(not(feature = "float-dates"))]
            "59.9",
        ] {
            let body = format_body(value);
            assert_eq!(
                parse(Grant::Refresh, &answer(200, &body)).unwrap_err(),
                EndpointError::BadAnswer(AnswerError::InvalidExpiresIn),
                "{value}"
            );
        }
        let t = parse(Grant::Refresh, &answer(200, r#"{"access_token":"a"}"#)).unwrap();
        assert_eq!(t.expires_in, None);
    }

    fn format_body(expires_in: &str) -> heapless::String<128> {
        let mut s = heapless::String::new();
        write!(
            s,
            r#"{{"access_token":"a","token_type":"Bearer","expires_in":{expires_in}}}"#
        )
        .unwrap();
        s
    }

    #[test]
    fn a_name_that_is_not_strict_json_is_not_read() {
        // serde-json-core's unescaper would read `\u+06f` as `o`; the crate does not, so this
        // body is no `invalid_grant` and the refresh token is kept.
        let body = r#"{"err\u+06fr":"invalid_grant"}"#;
        assert!(matches!(
            parse(Grant::Refresh, &answer(400, body)).unwrap_err(),
            EndpointError::Configuration { code: None, .. }
        ));
        // A token with one is refused when the session checks it.
        let token = r#"{"access_token":"a\u+041","token_type":"Bearer"}"#;
        let tokens = parse(Grant::Refresh, &answer(200, token)).unwrap();
        let kind = crate::protocol::TokenKind::Access;
        assert_eq!(
            crate::session::check_token(tokens.access, kind, 100),
            Err(crate::TokenError::Invalid { token: kind })
        );
    }

    #[test]
    fn a_duplicated_error_is_no_error_code_in_either_order() {
        // The last copy used to win, so the order of two `error` members decided between
        // dropping the refresh token (`invalid_grant`) and a retry (`server_error`).
        for body in [
            r#"{"error":"server_error","error":"invalid_grant"}"#,
            r#"{"error":"invalid_grant","error":"server_error"}"#,
            r#"{"error":"invalid_grant","error":"invalid_grant"}"#,
            r#"{"err\u006fr":"server_error","error_description":"x","error":"invalid_grant"}"#,
            r#"{"error":"invalid_grant","error":null}"#,
        ] {
            assert_eq!(
                parse(Grant::Refresh, &answer(400, body)).unwrap_err(),
                EndpointError::Configuration {
                    status: 400,
                    code: None
                },
                "{body}"
            );
        }
        let once = r#"{"err\u006fr":"invalid_grant","error_description":"x"}"#;
        assert_eq!(
            parse(Grant::Refresh, &answer(400, once)).unwrap_err(),
            EndpointError::RefreshTokenRejected
        );
    }

    #[test]
    fn error_answers_rfc6749_section_5_2() {
        let err = |status, code: &str, grant| {
            let mut body: heapless::String<96> = heapless::String::new();
            write!(body, r#"{{"error":"{code}","error_description":"x"}}"#).unwrap();
            parse(grant, &answer(status, &body)).unwrap_err()
        };
        assert_eq!(
            err(400, "invalid_grant", Grant::Refresh),
            EndpointError::RefreshTokenRejected
        );
        assert_eq!(
            err(401, "invalid_client", Grant::Login),
            EndpointError::CredentialsRejected
        );
        for code in [
            "invalid_client",
            "unauthorized_client",
            "unsupported_grant_type",
            "invalid_scope",
            "invalid_request",
            "whatever",
        ] {
            let e = err(400, code, Grant::Refresh);
            assert_eq!(e.class(), super::super::FailureClass::Fatal, "{code}");
        }
        assert!(matches!(
            err(400, "temporarily_unavailable", Grant::Refresh),
            EndpointError::Unavailable { status: 400, .. }
        ));
        assert!(matches!(
            parse(Grant::Refresh, &answer(400, "not json")).unwrap_err(),
            EndpointError::Configuration {
                status: 400,
                code: None
            }
        ));
        let retry = TokenResponse {
            status: 429,
            body: b"",
            retry_after: Some(crate::Duration::from_secs(7)),
        };
        assert_eq!(
            parse(Grant::Refresh, &retry).unwrap_err(),
            EndpointError::Unavailable {
                status: 429,
                retry_after: Some(crate::Duration::from_secs(7))
            }
        );
    }
}
