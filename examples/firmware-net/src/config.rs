//! The run's settings, from `firmware.cfg` in QEMU's working directory (semihosting), written
//! by run.sh: `username`, `password`, `requests`, `interval_ms` and `seed`, one `key=value` per
//! line. A device would have the credentials in its provisioning data and the seed from its
//! TRNG.

use semihosting::c;
use semihosting::fs;
use semihosting::io::Read as _;
use static_cell::StaticCell;

/// The settings of one boot.
#[cfg_attr(feature = "baseline", allow(dead_code))]
pub struct Config {
    pub username: &'static str,
    pub password: &'static str,
    pub requests: u32,
    pub interval_ms: u64,
    /// The network stack's random seed, new at every boot.
    pub seed: u64,
}

/// Reads and parses `firmware.cfg`; None when it is missing or incomplete.
pub fn load() -> Option<Config> {
    static TEXT: StaticCell<[u8; 512]> = StaticCell::new();
    let buf = TEXT.init([0; 512]);
    let mut file = fs::File::open(c!("firmware.cfg")).ok()?;
    let mut len = 0;
    while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
        match file.read(rest).ok()? {
            0 => break,
            n => len += n,
        }
    }
    let text: &'static str = core::str::from_utf8(buf.get(..len)?).ok()?;
    let (mut username, mut password, mut requests, mut interval_ms, mut seed) =
        (None, None, None, None, None);
    for line in text.lines() {
        match line.split_once('=')? {
            ("username", v) => username = Some(v),
            ("password", v) => password = Some(v),
            ("requests", v) => requests = v.parse().ok(),
            ("interval_ms", v) => interval_ms = v.parse().ok(),
            ("seed", v) => seed = v.parse().ok(),
            _ => return None,
        }
    }
    Some(Config {
        username: username?,
        password: password?,
        requests: requests?,
        interval_ms: interval_ms?,
        seed: seed?,
    })
}
