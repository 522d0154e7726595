//! Peak stack by painting: at boot, before any interrupt is enabled, fill the free stack (from
//! riscv-rt's `__estack`, the end of `.bss`, up to just below the current frame) with a
//! pattern; at the end, the lowest word that lost it is the deepest the stack went, interrupt
//! handlers included (they run on the same stack).

/// The paint; a word that happens to be written with this exact value at the bottom of the
/// stack's use would be missed, which the odd pattern makes unlikely.
const PAINT: u32 = 0xC5AC_CE55;
/// Words left unpainted below the painting function's stack pointer.
const GUARD: usize = 16;

extern "C" {
    /// The top of the stack (riscv-rt's `link.x`: the end of RAM).
    static _stack_start: u32;
    /// The bottom of the stack region: the end of `.bss`, `.uninit` and the (empty) heap.
    static __estack: u32;
}

fn sp() -> usize {
    let sp: usize;
    // SAFETY: reads a register, touches no memory.
    unsafe { core::arch::asm!("mv {}, sp", out(reg) sp, options(nomem, nostack, preserves_flags)) };
    sp
}

/// The lowest address the stack may reach before it runs into `.bss`.
pub fn bottom() -> usize {
    ((&raw const __estack) as usize + 3) & !3
}

/// The top of the stack (its initial pointer).
pub fn top() -> usize {
    (&raw const _stack_start) as usize
}

/// Paints the free stack below the caller. Call it first thing, with interrupts still off.
#[inline(never)]
pub fn paint() {
    let end = sp().saturating_sub(GUARD * 4) & !3;
    let mut addr = bottom();
    while addr < end {
        // SAFETY: between the end of `.bss` and this frame: free stack no live object uses,
        // and no interrupt is enabled yet.
        unsafe { core::ptr::write_volatile(addr as *mut u32, PAINT) };
        addr += 4;
    }
}

/// The deepest the stack has gone since [`paint`], in bytes below its top.
pub fn peak() -> usize {
    let mut addr = bottom();
    while addr < top() {
        // SAFETY: reads RAM between the end of `.bss` and the top of the stack.
        if unsafe { core::ptr::read_volatile(addr as *const u32) } != PAINT {
            break;
        }
        addr += 4;
    }
    top() - addr
}
