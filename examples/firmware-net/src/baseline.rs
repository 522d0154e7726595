//! The baseline image (feature `baseline`), for size-report.sh only: the same firmware with no
//! call into jwt-refresh. Each request is a plain reqwless GET of the server's health probe
//! (no token), and the store is only read, so the network stack, reqwless, the timers and the
//! semihosting glue stay linked. Full image minus this one is what the crate adds.

use embassy_net::dns::DnsSocket;
use jwt_refresh::TokenStore as _;
use reqwless::client::HttpClient;
use reqwless::request::Method;

use crate::config::Config;
use crate::store::SemihostingStore;
use crate::{Counts, Tcp};

const HEALTH: &str = "http://10.0.2.100:8000/api/health/";

/// A plain HTTP client.
pub struct App<'a> {
    client: HttpClient<'a, Tcp, DnsSocket<'a>>,
    head: &'a mut [u8],
    scratch: &'a mut [u8],
}

impl<'a> App<'a> {
    /// The client over `tcp` and `dns`.
    pub fn new(
        tcp: &'a Tcp,
        dns: &'a DnsSocket<'a>,
        _cfg: &Config,
        head: &'a mut [u8],
        scratch: &'a mut [u8],
    ) -> Self {
        App {
            client: HttpClient::new(tcp, dns),
            head,
            scratch,
        }
    }

    /// Whether the store holds a token.
    pub fn restore(&mut self) -> bool {
        matches!(SemihostingStore.load(self.scratch), Ok(Some(_)))
    }

    /// One GET of the health probe: its status.
    pub async fn send(&mut self, _body: &mut [u8]) -> Result<u16, &'static str> {
        let mut request = self
            .client
            .request(Method::GET, HEALTH)
            .await
            .map_err(|_| "connect")?;
        let response = request.send(self.head).await.map_err(|_| "send")?;
        Ok(response.status.0)
    }

    /// No tokens here.
    pub fn counts(&self) -> Counts {
        Counts::default()
    }
}
