//! The adapters' common timeline against the demo server (login, two sends, a refresh ahead of
//! expiry, an expiry and a refresh): what a test saw, and the checks every adapter must pass.
//! Included by a test that has the demo server as its module `server`.

use jwt_refresh::Stats;

use crate::server::{Event, EventKind, Framing};

/// What the session's schedule said before each send, and its statistics at the end.
#[derive(Debug, Default)]
pub struct Seen {
    pub statuses: Vec<u16>,
    /// Before the third send: past `refresh_at`, still usable.
    pub due_but_usable: bool,
    /// Before the fourth send: past `expires_at`.
    pub expired: bool,
    pub stats: Stats,
}

/// Four 200s, one login and two refreshes (one ahead of expiry, one after it) with no failure,
/// the server's log in that order, no expired token presented, and each API request carrying
/// the access token of the token request before it.
pub fn check(framing: Framing, seen: &Seen, events: &[Event]) {
    assert_eq!(seen.statuses, [200, 200, 200, 200], "{framing:?}");
    assert!(
        seen.due_but_usable,
        "{framing:?}: the third send refreshed ahead of expiry"
    );
    assert!(
        seen.expired,
        "{framing:?}: the fourth send found the token expired"
    );
    assert_eq!(
        (seen.stats.logins, seen.stats.refreshes, seen.stats.failures),
        (1, 2, 0),
        "{framing:?}"
    );
    let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
    use EventKind::{Login, Protected, Refresh};
    assert_eq!(
        kinds,
        [Login, Protected, Protected, Refresh, Protected, Refresh, Protected],
        "{framing:?}"
    );
    assert!(events.iter().all(|e| e.status == 200), "{events:?}");
    assert!(
        events.iter().all(|e| !e.presented_expired),
        "{framing:?}: a token was sent expired: {events:?}"
    );
    let mut issued = None;
    for event in events {
        match event.kind {
            Login | Refresh => issued = event.issued_jti.clone(),
            _ => assert_eq!(event.token_jti, issued, "{framing:?}"),
        }
    }
}
