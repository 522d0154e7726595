//! `FileStore`, the refresh token in a file: what a save leaves on disk, what a load accepts
//! (`echo TOKEN > file`), what it refuses without touching the file, a save interrupted before
//! its rename, and a device rebooting over the file through the blocking `Client`.

use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};

use jwt_refresh::mock::{MockClock, MockTransport, Transaction, EPOCH};
use jwt_refresh::protocol::SimpleJwt;
use jwt_refresh::{
    Client, ClientConfig, Duration, Error, FileStore, Protocol, RefreshPolicy, Request, Session,
    TokenStore, UnixTime,
};

/// A fresh directory under the system's temporary directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> TempDir {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        let seq = SEQ.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!(
            "jwt-refresh-file-store-{}-{test}-{seq}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn file(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The names in the directory, sorted.
    fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn load_owned(store: &mut FileStore, capacity: usize) -> std::io::Result<Option<String>> {
    let mut buf = vec![0u8; capacity];
    store.load(&mut buf).map(|t| t.map(str::to_owned))
}

#[test]
fn save_then_load_round_trip_and_replace() {
    let dir = TempDir::new("round-trip");
    let path = dir.file("refresh-token");
    let mut store = FileStore::new(&path);
    assert_eq!(store.path(), path.as_path());

    // Nothing saved yet.
    assert_eq!(load_owned(&mut store, 64).unwrap(), None);

    store.save("rt-1.eyJ.sig").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"rt-1.eyJ.sig");
    assert_eq!(
        load_owned(&mut store, 64).unwrap().as_deref(),
        Some("rt-1.eyJ.sig")
    );

    // A rotation replaces it whole; no temporary file stays behind.
    store.save("rt-2").unwrap();
    assert_eq!(std::fs::read(&path).unwrap(), b"rt-2");
    assert_eq!(load_owned(&mut store, 64).unwrap().as_deref(), Some("rt-2"));
    assert_eq!(dir.names(), ["refresh-token"]);

    // A buffer exactly as long as the token is enough.
    assert_eq!(load_owned(&mut store, 4).unwrap().as_deref(), Some("rt-2"));

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner may read the token");
    }
}

#[test]
fn surrounding_whitespace_is_trimmed_and_blank_is_nothing() {
    let dir = TempDir::new("whitespace");
    let path = dir.file("token");
    let mut store = FileStore::new(&path);
    for (content, loaded) in [
        (&b"TOKEN\n"[..], Some("TOKEN")),        // `echo TOKEN > file`
        (b"\r\n \tTOKEN \r\n\n", Some("TOKEN")), // an editor on another OS
        (b"TOK EN\n", Some("TOK EN")),           // only the ends are trimmed
        (b"", None),                             // `touch file`
        (b" \n\t\r\n", None),                    // blank
    ] {
        std::fs::write(&path, content).unwrap();
        assert_eq!(
            load_owned(&mut store, 64).unwrap().as_deref(),
            loaded,
            "{content:?}"
        );
    }
    // Trailing whitespace does not count against the buffer, however much of it there is.
    let padded = format!("  TOKEN{}", "\n".repeat(1000));
    std::fs::write(&path, padded).unwrap();
    assert_eq!(load_owned(&mut store, 5).unwrap().as_deref(), Some("TOKEN"));
}

/// Loads from a file holding `content`, expects `InvalidData`, and checks that the file is
/// unchanged byte for byte and the buffer holds nothing of it.
fn refused(dir: &TempDir, content: &[u8], capacity: usize) {
    let path = dir.file("token");
    std::fs::write(&path, content).unwrap();
    let mut store = FileStore::new(&path);
    let mut buf = vec![0u8; capacity];
    let err = store.load(&mut buf).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidData, "{content:?}: {err}");
    assert!(
        buf.iter().all(|&b| b == 0),
        "{content:?}: the buffer was not wiped"
    );
    assert_eq!(
        std::fs::read(&path).unwrap(),
        content,
        "the file was changed"
    );
    // Again: still refused, still there.
    assert_eq!(
        store.load(&mut buf).unwrap_err().kind(),
        ErrorKind::InvalidData
    );
    assert_eq!(std::fs::read(&path).unwrap(), content);
}

#[test]
fn unparseable_content_is_an_error_and_the_file_stays() {
    let dir = TempDir::new("unparseable");
    // Not UTF-8: a stray Latin-1 byte, a truncated sequence, binary junk.
    refused(&dir, b"token-\xe9t\xe9\n", 64);
    refused(&dir, b"token-\xe2\x82", 64);
    refused(&dir, &[0xff, 0xfe, 0x00, 0x41], 64);
    // Too long by one byte; by a lot; whitespace inside that does not fit either.
    let long = "x".repeat(65);
    refused(&dir, long.as_bytes(), 64);
    refused(&dir, "y".repeat(100_000).as_bytes(), 64);
    refused(&dir, b"abc def\n", 4);
}

#[test]
fn an_interrupted_save_does_not_corrupt_the_stored_token() {
    let dir = TempDir::new("interrupted");
    let path = dir.file("refresh-token");
    let mut store = FileStore::new(&path);
    store.save("rt-1").unwrap();

    // A save killed after writing part of its temporary file, before the rename.
    let leftover = dir.file("refresh-token.tmp");
    std::fs::write(&leftover, b"rt-2-half").unwrap();
    assert_eq!(load_owned(&mut store, 64).unwrap().as_deref(), Some("rt-1"));

    // After a restart, the next save replaces the leftover and completes.
    let mut store = FileStore::new(&path);
    assert_eq!(load_owned(&mut store, 64).unwrap().as_deref(), Some("rt-1"));
    store.save("rt-3").unwrap();
    assert_eq!(load_owned(&mut store, 64).unwrap().as_deref(), Some("rt-3"));
    assert_eq!(dir.names(), ["refresh-token"]);
}

#[test]
fn a_failed_save_keeps_the_previous_token() {
    let dir = TempDir::new("failed-save");
    let path = dir.file("refresh-token");
    let mut store = FileStore::new(&path);
    store.save("rt-1").unwrap();
    // The temporary file's name is taken by a directory that cannot be removed as a file.
    std::fs::create_dir(dir.file("refresh-token.tmp")).unwrap();
    std::fs::write(dir.file("refresh-token.tmp").join("x"), b"").unwrap();
    assert!(store.save("rt-2").is_err());
    assert_eq!(load_owned(&mut store, 64).unwrap().as_deref(), Some("rt-1"));
}

#[test]
fn clear_removes_the_file_and_a_missing_file_is_fine() {
    let dir = TempDir::new("clear");
    let path = dir.file("refresh-token");
    let mut store = FileStore::new(&path);
    store.clear().unwrap(); // never saved
    store.save("rt-1").unwrap();
    store.clear().unwrap();
    assert!(!path.exists());
    assert_eq!(load_owned(&mut store, 64).unwrap(), None);
    store.clear().unwrap(); // twice
                            // A file in a directory that does not exist: nothing to clear, nothing to load.
    let mut nowhere = FileStore::new(dir.file("missing-dir").join("token"));
    nowhere.clear().unwrap();
    assert_eq!(load_owned(&mut nowhere, 64).unwrap(), None);
    // A bare file name (the current directory) is a valid place too.
    assert_eq!(FileStore::new("token").path(), Path::new("token"));
}

#[test]
fn debug_shows_the_path_not_the_token() {
    let dir = TempDir::new("debug");
    let mut store = FileStore::new(dir.file("refresh-token"));
    store.save("rt-secret-1").unwrap();
    let mut buf = [0u8; 64];
    assert_eq!(store.load(&mut buf).unwrap(), Some("rt-secret-1"));
    let shown = format!("{store:?} {:?}", store.clone());
    assert!(shown.contains("refresh-token"), "{shown}");
    assert!(!shown.contains("rt-secret"), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// A device over the file

const API: Request<'static> = Request::get("/api/data/");
const REFRESH: &str = "/api/token/refresh/";

fn boot<'s>(
    scratch: &'s mut [u8],
    path: &Path,
    expected: &[Transaction],
) -> (
    Client<'static, 's, MockTransport, MockClock, MockClock, FileStore>,
    MockTransport,
) {
    let clock = MockClock::with_wall(UnixTime::from_secs(EPOCH).unwrap());
    let transport = MockTransport::new(expected);
    let protocol = Protocol::SimpleJwt(SimpleJwt::default());
    let session = Session::new(protocol, RefreshPolicy::default());
    let client = Client::new(
        session,
        transport.clone(),
        clock.clone(),
        clock,
        FileStore::new(path),
        scratch,
    )
    .with_config(ClientConfig {
        max_wait: Duration::ZERO,
    });
    (client, transport)
}

#[test]
fn a_device_rotates_through_the_file_and_reboots_with_the_new_token() {
    let dir = TempDir::new("device");
    let path = dir.file("refresh-token");
    // Provisioned on the bench with `echo rt0 > refresh-token`.
    std::fs::write(&path, b"rt0\n").unwrap();

    // Boot 1: restore rt0, refresh (rotating to rt1, saved before a1 is used), send.
    let mut scratch = [0u8; 512];
    let expected = [
        Transaction::token(REFRESH)
            .body(r#"{"refresh":"rt0"}"#)
            .respond(200, r#"{"access":"a1","refresh":"rt1"}"#),
        Transaction::get(API.path).bearer("a1").respond(200, "{}"),
    ];
    let (mut client, mut transport) = boot(&mut scratch, &path, &expected);
    assert!(client.restore().unwrap());
    let mut body = [0u8; 64];
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    assert!(client.take_store_error().is_none());
    assert_eq!(std::fs::read(&path).unwrap(), b"rt1");
    drop(client);
    transport.done();

    // Boot 2: the file gives rt1; the dead rt0 is never offered again.
    let mut scratch = [0u8; 512];
    let expected = [
        Transaction::token(REFRESH)
            .body(r#"{"refresh":"rt1"}"#)
            .respond(200, r#"{"access":"a2"}"#),
        Transaction::get(API.path).bearer("a2").respond(200, "{}"),
    ];
    let (mut client, mut transport) = boot(&mut scratch, &path, &expected);
    assert!(client.restore().unwrap());
    assert_eq!(client.send(&API, &mut body).unwrap().status, 200);
    drop(client);
    transport.done();
    assert_eq!(std::fs::read(&path).unwrap(), b"rt1");
}

#[test]
fn a_device_does_not_send_or_delete_a_token_it_cannot_read() {
    let dir = TempDir::new("device-unreadable");
    let path = dir.file("refresh-token");
    let content = b"rt\xff\xfe-corrupted\n";
    std::fs::write(&path, content).unwrap();

    let mut scratch = [0u8; 512];
    let (mut client, mut transport) = boot(&mut scratch, &path, &[]);
    match client.restore() {
        Err(Error::Store(e)) => assert_eq!(e.kind(), ErrorKind::InvalidData),
        other => panic!("expected a store error, got {other:?}"),
    }
    drop(client);
    transport.done(); // nothing was sent
    assert!(scratch.iter().all(|&b| b == 0), "restore wipes its scratch");
    assert_eq!(std::fs::read(&path).unwrap(), content);
}
