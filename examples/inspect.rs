//! Print a JWT's registered claims as one line of JSON, without verifying its signature.
//!
//! ```text
//! cargo run --example inspect -- <TOKEN>
//! echo <TOKEN> | cargo run --example inspect
//! ```
//!
//! Success (exit 0): `{"exp":..,"nbf":..,"iat":..,"iss":..,"sub":..,"jti":..,"aud":[..]}`, absent
//! claims as `null`, `aud` always an array. A bad token (exit 1):
//! `{"error":"<kind>","message":"<text>"}`, where `<kind>` is [`DecodeError::kind`]. A usage
//! error (more than one argument, no token, an argument or input that is not UTF-8) exits 2.

use std::ffi::OsString;
use std::io::Read;
use std::process::ExitCode;

use jwt_refresh::{Claims, DecodeError, UnixTime};

const USAGE: &str = "usage: inspect [TOKEN]   (reads the token from standard input when omitted)
Prints the token's registered claims as one line of JSON. The signature is NOT verified.";

fn main() -> ExitCode {
    // `args_os`: `std::env::args` panics (exit 101) on an argument that is not UTF-8.
    let args: Vec<OsString> = std::env::args_os().skip(1).collect();
    let token = match args.as_slice() {
        [] => {
            let mut input = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut input) {
                eprintln!("inspect: cannot read standard input: {e}\n{USAGE}");
                return ExitCode::from(2);
            }
            input
        }
        [flag] if flag == "-h" || flag == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [token] => match token.to_str() {
            Some(token) => token.to_owned(),
            None => {
                eprintln!("inspect: the token is not UTF-8 (a JWT is ASCII)\n{USAGE}");
                return ExitCode::from(2);
            }
        },
        _ => {
            eprintln!("inspect: expected at most one argument\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let token = token.trim();
    if token.is_empty() {
        eprintln!("inspect: no token given\n{USAGE}");
        return ExitCode::from(2);
    }
    match Claims::decode(token) {
        Ok(claims) => {
            println!("{}", claims_json(&claims));
            ExitCode::SUCCESS
        }
        Err(err) => {
            println!("{}", error_json(&err));
            ExitCode::from(1)
        }
    }
}

fn claims_json(c: &Claims) -> String {
    let time = |t: Option<UnixTime>| t.map_or("null".to_owned(), |t| t.as_secs().to_string());
    let text = |s: Option<&str>| s.map_or("null".to_owned(), json_string);
    let aud: Vec<String> = c.audiences().map(json_string).collect();
    format!(
        r#"{{"exp":{},"nbf":{},"iat":{},"iss":{},"sub":{},"jti":{},"aud":[{}]}}"#,
        time(c.exp),
        time(c.nbf),
        time(c.iat),
        text(c.iss.as_deref()),
        text(c.sub.as_deref()),
        text(c.jti.as_deref()),
        aud.join(",")
    )
}

fn error_json(err: &DecodeError) -> String {
    format!(
        r#"{{"error":{},"message":{}}}"#,
        json_string(err.kind()),
        json_string(&err.to_string())
    )
}

fn json_string(s: &str) -> String {
    // serde_json escapes exactly as JSON requires; serialising a &str cannot fail.
    serde_json::to_string(s).unwrap_or_else(|_| "\"\"".to_owned())
}
