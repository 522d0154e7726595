//! The network device: virtio-net on the `virt` board's virtio-mmio slots, driven by the
//! `virtio-drivers` crate, behind an `embassy-net-driver` implementation for embassy-net; its
//! interrupt through the board's PLIC; and the `Hal` virtio-drivers needs (DMA pages from a
//! static pool, identity address translation).

use core::ptr::NonNull;
use core::sync::atomic::{AtomicUsize, Ordering};
use core::task::Context;

use embassy_net_driver::{Capabilities, HardwareAddress, LinkState};
use embassy_sync::waitqueue::AtomicWaker;
use static_cell::StaticCell;
use virtio_drivers::device::net::VirtIONetRaw;
use virtio_drivers::transport::mmio::{MmioTransport, VirtIOHeader};
use virtio_drivers::transport::{DeviceType, Transport};
use virtio_drivers::{BufferDirection, Hal, PhysAddr, PAGE_SIZE};

/// The `virt` board's virtio-mmio slots: 8 of 4 KiB from 0x10001000.
const MMIO_BASE: usize = 0x1000_1000;
const MMIO_SLOTS: usize = 8;
const MMIO_SIZE: usize = 0x1000;

/// The `virt` board's PLIC, and the interrupt of virtio-mmio slot `i` (1 + i).
const PLIC: usize = 0x0c00_0000;
const PLIC_ENABLE: usize = PLIC + 0x2000; // context 0: hart 0, machine mode
const PLIC_THRESHOLD: usize = PLIC + 0x20_0000;
const PLIC_CLAIM: usize = PLIC + 0x20_0004;
const VIRTIO_IRQ_BASE: usize = 1;
/// virtio-mmio's interrupt status and acknowledge registers.
const MMIO_INTERRUPT_STATUS: usize = 0x60;
const MMIO_INTERRUPT_ACK: usize = 0x64;

/// The device's interrupt wakes the embassy-net runner through this.
static NET_WAKER: AtomicWaker = AtomicWaker::new();
/// The device's PLIC source and register block, for the interrupt handler (0: none yet).
static NET_IRQ: AtomicUsize = AtomicUsize::new(0);
static NET_MMIO: AtomicUsize = AtomicUsize::new(0);

/// Descriptors per virtqueue.
const QUEUE_SIZE: usize = 8;
/// Receive buffers kept posted to the device (at most QUEUE_SIZE).
const RX_BUFFERS: usize = 4;
/// One Ethernet frame (1514 bytes) and the virtio-net header (12), rounded up.
const BUF_LEN: usize = 1536;
/// Pages for the two virtqueues (each takes two: the driver's area and the device's).
const DMA_PAGES: usize = 4;

#[repr(C, align(4096))]
struct DmaPool([u8; DMA_PAGES * PAGE_SIZE]);

static mut DMA_POOL: DmaPool = DmaPool([0; DMA_PAGES * PAGE_SIZE]);
static DMA_NEXT: AtomicUsize = AtomicUsize::new(0);

/// The DMA pages in use, for the report.
pub fn dma_pages_used() -> usize {
    DMA_NEXT.load(Ordering::Relaxed)
}

/// virtio-drivers' `Hal` on a machine without an MMU: physical and virtual addresses are equal,
/// DMA memory comes from a static pool and is never given back (the device lives for the run).
pub struct VirtioHal;

// SAFETY: `dma_alloc` hands out each page of the pool once, page-aligned and zeroed (the pool
// is in .bss and never reused); addresses are identity-mapped, so sharing is the address.
unsafe impl Hal for VirtioHal {
    fn dma_alloc(pages: usize, _direction: BufferDirection) -> (PhysAddr, NonNull<u8>) {
        let first = DMA_NEXT.fetch_add(pages, Ordering::Relaxed);
        if first + pages > DMA_PAGES {
            panic!("the DMA pool is too small: {} pages wanted", first + pages);
        }
        // SAFETY: within the pool (checked above); no other reference to these pages exists.
        let ptr = unsafe {
            core::ptr::addr_of_mut!(DMA_POOL)
                .cast::<u8>()
                .add(first * PAGE_SIZE)
        };
        let ptr = NonNull::new(ptr).unwrap_or(NonNull::dangling());
        (ptr.as_ptr() as usize as PhysAddr, ptr)
    }

    unsafe fn dma_dealloc(_paddr: PhysAddr, _vaddr: NonNull<u8>, _pages: usize) -> i32 {
        0
    }

    unsafe fn mmio_phys_to_virt(paddr: PhysAddr, _size: usize) -> NonNull<u8> {
        NonNull::new(paddr as usize as *mut u8).unwrap_or(NonNull::dangling())
    }

    unsafe fn share(buffer: NonNull<[u8]>, _direction: BufferDirection) -> PhysAddr {
        buffer.cast::<u8>().as_ptr() as usize as PhysAddr
    }

    unsafe fn unshare(_paddr: PhysAddr, _buffer: NonNull<[u8]>, _direction: BufferDirection) {}
}

type Device = VirtIONetRaw<VirtioHal, MmioTransport<'static>, QUEUE_SIZE>;

/// The receive buffers: static, because the device writes into them at the addresses they had
/// when they were posted, whatever moves the driver itself.
type RxBuffers = [[u8; BUF_LEN]; RX_BUFFERS];

/// The virtio-net device as an embassy-net driver.
pub struct VirtioNet {
    dev: Device,
    rx: &'static mut RxBuffers,
    /// The device's token for each posted receive buffer; None while embassy-net holds it.
    posted: [Option<u16>; RX_BUFFERS],
    tx: [u8; BUF_LEN],
}

/// Why the device could not be brought up.
#[derive(Debug)]
pub enum NetError {
    /// No virtio-net device in any virtio-mmio slot.
    NoDevice,
    /// virtio-drivers refused the device.
    Virtio(virtio_drivers::Error),
}

impl VirtioNet {
    /// Finds the virtio-net device among the virtio-mmio slots and posts the receive buffers.
    pub fn probe() -> Result<Self, NetError> {
        for slot in 0..MMIO_SLOTS {
            let addr = MMIO_BASE + slot * MMIO_SIZE;
            let Some(header) = NonNull::new(addr as *mut VirtIOHeader) else {
                continue;
            };
            // SAFETY: the virt board maps a virtio-mmio register block at each slot, which this
            // firmware touches nowhere else.
            let Ok(transport) = (unsafe { MmioTransport::new(header, MMIO_SIZE) }) else {
                continue; // an empty slot (device id 0)
            };
            if transport.device_type() != DeviceType::Network {
                continue;
            }
            let dev = Device::new(transport).map_err(NetError::Virtio)?;
            static RX: StaticCell<RxBuffers> = StaticCell::new();
            let mut net = VirtioNet {
                dev,
                rx: RX.init([[0; BUF_LEN]; RX_BUFFERS]),
                posted: [None; RX_BUFFERS],
                tx: [0; BUF_LEN],
            };
            for i in 0..RX_BUFFERS {
                net.post(i)?;
            }
            enable_interrupt(VIRTIO_IRQ_BASE + slot, addr);
            return Ok(net);
        }
        Err(NetError::NoDevice)
    }

    /// Gives receive buffer `i` back to the device.
    fn post(&mut self, i: usize) -> Result<(), NetError> {
        let (Some(buf), Some(slot)) = (self.rx.get_mut(i), self.posted.get_mut(i)) else {
            return Ok(());
        };
        // SAFETY: the buffer is not touched again until the device has returned it (its token
        // is in `posted` until `receive_complete`).
        let token = unsafe { self.dev.receive_begin(buf) }.map_err(NetError::Virtio)?;
        *slot = Some(token);
        Ok(())
    }

    /// Posts again the buffers embassy-net has finished with.
    fn repost(&mut self) {
        for i in 0..RX_BUFFERS {
            if self.posted.get(i) == Some(&None) {
                // A failure leaves the buffer unposted; the next call tries again.
                let _ = self.post(i);
            }
        }
    }
}

/// A received frame, inside its receive buffer.
pub struct Rx<'a> {
    frame: &'a mut [u8],
}

/// A frame to send: written into the transmit buffer, then handed to the device.
pub struct Tx<'a> {
    dev: &'a mut Device,
    buf: &'a mut [u8; BUF_LEN],
}

impl embassy_net_driver::RxToken for Rx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, f: F) -> R {
        f(self.frame)
    }
}

impl embassy_net_driver::TxToken for Tx<'_> {
    fn consume<R, F: FnOnce(&mut [u8]) -> R>(self, len: usize, f: F) -> R {
        let len = len.min(BUF_LEN);
        let frame = self.buf.get_mut(..len).unwrap_or_default();
        let result = f(frame);
        // Blocking: virtio-drivers spins until the device has used the frame (QEMU's device
        // sends it from its own thread, in microseconds; a driver for a real MAC would rather
        // queue the frame and report a full queue from `transmit`). A frame it refuses is lost,
        // as on a wire; TCP sends it again.
        let _ = self.dev.send(frame);
        result
    }
}

impl embassy_net_driver::Driver for VirtioNet {
    type RxToken<'a> = Rx<'a>;
    type TxToken<'a> = Tx<'a>;

    fn receive(&mut self, cx: &mut Context) -> Option<(Rx<'_>, Tx<'_>)> {
        self.repost();
        // Registered before looking, so that a frame arriving in between still wakes us.
        NET_WAKER.register(cx.waker());
        let token = self.dev.poll_receive()?;
        let i = self.posted.iter().position(|t| *t == Some(token))?;
        let buf = self.rx.get_mut(i)?;
        // SAFETY: `buf` is the buffer posted with `token`.
        let completed = unsafe { self.dev.receive_complete(token, buf) };
        // Once the device has given the buffer back, even with a frame shorter than its header
        // (an error), it is no longer posted: the next call posts it again.
        if !matches!(
            completed,
            Err(virtio_drivers::Error::NotReady | virtio_drivers::Error::WrongToken)
        ) {
            if let Some(slot) = self.posted.get_mut(i) {
                *slot = None;
            }
        }
        let (header, len) = completed.ok()?;
        let frame = self.rx.get_mut(i)?.get_mut(header..header + len)?;
        Some((
            Rx { frame },
            Tx {
                dev: &mut self.dev,
                buf: &mut self.tx,
            },
        ))
    }

    fn transmit(&mut self, _cx: &mut Context) -> Option<Tx<'_>> {
        Some(Tx {
            dev: &mut self.dev,
            buf: &mut self.tx,
        })
    }

    fn link_state(&mut self, _cx: &mut Context) -> LinkState {
        LinkState::Up
    }

    fn capabilities(&self) -> Capabilities {
        let mut caps = Capabilities::default();
        caps.max_transmission_unit = 1514;
        caps.max_burst_size = Some(1);
        caps
    }

    fn hardware_address(&self) -> HardwareAddress {
        HardwareAddress::Ethernet(self.dev.mac_address())
    }
}

/// Routes the device's interrupt (PLIC source `irq`, registers at `mmio`) to hart 0 in machine
/// mode and enables external interrupts.
fn enable_interrupt(irq: usize, mmio: usize) {
    NET_MMIO.store(mmio, Ordering::Relaxed);
    NET_IRQ.store(irq, Ordering::Relaxed);
    let enable = (PLIC_ENABLE + irq / 32 * 4) as *mut u32;
    // SAFETY: the PLIC's priority, enable and threshold registers on `virt`, which nothing else
    // in this firmware touches; the handler below is ready.
    unsafe {
        ((PLIC + 4 * irq) as *mut u32).write_volatile(1);
        enable.write_volatile(enable.read_volatile() | 1 << (irq % 32));
        (PLIC_THRESHOLD as *mut u32).write_volatile(0);
        riscv::register::mie::set_mext();
    }
}

/// The PLIC's interrupt: claims each pending source; for the network device, acknowledges the
/// device's interrupt (the same two register accesses as virtio-drivers' `ack_interrupt`) and
/// wakes the runner, which then takes the frames from the used ring.
#[riscv_rt::core_interrupt(riscv::interrupt::Interrupt::MachineExternal)]
fn machine_external() {
    let claim = PLIC_CLAIM as *mut u32;
    loop {
        // SAFETY: the PLIC's claim/complete register for context 0.
        let irq = unsafe { claim.read_volatile() } as usize;
        if irq == 0 {
            break;
        }
        if irq == NET_IRQ.load(Ordering::Relaxed) {
            let mmio = NET_MMIO.load(Ordering::Relaxed);
            // SAFETY: the device's interrupt registers; reading the status and writing it back
            // to the acknowledge register is all virtio-drivers would do.
            unsafe {
                let status = ((mmio + MMIO_INTERRUPT_STATUS) as *const u32).read_volatile();
                ((mmio + MMIO_INTERRUPT_ACK) as *mut u32).write_volatile(status);
            }
            NET_WAKER.wake();
        }
        // SAFETY: completing the source just claimed.
        unsafe { claim.write_volatile(irq as u32) };
    }
}
