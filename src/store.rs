//! Where the refresh token lives between restarts: a [`TokenStore`] is written after every login
//! and rotation, before the new tokens are used, and read at start-up. [`NoStore`] keeps tokens
//! in RAM only.
//!
//! Only the refresh token is stored: the access token is short-lived and re-fetched at boot.

use core::fmt;

/// Persistent storage for the refresh token (a flash page, an EEPROM, a file).
pub trait TokenStore {
    /// The store's error.
    type Error: fmt::Debug;

    /// Reads the saved refresh token into `buf`; `Ok(None)` when there is none. A token longer
    /// than `buf` must be an error, not a truncation.
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, Self::Error>;

    /// Saves `refresh_token`, replacing the previous one. It must be durable when this returns:
    /// with rotation, the old token is dead once the new one has been issued.
    fn save(&mut self, refresh_token: &str) -> Result<(), Self::Error>;

    /// Forgets the saved token (after a logout or a definitive rejection).
    fn clear(&mut self) -> Result<(), Self::Error>;
}

impl<S: TokenStore + ?Sized> TokenStore for &mut S {
    type Error = S::Error;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, Self::Error> {
        (**self).load(buf)
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), Self::Error> {
        (**self).save(refresh_token)
    }

    fn clear(&mut self) -> Result<(), Self::Error> {
        (**self).clear()
    }
}

/// No persistence: tokens live in RAM, and a restart logs in again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NoStore;

/// [`NoStore`] never fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Never {}

impl TokenStore for NoStore {
    type Error = Never;

    fn load<'b>(&mut self, _buf: &'b mut [u8]) -> Result<Option<&'b str>, Never> {
        Ok(None)
    }

    fn save(&mut self, _refresh_token: &str) -> Result<(), Never> {
        Ok(())
    }

    fn clear(&mut self) -> Result<(), Never> {
        Ok(())
    }
}
