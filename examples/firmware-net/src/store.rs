//! The `TokenStore`: the refresh token in a file on the host, over semihosting, standing in for
//! flash. A save writes a temporary file and renames it over the old one (atomic on the host),
//! so a reboot finds either the old token or the new one, never half of one. On flash the same
//! guarantee takes two pages written in turn with a sequence number and a checksum, since
//! erasing and programming one page is not atomic.

use jwt_refresh::TokenStore;
use semihosting::c;
use semihosting::fs;
use semihosting::io::{self, ErrorKind, Read as _};

/// The refresh token in `refresh-token` in QEMU's working directory.
pub struct SemihostingStore;

const PATH: &core::ffi::CStr = c!("refresh-token");
const TEMP: &core::ffi::CStr = c!("refresh-token.tmp");

/// A store failure. Its `Debug` names the failure, never the file's content.
pub enum StoreError {
    /// A semihosting call failed.
    Io(io::ErrorKind),
    /// The file is longer than the buffer (a truncation is never returned).
    TooLong,
    /// The file is not UTF-8 text.
    NotUtf8,
}

impl core::fmt::Debug for StoreError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            StoreError::Io(kind) => write!(f, "Io({kind:?})"),
            StoreError::TooLong => f.write_str("TooLong"),
            StoreError::NotUtf8 => f.write_str("NotUtf8"),
        }
    }
}

impl From<io::Error> for StoreError {
    fn from(e: io::Error) -> Self {
        StoreError::Io(e.kind())
    }
}

impl TokenStore for SemihostingStore {
    type Error = StoreError;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, StoreError> {
        let mut file = match fs::File::open(PATH) {
            Ok(file) => file,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let mut len = 0;
        while let Some(rest) = buf.get_mut(len..).filter(|rest| !rest.is_empty()) {
            match file.read(rest)? {
                0 => break,
                n => len += n,
            }
        }
        // A full buffer: one more byte means the token did not fit (never a truncation).
        if len == buf.len() && file.read(&mut [0u8; 1])? != 0 {
            return Err(StoreError::TooLong);
        }
        let text = buf.get(..len).ok_or(StoreError::TooLong)?;
        let text = core::str::from_utf8(text).map_err(|_| StoreError::NotUtf8)?;
        Ok(Some(text))
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), StoreError> {
        fs::write(TEMP, refresh_token)?;
        fs::rename(TEMP, PATH)?;
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        match fs::remove_file(PATH) {
            Err(e) if e.kind() != ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        }
    }
}
