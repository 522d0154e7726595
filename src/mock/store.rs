//! An in-memory [`TokenStore`] for tests: [`MemStore`], a shared handle that survives a
//! simulated reboot and can be told to fail its next load, save or clear.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::store::TokenStore;

/// Which operation of a [`MemStore`] failed, because the test told it to (or a token did not fit
/// the buffer given to `load`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreError {
    /// `load` failed.
    Load,
    /// `save` failed; the previous token is kept.
    Save,
    /// `clear` failed; the token is kept.
    Clear,
    /// The saved token is longer than the buffer given to `load`.
    TooLong,
}

#[derive(Default)]
struct State {
    token: Option<String>,
    fail_load: bool,
    fail_save: bool,
    fail_clear: bool,
    loads: u32,
    saves: u32,
    clears: u32,
}

/// A refresh-token store in memory. Clones share the same content, so a test keeps one handle,
/// gives another to the client, and can give a third to a new client after a "reboot".
///
/// `Debug` shows whether a token is saved, never the token.
///
/// ```
/// use jwt_refresh::mock::{MemStore, StoreError};
/// use jwt_refresh::TokenStore;
///
/// let store = MemStore::with_token("r-1"); // saved by an earlier run
/// let mut flash = store.clone();
/// let mut buf = [0u8; 64];
/// assert_eq!(flash.load(&mut buf), Ok(Some("r-1")));
///
/// store.fail_next_save();
/// assert_eq!(flash.save("r-2"), Err(StoreError::Save));
/// assert_eq!(store.token().as_deref(), Some("r-1")); // the failed save changed nothing
/// flash.save("r-2").unwrap(); // only the next one failed
/// assert_eq!((store.token().as_deref(), store.saves()), (Some("r-2"), 1));
/// ```
#[derive(Clone, Default)]
pub struct MemStore(Arc<Mutex<State>>);

impl std::fmt::Debug for MemStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.state();
        f.debug_struct("MemStore")
            .field("token", &state.token.as_ref().map(|_| "<redacted>"))
            .field("saves", &state.saves)
            .finish_non_exhaustive()
    }
}

/// Two handles are equal when they share the same content (clones of one store).
impl PartialEq for MemStore {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        MemStore::default()
    }

    /// A store holding `token`, as saved by an earlier run.
    pub fn with_token(token: &str) -> Self {
        let store = MemStore::new();
        store.state().token = Some(token.to_owned());
        store
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The saved token, if any.
    pub fn token(&self) -> Option<String> {
        self.state().token.clone()
    }

    /// Replaces the saved token behind the client's back (a flash page another program wrote,
    /// or corrupted), without counting a save.
    pub fn set_token(&self, token: Option<&str>) {
        self.state().token = token.map(str::to_owned);
    }

    /// The next `load` fails with [`StoreError::Load`].
    pub fn fail_next_load(&self) {
        self.state().fail_load = true;
    }

    /// The next `save` fails with [`StoreError::Save`] and keeps the previous token.
    pub fn fail_next_save(&self) {
        self.state().fail_save = true;
    }

    /// The next `clear` fails with [`StoreError::Clear`] and keeps the token.
    pub fn fail_next_clear(&self) {
        self.state().fail_clear = true;
    }

    /// Successful loads so far.
    pub fn loads(&self) -> u32 {
        self.state().loads
    }

    /// Successful saves so far.
    pub fn saves(&self) -> u32 {
        self.state().saves
    }

    /// Successful clears so far.
    pub fn clears(&self) -> u32 {
        self.state().clears
    }
}

impl TokenStore for MemStore {
    type Error = StoreError;

    fn load<'b>(&mut self, buf: &'b mut [u8]) -> Result<Option<&'b str>, StoreError> {
        let mut state = self.state();
        if std::mem::take(&mut state.fail_load) {
            return Err(StoreError::Load);
        }
        state.loads = state.loads.saturating_add(1);
        let Some(token) = &state.token else {
            return Ok(None);
        };
        let dst = buf.get_mut(..token.len()).ok_or(StoreError::TooLong)?;
        dst.copy_from_slice(token.as_bytes());
        std::str::from_utf8(dst)
            .map(Some)
            .map_err(|_| StoreError::Load)
    }

    fn save(&mut self, refresh_token: &str) -> Result<(), StoreError> {
        let mut state = self.state();
        if std::mem::take(&mut state.fail_save) {
            return Err(StoreError::Save);
        }
        state.saves = state.saves.saturating_add(1);
        state.token = Some(refresh_token.to_owned());
        Ok(())
    }

    fn clear(&mut self) -> Result<(), StoreError> {
        let mut state = self.state();
        if std::mem::take(&mut state.fail_clear) {
            return Err(StoreError::Clear);
        }
        state.clears = state.clears.saturating_add(1);
        state.token = None;
        Ok(())
    }
}
