//! The `inspect` example as a user runs it: exact stdout lines and exit codes.

use std::ffi::OsStr;
use std::io::Write;
use std::process::{Command, Output, Stdio};

const RFC_TOKEN: &str = "eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

/// Runs `cargo run --example inspect -- args` with `stdin` as standard input.
fn inspect(args: &[&str], stdin: &str) -> Output {
    let args: Vec<&OsStr> = args.iter().map(OsStr::new).collect();
    inspect_os(&args, stdin)
}

/// [`inspect`] with arguments that need not be UTF-8.
fn inspect_os(args: &[&OsStr], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO"))
        .args(["run", "--quiet", "--example", "inspect", "--"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cargo runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn stdout(out: &Output) -> &str {
    std::str::from_utf8(&out.stdout).unwrap()
}

#[test]
fn inspect_cli_contract() {
    // A valid token as an argument: one JSON line, absent claims null, aud an array, exit 0.
    let ok = inspect(&[RFC_TOKEN], "");
    assert_eq!(ok.status.code(), Some(0), "{ok:?}");
    assert_eq!(
        stdout(&ok),
        "{\"exp\":1300819380,\"nbf\":null,\"iat\":null,\"iss\":\"joe\",\"sub\":null,\"jti\":null,\"aud\":[]}\n"
    );

    // The same token on standard input, with a trailing newline as `echo` adds.
    let piped = inspect(&[], &format!("{RFC_TOKEN}\n"));
    assert_eq!(piped.status.code(), Some(0));
    assert_eq!(stdout(&piped), stdout(&ok));

    // Every claim present, escapes and a single-string aud.
    // payload: {"exp":20,"nbf":5,"iat":4,"iss":"a\"b","sub":"é","jti":"j","aud":"x"}
    let full = "e30.eyJleHAiOjIwLCJuYmYiOjUsImlhdCI6NCwiaXNzIjoiYVwiYiIsInN1YiI6Ilx1MDBlOSIsImp0aSI6ImoiLCJhdWQiOiJ4In0.c2ln";
    let out = inspect(&[full], "");
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert_eq!(
        stdout(&out),
        "{\"exp\":20,\"nbf\":5,\"iat\":4,\"iss\":\"a\\\"b\",\"sub\":\"\u{e9}\",\"jti\":\"j\",\"aud\":[\"x\"]}\n"
    );

    // Bad tokens: one error line with the snake_case kind, exit 1.
    for (token, kind) in [
        ("a.b", "malformed"),
        ("a.b.c.d.e", "encrypted"),
        ("a.!!.c", "base64"),
        ("a.WzFd.c", "not_an_object"),
        ("a.eyJleHAiOi0xfQ.c", "invalid_numeric_date"),
        ("a.eyJ4Ijp9.c", "json"),
    ] {
        let out = inspect(&[token], "");
        assert_eq!(out.status.code(), Some(1), "{token}");
        let line = stdout(&out);
        assert_eq!(line.lines().count(), 1, "{line}");
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_eq!(v["error"], kind, "{token}: {line}");
        assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()));
        assert_eq!(v.as_object().map(|o| o.len()), Some(2));
    }

    // Usage errors: exit 2, nothing on stdout.
    for (args, stdin) in [(&["a", "b"][..], ""), (&[][..], ""), (&[][..], "  \n")] {
        let out = inspect(args, stdin);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(out.stdout.is_empty());
    }
}

#[cfg(unix)]
#[test]
fn a_non_utf8_argument_is_a_usage_error() {
    use std::os::unix::ffi::OsStrExt;
    // A Latin-1 byte where a token should be: `std::env::args` panicked on it (exit 101).
    for bytes in [&b"eyJ\xff.e30.c2ln"[..], b"\xc3", b"\x80"] {
        let out = inspect_os(&[OsStr::from_bytes(bytes)], "");
        assert_eq!(out.status.code(), Some(2), "{bytes:?}: {out:?}");
        assert!(out.stdout.is_empty(), "{bytes:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("usage: inspect"), "{stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
    // Two arguments, one of them not UTF-8: still the usage error for the count.
    let two = inspect_os(&[OsStr::new("a"), OsStr::from_bytes(b"\xff")], "");
    assert_eq!(two.status.code(), Some(2), "{two:?}");
}
