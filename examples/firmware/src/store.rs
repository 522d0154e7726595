//! A `TokenStore` over one page of "flash", kept in RAM with NOR flash's rules: an erase sets
//! every byte to 0xFF, programming can only clear bits, and programming a byte that is not
//! erased is an error. On hardware, `erase` and `program` would call the HAL's flash driver.
//!
//! Page layout: `b"JWT1"`, the token's length (u16, little-endian), the token, and a checksum
//! byte. A page that does not start with the magic is empty; a bad length or checksum (a torn
//! write) is an error, never a truncated token.

use jwt_refresh::TokenStore;

use crate::server::identify;
use crate::sim::{Event, Log};
use crate::stack;

/// The size of a flash page (the LM3S6965 erases 1 KiB pages).
pub const PAGE_SIZE: usize = 1024;

const MAGIC: [u8; 4] = *b"JWT1";
const HEADER: usize = MAGIC.len() + 2;

/// One erased page of simulated flash.
pub struct FlashPage {
    bytes: [u8; PAGE_SIZE],
}

impl FlashPage {
    pub const fn erased() -> Self {
        FlashPage {
            bytes: [0xFF; PAGE_SIZE],
        }
    }
}

/// Why the flash store failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum FlashError {
    /// Programming a byte that was not erased (a driver bug).
    NotErased,
    /// The token does not fit the page, or the caller's buffer.
    TooLong,
    /// A bad length or checksum: a torn write.
    Corrupt,
}

/// The refresh token store over a [`FlashPage`].
pub struct FlashStore<'a> {
    page: &'a mut FlashPage,
    log: &'a Log,
    /// Page erases so far (flash wears out: a real store would spread them over pages).
    pub erases: u32,
}

impl<'a> FlashStore<'a> {
    pub fn new(page: &'a mut FlashPage, log: &'a Log) -> Self {
        FlashStore {
            page,
            log,
            erases: 0,
        }
    }

    fn erase(&mut self) {
        self.page.bytes.fill(0xFF);
        self.erases += 1;
    }

    /// NOR flash programming: bits can only go from 1 to 0, and only erased bytes are written.
    fn program(&mut self, offset: usize, data: &[u8]) -> Result<(), FlashError> {
        let cells = self
            .page
            .bytes
            .get_mut(offset..offset + data.len())
            .ok_or(FlashError::TooLong)?;
        for (cell, &byte) in cells.iter_mut().zip(data) {
            if *cell != 0xFF {
                return Err(FlashError::NotErased);
            }
            *cell &= byte;
        }
        Ok(())
    }
}

fn checksum(data: &[u8]) -> u8 {
    data.iter().fold(0x5Au8, |sum, &b| sum.rotate_left(1) ^ b)
}

impl TokenStore for FlashStore<'_> {
    type Error = FlashError;

    #[inline(never)]
    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, FlashError> {
        stack::note_callback();
        let bytes = &self.page.bytes;
        if bytes[..MAGIC.len()] != MAGIC {
            self.log.push(Event::Load { found: None });
            return Ok(None);
        }
        let len = usize::from(u16::from_le_bytes([bytes[4], bytes[5]]));
        let stored = bytes
            .get(HEADER..HEADER + len + 1)
            .ok_or(FlashError::Corrupt)?;
        let (token, sum) = stored.split_at(len);
        if sum[0] != checksum(token) {
            return Err(FlashError::Corrupt);
        }
        let out = buf.get_mut(..len).ok_or(FlashError::TooLong)?;
        out.copy_from_slice(token);
        let token = core::str::from_utf8(out).map_err(|_| FlashError::Corrupt)?;
        self.log.push(Event::Load {
            found: Some(identify(token)),
        });
        Ok(Some(token))
    }

    #[inline(never)]
    fn save(&mut self, refresh_token: &str) -> Result<(), FlashError> {
        stack::note_callback();
        let token = refresh_token.as_bytes();
        if HEADER + token.len() + 1 > PAGE_SIZE {
            return Err(FlashError::TooLong);
        }
        self.erase();
        let len = (token.len() as u16).to_le_bytes();
        self.program(0, &MAGIC)?;
        self.program(MAGIC.len(), &len)?;
        self.program(HEADER, token)?;
        self.program(HEADER + token.len(), &[checksum(token)])?;
        self.log.push(Event::Save {
            tok: identify(refresh_token),
        });
        Ok(())
    }

    #[inline(never)]
    fn clear(&mut self) -> Result<(), FlashError> {
        stack::note_callback();
        self.erase();
        self.log.push(Event::Clear);
        Ok(())
    }
}
