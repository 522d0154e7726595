//! Canned server answers for both dialects, as [`Transaction`]s that expect the matching
//! request on the token endpoint (add or override expectations with the `Transaction` methods).

use super::transport::Transaction;

/// Django REST Framework SimpleJWT, with its default paths (`/api/token/`,
/// `/api/token/refresh/`) and its real answer bodies.
///
/// ```
/// use jwt_refresh::mock::{simplejwt, MockTransport, Transaction};
/// use jwt_refresh::transport::{Endpoint, Method, Request, Transport};
///
/// let mut mock = MockTransport::new(&[simplejwt::blacklisted("r-1")]);
/// let mut body = [0u8; 128];
/// let request = Request {
///     method: Method::Post,
///     endpoint: Endpoint::Auth,
///     body: br#"{"refresh":"r-1"}"#,
///     ..Request::get("/api/token/refresh/")
/// };
/// assert_eq!(mock.send(&request, &mut body).unwrap().status, 401);
/// mock.done();
/// ```
pub mod simplejwt {
    use super::Transaction;

    /// The login path of [`SimpleJwt::default`](crate::protocol::SimpleJwt).
    pub const LOGIN_PATH: &str = "/api/token/";
    /// The refresh path of [`SimpleJwt::default`](crate::protocol::SimpleJwt).
    pub const REFRESH_PATH: &str = "/api/token/refresh/";
    /// The body of a 401 to a refresh with an expired or invalid refresh token.
    pub const TOKEN_NOT_VALID: &str =
        r#"{"detail":"Token is invalid or expired","code":"token_not_valid"}"#;
    /// The body of a 401 to a refresh with a blacklisted (already rotated) refresh token.
    pub const BLACKLISTED: &str = r#"{"detail":"Token is blacklisted","code":"token_not_valid"}"#;
    /// The body of a 401 to a login with wrong credentials.
    pub const NO_ACTIVE_ACCOUNT: &str =
        r#"{"detail":"No active account found with the given credentials"}"#;
    /// The body of the API's 401 to an expired or invalid access token.
    pub const API_TOKEN_NOT_VALID: &str = r#"{"detail":"Given token not valid for any token type","code":"token_not_valid","messages":[{"token_class":"AccessToken","token_type":"access","message":"Token is invalid or expired"}]}"#;
    /// The API's `WWW-Authenticate` on a 401.
    pub const API_CHALLENGE: &str = r#"Bearer realm="api""#;

    /// `{"refresh":"..","access":".."}`.
    pub fn pair(access: &str, refresh: &str) -> String {
        format!(r#"{{"refresh":"{refresh}","access":"{access}"}}"#)
    }

    /// The refresh request carrying `refresh_token`: `POST /api/token/refresh/` on the token
    /// endpoint with `{"refresh":".."}`. It answers `200` with no body until told otherwise.
    pub fn refresh_request(refresh_token: &str) -> Transaction {
        Transaction::token(REFRESH_PATH).body(format!(r#"{{"refresh":"{refresh_token}"}}"#))
    }

    /// A login (`POST /api/token/`, any credentials) answered with both tokens. Add
    /// `.body(..)` to check the credentials.
    pub fn login(access: &str, refresh: &str) -> Transaction {
        Transaction::token(LOGIN_PATH).respond(200, pair(access, refresh))
    }

    /// A login answered `401`: the credentials are wrong.
    pub fn login_rejected() -> Transaction {
        Transaction::token(LOGIN_PATH).respond(401, NO_ACTIVE_ACCOUNT)
    }

    /// A refresh with `sent` answered with a new access token only (no rotation).
    pub fn refresh(sent: &str, access: &str) -> Transaction {
        refresh_request(sent).respond(200, format!(r#"{{"access":"{access}"}}"#))
    }

    /// A refresh with `sent` answered with a new access token and a new refresh token
    /// (`ROTATE_REFRESH_TOKENS`).
    pub fn rotation(sent: &str, access: &str, refresh: &str) -> Transaction {
        refresh_request(sent).respond(200, pair(access, refresh))
    }

    /// A refresh with `sent` answered `401 token_not_valid`: the refresh token expired.
    pub fn token_not_valid(sent: &str) -> Transaction {
        refresh_request(sent).respond(401, TOKEN_NOT_VALID)
    }

    /// A refresh with `sent` answered `401 token_not_valid`, "Token is blacklisted": it was
    /// rotated already, or revoked.
    pub fn blacklisted(sent: &str) -> Transaction {
        refresh_request(sent).respond(401, BLACKLISTED)
    }

    /// A refresh with `sent` answered `503`, with `Retry-After` when given.
    pub fn unavailable(sent: &str, retry_after: Option<u64>) -> Transaction {
        let t = refresh_request(sent).respond(503, "");
        match retry_after {
            Some(secs) => t.retry_after(secs),
            None => t,
        }
    }

    /// Turns an API transaction's answer into the API's `401` for a rejected access token,
    /// with `WWW-Authenticate: Bearer realm="api"`.
    pub fn api_rejects(api: Transaction) -> Transaction {
        api.respond(401, API_TOKEN_NOT_VALID)
            .www_authenticate(API_CHALLENGE)
    }
}

/// OAuth 2.0 (RFC 6749), at [`OAuth2::default`](crate::protocol::OAuth2)'s `/token`. The
/// request bodies depend on your client's configuration, so only the endpoint, method and path
/// are expected; add `.body(..)` to check more.
///
/// ```
/// use jwt_refresh::mock::{oauth2, MockTransport};
/// use jwt_refresh::transport::{Endpoint, Method, Request, Transport};
///
/// let mut mock = MockTransport::new(&[oauth2::too_many_requests(30)]);
/// let mut body = [0u8; 128];
/// let request = Request { method: Method::Post, endpoint: Endpoint::Auth, ..Request::get("/token") };
/// let response = mock.send(&request, &mut body).unwrap();
/// assert_eq!((response.status, response.retry_after.map(|d| d.as_secs())), (429, Some(30)));
/// mock.done();
/// ```
pub mod oauth2 {
    use super::Transaction;

    /// The token path of [`OAuth2::default`](crate::protocol::OAuth2).
    pub const TOKEN_PATH: &str = "/token";

    /// `{"access_token":..,"token_type":"Bearer","expires_in":..,"refresh_token":..}`, the
    /// refresh token only when given.
    pub fn token_body(access: &str, refresh: Option<&str>, expires_in: u64) -> String {
        let refresh = refresh
            .map(|r| format!(r#","refresh_token":"{r}""#))
            .unwrap_or_default();
        format!(
            r#"{{"access_token":"{access}","token_type":"Bearer","expires_in":{expires_in}{refresh}}}"#
        )
    }

    /// A token request (any grant) answered with an access token that lives `expires_in`
    /// seconds, and a refresh token when given.
    pub fn token(access: &str, refresh: Option<&str>, expires_in: u64) -> Transaction {
        Transaction::token(TOKEN_PATH).respond(200, token_body(access, refresh, expires_in))
    }

    /// `400 invalid_grant`: the refresh token is expired, revoked or was rotated.
    pub fn invalid_grant() -> Transaction {
        Transaction::token(TOKEN_PATH).respond(
            400,
            r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
        )
    }

    /// `401 invalid_client`: the client's credentials are wrong.
    pub fn invalid_client() -> Transaction {
        Transaction::token(TOKEN_PATH)
            .respond(401, r#"{"error":"invalid_client"}"#)
            .www_authenticate(r#"Basic realm="token""#)
    }

    /// `503 temporarily_unavailable`, with `Retry-After` when given.
    pub fn temporarily_unavailable(retry_after: Option<u64>) -> Transaction {
        let t =
            Transaction::token(TOKEN_PATH).respond(503, r#"{"error":"temporarily_unavailable"}"#);
        match retry_after {
            Some(secs) => t.retry_after(secs),
            None => t,
        }
    }

    /// `429 Too Many Requests` with `Retry-After: {retry_after}`.
    pub fn too_many_requests(retry_after: u64) -> Transaction {
        Transaction::token(TOKEN_PATH)
            .respond(429, "")
            .retry_after(retry_after)
    }
}
