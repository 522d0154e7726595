//! A firmware author's host tests, written with the crate's mock kit (feature `mock`).
//!
//! `uploader.rs` is the application code: a telemetry uploader generic over the crate's traits.
//! `tests.rs` unit-tests it on the host, with no server, no real time and no flash:
//!
//! ```sh
//! cargo test --example host_test
//! ```
//!
//! (`cargo test` runs them too: the example is built as a test target.)

#[cfg_attr(
    not(test),
    allow(
        dead_code,
        reason = "the application code runs in its tests, not in main"
    )
)]
mod uploader;

#[cfg(test)]
mod tests;

fn main() {
    println!("The uploader's tests are this example: cargo test --example host_test");
}
