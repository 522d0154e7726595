//! What the firmware does with jwt-refresh: an `AsyncClient` over the ready `ReqwlessTransport`,
//! with SimpleJWT's login and refresh, the default `RefreshPolicy`, embassy-time's clock and
//! delay, and the semihosting store. `send` is one API request with a valid access token.

use embassy_net::dns::DnsSocket;
use embassy_time::{Delay, Instant as EmbassyInstant};
use jwt_refresh::client::Error;
use jwt_refresh::policy::RefreshPolicy;
use jwt_refresh::protocol::{Credentials, Protocol, SimpleJwt};
use jwt_refresh::reqwless::ReqwlessTransport;
use jwt_refresh::session::Session;
use jwt_refresh::transport::Request;
use jwt_refresh::{AsyncClient, Clock, Duration, Instant};
use reqwless::client::HttpClient;

use crate::config::Config;
use crate::store::SemihostingStore;
use crate::{fail, Counts, Tcp, SERVER};

const PROTECTED: Request<'static> = Request::get("/api/protected/");

/// The session's clock: embassy-time's monotonic instant (the CLINT's mtime). No wall clock:
/// token lifetimes come from the tokens' `exp - iat`.
pub struct EmbassyClock;

impl Clock for EmbassyClock {
    fn now(&self) -> Instant {
        Instant::from_millis(EmbassyInstant::now().as_millis())
    }
}

type Transport<'a> = ReqwlessTransport<'a, Tcp, DnsSocket<'a>, Delay>;

/// The device's client.
pub struct App<'a> {
    client: AsyncClient<'a, 'a, Transport<'a>, EmbassyClock, Delay, SemihostingStore>,
}

impl<'a> App<'a> {
    /// The client over `tcp` and `dns`, logging in with the configured credentials; answer
    /// heads go into `head`, token requests into `scratch`.
    pub fn new(
        tcp: &'a Tcp,
        dns: &'a DnsSocket<'a>,
        cfg: &Config,
        head: &'a mut [u8],
        scratch: &'a mut [u8],
    ) -> Self {
        let Ok(transport) = ReqwlessTransport::new(HttpClient::new(tcp, dns), SERVER, SERVER, head)
        else {
            fail("the transport refused the server's URL")
        };
        let transport = transport.with_timeout(Delay, Duration::from_secs(10));
        let protocol = Protocol::SimpleJwt(SimpleJwt {
            credentials: Some(Credentials {
                username: cfg.username,
                password: cfg.password,
            }),
            ..SimpleJwt::default()
        });
        let client = AsyncClient::new(
            Session::new(protocol, RefreshPolicy::default()),
            transport,
            EmbassyClock,
            Delay,
            SemihostingStore,
            scratch,
        );
        App { client }
    }

    /// Loads the refresh token an earlier boot saved; whether there was one.
    pub fn restore(&mut self) -> bool {
        match self.client.restore() {
            Ok(restored) => restored,
            Err(e) => {
                semihosting::println!("{{\"fatal\":\"restore: {}\"}}", kind(&e));
                semihosting::process::exit(2)
            }
        }
    }

    /// One API request with a valid access token: its status, or the kind of error.
    pub async fn send(&mut self, body: &mut [u8]) -> Result<u16, &'static str> {
        self.client
            .send(&PROTECTED, body)
            .await
            .map(|response| response.status)
            .map_err(|e| kind(&e))
    }

    /// The session's refresh, login and failure counts so far.
    pub fn counts(&self) -> Counts {
        let stats = self.client.session().stats();
        Counts {
            refreshes: stats.refreshes,
            logins: stats.logins,
            failures: stats.failures,
        }
    }
}

/// The error's kind, as a firmware would log it. Formatting the whole error with `{:?}` would
/// link `core::fmt`'s machinery and every error type's `Debug`: about 12.5 KB of flash here
/// (on a device, log it through the crate's `defmt` feature instead).
fn kind<T, S>(e: &Error<T, S>) -> &'static str {
    match e {
        Error::Transport(_) => "Transport",
        Error::AnswerTooLarge(_) => "AnswerTooLarge",
        Error::RetryLater { .. } => "RetryLater",
        Error::LoginRequired(_) => "LoginRequired",
        Error::Unauthorized(_) => "Unauthorized",
        Error::Fatal(_) => "Fatal",
        Error::Store(_) => "Store",
        Error::StoredToken(_) => "StoredToken",
        _ => "other",
    }
}
