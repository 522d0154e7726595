//! The embassy-time driver over the `virt` board's CLINT: `mtime` (10 MHz) is embassy's clock,
//! `mtimecmp` its one alarm, and the machine timer interrupt wakes the timers that are due.
//! Timers are kept in embassy-time-queue-utils' queue (the executor's integrated one).

use core::cell::RefCell;
use core::task::Waker;

use critical_section::Mutex;
use embassy_time_driver::Driver;
use embassy_time_queue_utils::Queue;

/// embassy-time counts in mtime's ticks: its tick rate (Cargo.toml, `tick-hz-10_000_000`) must
/// be the board's mtime frequency, 10 MHz on `virt`.
const _: () = assert!(embassy_time_driver::TICK_HZ == 10_000_000);

/// The CLINT's registers on QEMU's `virt` machine (hart 0).
const MTIME: usize = 0x0200_BFF8;
const MTIMECMP: usize = 0x0200_4000;

struct Clint {
    queue: Mutex<RefCell<Queue>>,
}

embassy_time_driver::time_driver_impl!(static DRIVER: Clint = Clint {
    queue: Mutex::new(RefCell::new(Queue::new())),
});

/// `mtime`, read as two 32-bit halves without tearing.
fn mtime() -> u64 {
    let lo = MTIME as *const u32;
    let hi = (MTIME + 4) as *const u32;
    loop {
        // SAFETY: the CLINT's mtime register, always mapped on `virt`.
        let (h1, l, h2) = unsafe { (hi.read_volatile(), lo.read_volatile(), hi.read_volatile()) };
        if h1 == h2 {
            return (u64::from(h1) << 32) | u64::from(l);
        }
    }
}

/// Writes `mtimecmp` without a moment where the half-written value is in the past.
fn set_mtimecmp(at: u64) {
    let lo = MTIMECMP as *mut u32;
    let hi = (MTIMECMP + 4) as *mut u32;
    // SAFETY: hart 0's mtimecmp register, always mapped on `virt`.
    unsafe {
        hi.write_volatile(u32::MAX);
        lo.write_volatile(at as u32);
        hi.write_volatile((at >> 32) as u32);
    }
}

impl Clint {
    /// Arms the alarm for `at`; false when `at` has already passed (the caller dequeues again).
    fn set_alarm(&self, at: u64) -> bool {
        set_mtimecmp(at);
        at == u64::MAX || mtime() < at
    }

    /// Wakes what is due and arms the alarm for the next timer.
    fn rearm(&self, queue: &mut Queue) {
        let mut next = queue.next_expiration(mtime());
        while !self.set_alarm(next) {
            next = queue.next_expiration(mtime());
        }
    }

    fn on_interrupt(&self) {
        critical_section::with(|cs| {
            set_mtimecmp(u64::MAX);
            self.rearm(&mut self.queue.borrow_ref_mut(cs));
        });
    }
}

impl Driver for Clint {
    fn now(&self) -> u64 {
        mtime()
    }

    fn schedule_wake(&self, at: u64, waker: &Waker) {
        critical_section::with(|cs| {
            let mut queue = self.queue.borrow_ref_mut(cs);
            if queue.schedule_wake(at, waker) {
                self.rearm(&mut queue);
            }
        });
    }
}

/// Enables the machine timer interrupt (and interrupts globally).
pub fn init() {
    set_mtimecmp(u64::MAX);
    // SAFETY: the handler below is ready; nothing else uses the timer interrupt.
    unsafe {
        riscv::register::mie::set_mtimer();
        riscv::interrupt::enable();
    }
}

#[riscv_rt::core_interrupt(riscv::interrupt::Interrupt::MachineTimer)]
fn machine_timer() {
    DRIVER.on_interrupt();
}
