//! Wiping buffers that held secrets: tokens, passwords, request and answer bodies. With the
//! `zeroize` feature (on by default) the bytes are overwritten with writes the optimiser cannot
//! remove; without it, buffers are only cleared.

use heapless::String;

/// Overwrites a string's whole buffer, then empties it.
pub(crate) fn string<const N: usize>(s: &mut String<N>) {
    #[cfg(feature = "zeroize")]
    zeroize::Zeroize::zeroize(s);
    #[cfg(not(feature = "zeroize"))]
    {
        // Best effort without volatile writes: fill the whole capacity with NULs.
        s.clear();
        while s.push('\0').is_ok() {}
    }
    s.clear();
}

/// Overwrites a byte buffer.
pub(crate) fn bytes(b: &mut [u8]) {
    #[cfg(feature = "zeroize")]
    zeroize::Zeroize::zeroize(b);
    #[cfg(not(feature = "zeroize"))]
    b.fill(0);
}
