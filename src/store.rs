//! Where the refresh token lives between restarts: a [`TokenStore`] is written after every login
//! and rotation, before the new tokens are used, and read at start-up. [`NoStore`] keeps tokens
//! in RAM only; [`FileStore`] (feature `std`) keeps the refresh token in a file.
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

/// A store chosen at run time: `None` keeps nothing, as [`NoStore`] does.
impl<S: TokenStore> TokenStore for Option<S> {
    type Error = S::Error;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, S::Error> {
        match self {
            Some(store) => store.load(buf),
            None => Ok(None),
        }
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), S::Error> {
        match self {
            Some(store) => store.save(refresh_token),
            None => Ok(()),
        }
    }

    fn clear(&mut self) -> Result<(), S::Error> {
        match self {
            Some(store) => store.clear(),
            None => Ok(()),
        }
    }
}

/// The refresh token in a file (feature `std`), for hosts and Linux gateways.
///
/// - [`save`](TokenStore::save) writes the token to a temporary file next to the target
///   (`<name>.tmp`, created afresh; on Unix with mode `0o600`), syncs it, renames it over the
///   target, then (on Unix) syncs the directory, so that the rename itself survives a power
///   loss. On other platforms the directory is not synced: the new content is on disk when
///   `save` returns, but after a crash the name may still lead to the previous token. A save
///   interrupted before the rename leaves the stored token as it was (and a stray `.tmp`,
///   replaced by the next save).
/// - [`load`](TokenStore::load) reads the file straight into the caller's buffer (no heap
///   copy; the small stack buffer it reads through is wiped) and trims surrounding ASCII
///   whitespace, so `echo TOKEN > file` works. A missing or blank file is `Ok(None)`. A token
///   longer than the buffer, or not UTF-8, is an [`std::io::Error`] of kind
///   [`InvalidData`](std::io::ErrorKind::InvalidData), the buffer is wiped, and the file is
///   left exactly as it was.
/// - [`clear`](TokenStore::clear) removes the file; a missing file is fine.
///
/// Use one store per file: two processes saving the same file at once share the temporary
/// file's name and could rename each other's half-written one. `Debug` shows the path, never
/// the token.
///
/// ```no_run
/// use jwt_refresh::{FileStore, TokenStore};
///
/// let mut store = FileStore::new("/var/lib/my-device/refresh-token");
/// store.save("eyJhbGciOiJIUzI1NiJ9.e30.sig")?;
/// let mut buf = [0u8; 512];
/// assert_eq!(store.load(&mut buf)?, Some("eyJhbGciOiJIUzI1NiJ9.e30.sig"));
/// # Ok::<(), std::io::Error>(())
/// ```
#[cfg(feature = "std")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileStore {
    path: std::path::PathBuf,
}

#[cfg(feature = "std")]
impl FileStore {
    /// A store keeping the token in the file at `path` (created by the first save).
    pub fn new(path: impl Into<std::path::PathBuf>) -> Self {
        FileStore { path: path.into() }
    }

    /// The file's path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// `<name>.tmp` next to the file.
    fn temporary(&self) -> std::path::PathBuf {
        let mut name = self
            .path
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
            .unwrap_or_default();
        name.push(".tmp");
        self.path.with_file_name(name)
    }

    /// Writes and syncs the temporary file, then renames it over the target.
    fn replace(&self, tmp: &std::path::Path, token: &str) -> std::io::Result<()> {
        use std::io::Write;
        // A leftover from an interrupted save goes first, so that the file is created afresh
        // (with its mode, and never through a link planted at that name).
        match std::fs::remove_file(tmp) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(tmp)?;
        file.write_all(token.as_bytes())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(tmp, &self.path)
    }

    /// Syncs the directory that holds the file, so that a rename or removal in it is durable.
    #[cfg(unix)]
    fn sync_directory(&self) -> std::io::Result<()> {
        let dir = match self.path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => std::path::Path::new("."),
        };
        std::fs::File::open(dir)?.sync_all()
    }

    /// No directory sync outside Unix (std cannot open a directory for syncing there).
    #[cfg(not(unix))]
    fn sync_directory(&self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(feature = "std")]
fn invalid_data(what: &'static str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what)
}

#[cfg(feature = "std")]
impl TokenStore for FileStore {
    type Error = std::io::Error;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, std::io::Error> {
        use std::io::Read;
        const TOO_LONG: &str = "the stored refresh token does not fit the buffer";
        let mut file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        // The token goes straight into `buf`: `len` bytes written there (leading whitespace
        // skipped, whitespace inside or after the token kept while it fits), `end` just past
        // the last non-whitespace byte. Once `buf` is full only whitespace may follow.
        let (mut len, mut end) = (0usize, 0usize);
        let mut chunk = [0u8; 256];
        let outcome = loop {
            let n = match file.read(&mut chunk) {
                Ok(0) => break Ok(()),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => break Err(e),
            };
            let mut too_long = false;
            for &byte in chunk.iter().take(n) {
                let space = byte.is_ascii_whitespace();
                if space && (len == 0 || len == buf.len()) {
                    continue;
                }
                match buf.get_mut(len) {
                    Some(slot) => {
                        *slot = byte;
                        len += 1;
                        if !space {
                            end = len;
                        }
                    }
                    None => {
                        too_long = true;
                        break;
                    }
                }
            }
            if too_long {
                break Err(invalid_data(TOO_LONG));
            }
        };
        crate::wipe::bytes(&mut chunk);
        let Some((token, tail)) = buf.split_at_mut_checked(end) else {
            return Err(invalid_data(TOO_LONG));
        };
        let unusable = match outcome {
            Err(e) => Some(e),
            Ok(()) if core::str::from_utf8(token).is_err() => {
                Some(invalid_data("the stored refresh token is not UTF-8"))
            }
            Ok(()) => None,
        };
        // Trailing whitespace is not part of the token; after an error nothing read stays.
        if let Some(spaces) = tail.get_mut(..len.saturating_sub(end)) {
            crate::wipe::bytes(spaces);
        }
        if let Some(e) = unusable {
            crate::wipe::bytes(token);
            return Err(e);
        }
        let token: &'b [u8] = token;
        match core::str::from_utf8(token) {
            Ok("") => Ok(None),
            Ok(token) => Ok(Some(token)),
            Err(_) => Err(invalid_data("the stored refresh token is not UTF-8")),
        }
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), std::io::Error> {
        let tmp = self.temporary();
        if let Err(e) = self.replace(&tmp, refresh_token) {
            // Best effort: leave no second copy of the token behind.
            let _ = std::fs::remove_file(&tmp);
            return Err(e);
        }
        self.sync_directory()
    }

    fn clear(&mut self) -> Result<(), std::io::Error> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => self.sync_directory(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e),
        }
    }
}
