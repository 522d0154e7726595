//! Memory budgets: sizes in bytes are deterministic, so they are checked here (speed is not).

use core::mem::size_of;
use jwt_refresh::session::{DEFAULT_ACCESS_CAPACITY, DEFAULT_REFRESH_CAPACITY};
use jwt_refresh::{Claims, Session, TimeClaims};

#[test]
fn session_overhead_beyond_its_token_buffers() {
    let total = size_of::<Session<'static>>();
    let overhead = total - DEFAULT_ACCESS_CAPACITY - DEFAULT_REFRESH_CAPACITY;
    println!("size_of::<Session>() = {total} bytes ({overhead} beyond the token buffers)");
    assert!(overhead <= 384, "{overhead}");
    // Small capacities shrink the session accordingly: nothing else scales with them.
    let small = size_of::<Session<'static, 384, 320>>();
    assert_eq!(
        total - small,
        DEFAULT_ACCESS_CAPACITY - 384 + DEFAULT_REFRESH_CAPACITY - 320
    );
}

#[test]
fn claims_sizes() {
    println!("size_of::<Claims>() = {}", size_of::<Claims>());
    println!("size_of::<TimeClaims>() = {}", size_of::<TimeClaims>());
    assert!(size_of::<TimeClaims>() <= 48);
    assert!(size_of::<Claims>() <= 7 * 100 + 128);
}
