//! Firmware-style application code: a telemetry uploader that posts sensor readings to an API
//! behind short-lived JWTs. It is generic over the crate's `Transport`, `Clock` and
//! `TokenStore` and embedded-hal's `DelayNs`, so the same code runs on the device (a modem, a
//! SysTick clock, a flash page) and, in `tests.rs`, on a laptop with the mock kit.

use core::fmt::Write as _;

use embedded_hal::delay::DelayNs;
use jwt_refresh::protocol::{Credentials, SimpleJwt};
use jwt_refresh::{
    Client, ClientConfig, Clock, Duration, Error, Protocol, RefreshPolicy, Request, Session,
    TokenStore, Transport,
};

/// Where readings go.
pub const TELEMETRY_PATH: &str = "/api/telemetry/";

/// How the device is set up.
#[derive(Clone, Copy, Debug)]
pub struct Config<'c> {
    /// The device's login, or `None` for a device provisioned with a refresh token only.
    pub credentials: Option<Credentials<'c>>,
    /// When to refresh; give each device its own `seed`.
    pub policy: RefreshPolicy,
}

/// Why a reading was not uploaded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UploadError {
    /// Keep the reading and try again later (the network or the token endpoint is down).
    TryLater,
    /// The device must be provisioned again (its refresh token or login was rejected).
    NeedsProvisioning,
    /// The API refused the reading with this status.
    Rejected(u16),
    /// The flash failed.
    Storage,
    /// Anything else: a configuration error.
    Fatal,
}

/// The uploader: a `Client` and a buffer for the API's answers.
pub struct Uploader<'c, 'b, T, C, D, S: TokenStore> {
    client: Client<'c, 'b, T, C, D, S>,
    body: [u8; 1024],
}

impl<'c, 'b, T, C, D, S> Uploader<'c, 'b, T, C, D, S>
where
    T: Transport,
    C: Clock,
    D: DelayNs,
    S: TokenStore,
{
    /// An uploader over the device's HTTP stack, clock, delay and flash. `scratch` holds refresh
    /// and login request bodies.
    pub fn new(
        config: Config<'c>,
        transport: T,
        clock: C,
        delay: D,
        store: S,
        scratch: &'b mut [u8],
    ) -> Self {
        let protocol = Protocol::SimpleJwt(SimpleJwt {
            credentials: config.credentials,
            ..SimpleJwt::default()
        });
        let session = Session::new(protocol, config.policy);
        // A telemetry device can wait out an outage of up to ten minutes within one upload.
        let client = Client::new(session, transport, clock, delay, store, scratch).with_config(
            ClientConfig {
                max_wait: Duration::from_secs(600),
            },
        );
        Uploader {
            client,
            body: [0; 1024],
        }
    }

    /// At boot: continues the session whose refresh token is in flash, if any.
    pub fn boot(&mut self) -> Result<bool, UploadError> {
        self.client.restore().map_err(|_| UploadError::Storage)
    }

    /// Uploads one temperature reading, in milli-degrees Celsius.
    pub fn upload(&mut self, millidegrees: i32) -> Result<(), UploadError> {
        let mut json = Json::default();
        write!(json, r#"{{"temp_mc":{millidegrees}}}"#).map_err(|_| UploadError::Fatal)?;
        let request = Request::post(TELEMETRY_PATH, "application/json", json.as_bytes());
        match self.client.send(&request, &mut self.body) {
            Ok(response) if response.is_success() => Ok(()),
            Ok(response) => Err(UploadError::Rejected(response.status)),
            Err(Error::LoginRequired(_)) => Err(UploadError::NeedsProvisioning),
            Err(Error::Unauthorized(response)) => Err(UploadError::Rejected(response.status)),
            Err(e) if e.is_retryable() => Err(UploadError::TryLater),
            Err(_) => Err(UploadError::Fatal),
        }
    }
}

/// A reading's JSON, on the stack.
#[derive(Default)]
struct Json {
    buf: [u8; 32],
    len: usize,
}

impl Json {
    fn as_bytes(&self) -> &[u8] {
        self.buf.get(..self.len).unwrap_or_default()
    }
}

impl core::fmt::Write for Json {
    fn write_str(&mut self, s: &str) -> core::fmt::Result {
        let end = self.len + s.len();
        let dst = self.buf.get_mut(self.len..end).ok_or(core::fmt::Error)?;
        dst.copy_from_slice(s.as_bytes());
        self.len = end;
        Ok(())
    }
}
