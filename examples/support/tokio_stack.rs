//! A std network stack for reqwless: `embedded-nal-async` 0.9's `TcpConnect` and `Dns` over
//! tokio's `TcpStream` and `lookup_host`, with the connection as `embedded-io-async` 0.7's
//! `Read` and `Write`. Host only: it stands in for embassy-net's `TcpClient` and `DnsSocket`.
//!
//! Shared by `examples/tokio_server.rs` (`--transport reqwless`) and
//! `tests/reqwless_transport.rs`, each through `#[path]`.

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};

use jwt_refresh::reqwless::embedded_nal_async::{AddrType, Dns, TcpConnect};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// `TcpConnect` and `Dns` over tokio, counting the connections it opens. One value can serve
/// any number of `HttpClient`s at once (it is `Sync`).
#[derive(Default)]
pub struct TokioStack {
    /// The connections opened so far.
    pub connects: AtomicUsize,
}

/// A tokio `TcpStream` as `embedded-io-async` `Read` and `Write`.
pub struct TokioConnection(tokio::net::TcpStream);

/// A `std::io::Error` as an `embedded-io-async` error.
#[derive(Debug)]
pub struct IoError(std::io::Error);

impl std::fmt::Display for IoError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for IoError {}

impl embedded_io_async::Error for IoError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        use embedded_io_async::ErrorKind as K;
        match self.0.kind() {
            std::io::ErrorKind::TimedOut => K::TimedOut,
            std::io::ErrorKind::ConnectionRefused => K::ConnectionRefused,
            std::io::ErrorKind::ConnectionReset => K::ConnectionReset,
            std::io::ErrorKind::ConnectionAborted => K::ConnectionAborted,
            _ => K::Other,
        }
    }
}

impl embedded_io_async::ErrorType for TokioConnection {
    type Error = IoError;
}

impl embedded_io_async::Read for TokioConnection {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, IoError> {
        self.0.read(buf).await.map_err(IoError)
    }
}

impl embedded_io_async::Write for TokioConnection {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, IoError> {
        self.0.write(buf).await.map_err(IoError)
    }

    async fn flush(&mut self) -> Result<(), IoError> {
        self.0.flush().await.map_err(IoError)
    }
}

impl TcpConnect for TokioStack {
    type Error = IoError;
    type Connection<'a>
        = TokioConnection
    where
        Self: 'a;

    async fn connect(&self, remote: SocketAddr) -> Result<TokioConnection, IoError> {
        self.connects.fetch_add(1, Ordering::SeqCst);
        let stream = tokio::net::TcpStream::connect(remote)
            .await
            .map_err(IoError)?;
        Ok(TokioConnection(stream))
    }
}

impl Dns for TokioStack {
    type Error = std::io::Error;

    async fn get_host_by_name(
        &self,
        host: &str,
        _addr_type: AddrType,
    ) -> Result<IpAddr, std::io::Error> {
        let mut addrs = tokio::net::lookup_host((host, 0)).await?;
        addrs
            .next()
            .map(|addr| addr.ip())
            .ok_or_else(|| std::io::Error::other("no address"))
    }

    async fn get_host_by_address(
        &self,
        _addr: IpAddr,
        _result: &mut [u8],
    ) -> Result<usize, std::io::Error> {
        Err(std::io::Error::other("unsupported"))
    }
}
