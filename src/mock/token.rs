//! Mints compact JWTs with chosen claims for tests: [`TokenBuilder`]. The crate never verifies
//! a signature, so a token is unsigned (`alg: none`) or carries a fixed dummy signature.

use std::sync::atomic::{AtomicU64, Ordering};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

/// The server's wall-clock time, in Unix seconds, at a test's monotonic zero: the times given
/// to [`TokenBuilder::access`] and [`TokenBuilder::refresh`] count from it, and
/// [`MockClock::with_wall`](super::MockClock::with_wall) takes it.
pub const EPOCH: u64 = 1_700_000_000;

/// The header of a token without a signature.
const UNSIGNED_HEADER: &str = r#"{"alg":"none","typ":"JWT"}"#;
/// The header of a token with the dummy signature.
const SIGNED_HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;
/// The dummy signature, 32 bytes as an HS256 one: never checked by anyone.
const DUMMY_SIGNATURE: &[u8; 32] = b"jwt-refresh mock: not a signatur";

/// Builds a compact JWT (`header.payload.signature`) with the claims you choose.
///
/// Every token gets a unique `jti` unless you set one, so two tokens minted alike still
/// differ (as a server's do). Claims are written in the order they are set.
///
/// ```
/// use jwt_refresh::mock::{TokenBuilder, EPOCH};
/// use jwt_refresh::Claims;
///
/// // A SimpleJWT-style access token issued at EPOCH + 10 s that lives 5 minutes.
/// let token = TokenBuilder::access(10, 300).build();
/// let claims = Claims::decode(&token).unwrap();
/// assert_eq!(claims.iat.map(|t| t.as_secs()), Some(EPOCH + 10));
/// assert_eq!(claims.exp.map(|t| t.as_secs()), Some(EPOCH + 310));
///
/// // Any claims, in absolute Unix seconds, with the dummy signature.
/// let token = TokenBuilder::new()
///     .exp(1_800_000_000)
///     .nbf(1_700_000_100)
///     .jti("device-7-1")
///     .claim("scope", "telemetry:write")
///     .claim_json("roles", r#"["uploader"]"#)
///     .signed()
///     .build();
/// let claims = Claims::decode(&token).unwrap();
/// assert_eq!(claims.nbf.map(|t| t.as_secs()), Some(1_700_000_100));
/// assert_eq!(claims.jti.as_deref(), Some("device-7-1"));
/// assert_eq!(token.split('.').count(), 3);
/// ```
#[derive(Clone, Debug, Default)]
pub struct TokenBuilder {
    /// `(name, JSON value)` in the order set.
    claims: Vec<(String, String)>,
    jti: Option<String>,
    signed: bool,
}

impl TokenBuilder {
    /// A token with no claims yet (a unique `jti` is added when it is built).
    pub fn new() -> Self {
        TokenBuilder::default()
    }

    /// A SimpleJWT-style access token (`"token_type":"access"`) issued `at` seconds after
    /// [`EPOCH`] that lives `lifetime` seconds: `iat = EPOCH + at`, `exp = iat + lifetime`.
    pub fn access(at: u64, lifetime: u64) -> Self {
        TokenBuilder::issued("access", at, lifetime)
    }

    /// A SimpleJWT-style refresh token (`"token_type":"refresh"`), as [`TokenBuilder::access`].
    pub fn refresh(at: u64, lifetime: u64) -> Self {
        TokenBuilder::issued("refresh", at, lifetime)
    }

    fn issued(kind: &str, at: u64, lifetime: u64) -> Self {
        let iat = EPOCH.saturating_add(at);
        TokenBuilder::new()
            .claim("token_type", kind)
            .exp(iat.saturating_add(lifetime))
            .iat(iat)
    }

    /// Sets `exp` (Unix seconds).
    pub fn exp(self, secs: u64) -> Self {
        self.claim_json("exp", &secs.to_string())
    }

    /// Sets `iat` (Unix seconds).
    pub fn iat(self, secs: u64) -> Self {
        self.claim_json("iat", &secs.to_string())
    }

    /// Sets `nbf` (Unix seconds).
    pub fn nbf(self, secs: u64) -> Self {
        self.claim_json("nbf", &secs.to_string())
    }

    /// Sets `jti` instead of the unique one.
    pub fn jti(mut self, jti: &str) -> Self {
        self.jti = Some(jti.to_owned());
        self
    }

    /// Adds a string claim (escaped as JSON).
    pub fn claim(self, name: &str, value: &str) -> Self {
        self.claim_json(name, &json_string(value))
    }

    /// Adds a claim whose value is raw JSON (a number, an array, an object), written as given.
    /// A claim set twice replaces the first.
    pub fn claim_json(mut self, name: &str, json: &str) -> Self {
        match self.claims.iter_mut().find(|(n, _)| n == name) {
            Some(claim) => claim.1 = json.to_owned(),
            None => self.claims.push((name.to_owned(), json.to_owned())),
        }
        self
    }

    /// Signs with a fixed dummy HS256 signature instead of none (`alg: none`, empty signature).
    pub fn signed(mut self) -> Self {
        self.signed = true;
        self
    }

    /// The compact token.
    pub fn build(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let mut payload = String::from("{");
        for (name, value) in &self.claims {
            if payload.len() > 1 {
                payload.push(',');
            }
            payload.push_str(&json_string(name));
            payload.push(':');
            payload.push_str(value);
        }
        let jti = match &self.jti {
            Some(jti) => jti.clone(),
            None => format!("{:032x}", NEXT.fetch_add(1, Ordering::Relaxed)),
        };
        if payload.len() > 1 {
            payload.push(',');
        }
        payload.push_str(&format!(r#""jti":{}}}"#, json_string(&jti)));
        let (header, signature) = if self.signed {
            (SIGNED_HEADER, base64url(DUMMY_SIGNATURE))
        } else {
            (UNSIGNED_HEADER, String::new())
        };
        format!(
            "{}.{}.{signature}",
            base64url(header.as_bytes()),
            base64url(payload.as_bytes())
        )
    }
}

/// base64url without padding (the library's `base64` is built without `alloc`: encoded into a
/// buffer of the exact size).
fn base64url(bytes: &[u8]) -> String {
    let len = base64::encoded_len(bytes.len(), false).unwrap_or(0);
    let mut out = vec![0u8; len];
    let written = URL_SAFE_NO_PAD.encode_slice(bytes, &mut out).unwrap_or(0);
    out.truncate(written);
    String::from_utf8(out).unwrap_or_default()
}

/// `value` as a JSON string literal.
fn json_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len().saturating_add(2));
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
