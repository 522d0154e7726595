//! The firmware's own JSON and base64, as a device that already uses serde-json-core and base64
//! for its data has them: it reads its provisioned configuration with
//! `serde_json_core::from_slice` (a borrowed `&str`, a `heapless::String`, integers, and an
//! unknown member that is skipped), base64-decodes the key in it, base64-encodes its MAC address
//! and writes a telemetry reading with `serde_json_core::to_slice`.
//!
//! It runs in the full image and in the `baseline-libs` image (the `telemetry` cfg), so that
//! size-report.sh can tell what jwt-refresh adds to a firmware that already links both
//! libraries. Inputs go through `black_box` and the results are checked and printed, so that
//! nothing is folded away.

use core::hint::black_box;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// The configuration as provisioned. `calibration` is not a field of [`Config`]: skipped.
const CONFIG: &[u8] = br#"{"name":"greenhouse-7","interval_s":60,"threshold_centi":-250,"key":"AAECAwQFBgcICQoLDA0ODw==","calibration":[1,{"gain":2}]}"#;

/// The MAC address that goes into every reading, base64-encoded.
const MAC: [u8; 6] = [0x02, 0x00, 0x5e, 0x10, 0x00, 0x07];

/// The reading this firmware writes from [`CONFIG`], [`MAC`], sequence number 42 and 21.50 °C.
const EXPECTED_READING: &str =
    r#"{"device":"greenhouse-7","seq":42,"centi_celsius":2150,"alarm":false,"mac":"AgBeEAAH"}"#;

#[derive(Deserialize)]
struct Config<'a> {
    name: &'a str,
    interval_s: u32,
    threshold_centi: i32,
    /// A 16-byte key, standard base64.
    key: heapless::String<32>,
}

#[derive(Serialize)]
struct Reading<'a> {
    device: &'a str,
    seq: u32,
    centi_celsius: i32,
    alarm: bool,
    mac: &'a str,
}

/// Reads the configuration, decodes the key, writes one reading; prints what it got and
/// returns whether everything is as expected.
#[inline(never)]
pub fn run() -> bool {
    let Ok((config, _)) = serde_json_core::from_slice::<Config<'_>>(black_box(CONFIG)) else {
        say!("FAIL: telemetry: the configuration did not parse");
        return false;
    };
    let mut key = [0u8; 16];
    let key_ok = STANDARD.decode_slice(config.key.as_bytes(), &mut key) == Ok(16)
        && key.iter().enumerate().all(|(i, &b)| usize::from(b) == i);

    let mut mac = [0u8; 8];
    let mac_len = STANDARD.encode_slice(black_box(MAC), &mut mac).unwrap_or(0);
    let mac = core::str::from_utf8(mac.get(..mac_len).unwrap_or_default()).unwrap_or("");

    let centi_celsius: i32 = black_box(2150);
    let reading = Reading {
        device: config.name,
        seq: black_box(42),
        centi_celsius,
        alarm: centi_celsius < config.threshold_centi,
        mac,
    };
    let mut out = [0u8; 128];
    let written = serde_json_core::to_slice(&reading, &mut out).unwrap_or(0);
    let json = core::str::from_utf8(out.get(..written).unwrap_or_default()).unwrap_or("");

    say!(
        "telemetry: config {} every {} s, alarm below {} centi-degrees, key {}",
        config.name,
        config.interval_s,
        config.threshold_centi,
        if key_ok { "decoded" } else { "WRONG" }
    );
    say!("telemetry: reading {}", json);
    let ok = key_ok && json == EXPECTED_READING && config.interval_s == 60;
    if !ok {
        say!("FAIL: telemetry: expected the reading {}", EXPECTED_READING);
    }
    ok
}
