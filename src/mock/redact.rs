//! How the kit shows secrets in its messages: never their text, only their shape (header
//! schemes, JSON member names, form keys, lengths), so a failed test still says which field
//! differs.

use std::fmt::Write as _;

/// `<redacted N bytes>`.
pub(crate) fn marker(len: usize) -> String {
    format!("<redacted {len} bytes>")
}

/// An `Authorization` value: its scheme, then a marker for the credentials.
pub(crate) fn authorization(value: Option<&str>) -> String {
    let Some(value) = value else {
        return "(none)".into();
    };
    match value.split_once(' ') {
        Some((scheme, rest)) if scheme.bytes().all(|b| b.is_ascii_alphanumeric()) => {
            format!("{scheme} {}", marker(rest.len()))
        }
        _ => marker(value.len()),
    }
}

/// A body: JSON with every string value redacted (member names and numbers kept), a form with
/// every value redacted (keys kept), anything else as a marker.
pub(crate) fn body(bytes: &[u8]) -> String {
    if bytes.is_empty() {
        return "(empty)".into();
    }
    let Ok(text) = std::str::from_utf8(bytes) else {
        return format!("<{} bytes, not UTF-8>", bytes.len());
    };
    let trimmed = text.trim_start();
    if trimmed.starts_with('{') || trimmed.starts_with('[') {
        return json(text);
    }
    if text.contains('=') && !text.contains(char::is_whitespace) {
        return form(text);
    }
    marker(bytes.len())
}

/// Member names and form keys whose values are never secret, shown as they are, so that a
/// message tells a login from a refresh and one error code from another.
const SHOWN: &[&str] = &[
    "grant_type",
    "scope",
    "client_id",
    "username",
    "token_type",
    "code",
    "detail",
    "error",
    "error_description",
];

/// JSON with string values redacted: a string followed by `:` is a member name and is kept, and
/// so is the value of a member named in [`SHOWN`].
fn json(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut name = "";
    let mut chars = text.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        if c != '"' {
            out.push(c);
            continue;
        }
        // A string literal: find its closing quote, skipping escapes.
        let mut end = text.len();
        let mut escaped = false;
        for (i, c) in chars.by_ref() {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => {
                    end = i;
                    break;
                }
                _ => {}
            }
        }
        let literal = text.get(start..=end).unwrap_or_default();
        let is_name = text
            .get(end.saturating_add(1)..)
            .unwrap_or_default()
            .trim_start()
            .starts_with(':');
        if is_name {
            out.push_str(literal);
            name = literal.trim_matches('"');
        } else if SHOWN.contains(&name) {
            out.push_str(literal);
        } else {
            // The length of the content, between the quotes.
            out.push_str(&marker(end.saturating_sub(start).saturating_sub(1)));
        }
    }
    out
}

/// `key=value&...` with the values redacted.
fn form(text: &str) -> String {
    let mut out = String::new();
    for (i, pair) in text.split('&').enumerate() {
        if i > 0 {
            out.push('&');
        }
        match pair.split_once('=') {
            Some((key, value)) if SHOWN.contains(&key) => {
                let _ = write!(out, "{key}={value}");
            }
            Some((key, value)) => {
                let _ = write!(out, "{key}={}", marker(value.len()));
            }
            None => out.push_str(&marker(pair.len())),
        }
    }
    out
}

/// Where two byte strings first differ, as a note for a mismatch message.
pub(crate) fn first_difference(expected: &[u8], actual: &[u8]) -> String {
    let at = expected
        .iter()
        .zip(actual)
        .position(|(a, b)| a != b)
        .unwrap_or(expected.len().min(actual.len()));
    format!(
        "(expected {} bytes, got {}; they first differ at byte {at})",
        expected.len(),
        actual.len()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_kept_and_values_hidden() {
        assert_eq!(
            body(br#"{"refresh":"abc.def","n":3,"a":["x\"y"]}"#),
            r#"{"refresh":<redacted 7 bytes>,"n":3,"a":[<redacted 4 bytes>]}"#
        );
        assert_eq!(
            body(b"grant_type=refresh_token&refresh_token=r1"),
            "grant_type=refresh_token&refresh_token=<redacted 2 bytes>"
        );
        assert_eq!(
            body(br#"{"username":"d7","password":"pw","code":"token_not_valid"}"#),
            r#"{"username":"d7","password":<redacted 2 bytes>,"code":"token_not_valid"}"#
        );
        assert_eq!(body(b"hello world"), "<redacted 11 bytes>");
        assert_eq!(body(b""), "(empty)");
        assert_eq!(body(&[0xff, 0xfe]), "<2 bytes, not UTF-8>");
        assert_eq!(
            authorization(Some("Bearer a.b.c")),
            "Bearer <redacted 5 bytes>"
        );
        assert_eq!(
            authorization(Some("Basic dXNlcjpwdw==")),
            "Basic <redacted 12 bytes>"
        );
        assert_eq!(authorization(None), "(none)");
        assert_eq!(
            first_difference(b"abcd", b"abXd"),
            "(expected 4 bytes, got 4; they first differ at byte 2)"
        );
    }
}
