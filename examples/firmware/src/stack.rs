//! Stack measurement by painting: fill the free stack (from the end of `.bss`, cortex-m-rt's
//! `_stack_end`, up to the current stack pointer) with a pattern, run the code, then find the
//! lowest word that no longer holds the pattern. No interrupt is enabled, so nothing else
//! touches the stack meanwhile.

use core::sync::atomic::{AtomicUsize, Ordering};

/// The paint. A word that the code happens to write with this exact value at the very bottom
/// of its stack use would be missed; the odd pattern makes that unlikely.
const PAINT: u32 = 0xC5AC_CE55;

/// Words left unpainted just below the stack pointer of `paint` (its own call frame).
const GUARD: usize = 16;

extern "C" {
    /// Top of the stack (cortex-m-rt's `link.x`: the end of RAM here).
    static _stack_start: u32;
    /// Bottom of the stack region: the end of `.bss` and `.uninit` (there is no heap).
    static _stack_end: u32;
}

/// The current stack pointer.
#[inline(always)]
pub fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches no memory.
    unsafe {
        core::arch::asm!("mov {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags))
    };
    sp
}

/// The top of the stack (the initial stack pointer).
pub fn top() -> usize {
    (&raw const _stack_start) as usize
}

/// The lowest address the stack may reach before it runs into `.bss`.
pub fn bottom() -> usize {
    (&raw const _stack_end) as usize
}

/// Paints the free stack below the caller. Call it from the function whose callees are to be
/// measured.
#[inline(never)]
pub fn paint() {
    let end = sp().saturating_sub(GUARD * 4) & !3;
    let mut addr = (bottom() + 3) & !3;
    while addr < end {
        // SAFETY: the range lies between the end of `.bss` and this function's frame: free
        // stack that no live object uses (no interrupts are enabled).
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// The lowest address written since [`paint`]: the deepest the stack went.
#[inline(never)]
pub fn lowest_touched() -> usize {
    let end = top();
    let mut addr = (bottom() + 3) & !3;
    while addr < end {
        // SAFETY: reads RAM between the end of `.bss` and the top of the stack.
        if unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT {
            break;
        }
        addr += 4;
    }
    addr
}

/// Whether the deepest use reached the bottom of the region: the stack overflowed into
/// `.bss` (or the region was never painted).
pub fn overflowed(lowest: usize) -> bool {
    lowest <= ((bottom() + 3) & !3)
}

/// The stack that `f` uses below the caller: paints, runs `f`, scans.
#[inline(never)]
pub fn measure<R>(f: impl FnOnce() -> R) -> (R, usize) {
    paint();
    let sp = sp();
    let result = f();
    (result, sp.saturating_sub(lowest_touched()))
}

/// The lowest stack pointer seen on entry to a transport, store or delay callback.
static CALLBACK_SP: AtomicUsize = AtomicUsize::new(usize::MAX);

/// Notes the stack pointer of a callback (how deep the client is when it calls out).
#[inline(always)]
pub fn note_callback() {
    CALLBACK_SP.fetch_min(sp(), Ordering::Relaxed);
}

/// The lowest stack pointer seen by [`note_callback`].
pub fn lowest_callback_sp() -> usize {
    CALLBACK_SP.load(Ordering::Relaxed)
}
