// Input: COM1's receive interrupt and the PS/2 keyboard's feed one ring; readers sleep on a wait
// queue. The ring is guarded by that queue's lock (an IrqSpinLock), so the interrupt handlers, the
// injectors and the readers all see it whole; a reader checks the ring and queues itself under the
// same lock, so a byte that arrives in between wakes it (no lost wake-up).
//
// Wake-up latency: a push unparks the waiting reader; the Loom of Fate sets need_resched when the
// reader (the High-priority shell) outranks the interrupted thread, and switches at the interrupt
// exit (or, for input_inject from a thread, when the lock's preempt_enable runs). So a key reaches
// the shell at once, however many Normal threads are busy.
//
// Serial back-pressure: a full ring does not drop serial bytes. The receive interrupt is masked
// instead and the bytes wait in the UART (and, once its FIFO is full, in the sender: QEMU stops
// reading its chardev), until a reader has emptied the ring to half and unmasks it. So a paste of
// any length arrives whole, Enter included. Keyboard bytes that find the ring full are dropped.
#include "drivers/input.h"

#include <atomic>

#include "arch/x86_64/interrupts.h"
#include "blocking/wait_queue.h"
#include "drivers/byte_ring.h"
#include "drivers/ps2_keyboard.h"
#include "drivers/serial.h"
#include "lib/log.h"
#include "time/time.h"

namespace drivers {

namespace {

namespace sync = kernel::sync;

constexpr uint8_t kSerialIrq = 4;
// A 16550 holds 16 bytes; a little more covers bytes that land while we drain.
constexpr int kSerialDrainLimit = 32;
// Paused serial input resumes once the ring is down to this fill: half, so the interrupt is not
// toggled for every byte a reader takes.
constexpr size_t kSerialResumeFill = kInputCapacity / 2;

// Serial bytes take their own path (drain_serial_locked), which never refuses them.
enum class Source : uint8_t { Keyboard, Injected };

constinit sync::WaitQueue g_readers{"input"};
ByteRing<kInputCapacity> g_ring; // guarded by g_readers' lock
// Per-source counts (guarded by the same lock; read as a snapshot).
uint64_t g_serial_bytes = 0;
uint64_t g_keyboard_bytes = 0;
uint64_t g_injected_bytes = 0;
uint64_t g_serial_pauses = 0;
bool g_serial_paused = false; // the receive interrupt is masked because the ring was full
std::atomic<bool> g_serial_irq{false};
std::atomic<bool> g_keyboard{false};

// Queues `n` bytes as one unit (all or nothing) and wakes the readers. Any context.
bool enqueue(const uint8_t* bytes, size_t n, Source source)
{
    return g_readers.with_lock([&](sync::WaitQueue::Locked& locked) {
        if (!g_ring.push(bytes, n))
            return false;
        switch (source) {
        case Source::Keyboard: g_keyboard_bytes += n; break;
        case Source::Injected: g_injected_bytes += n; break;
        }
        // Every reader rechecks the ring under the lock; the one that finds nothing waits again.
        (void)locked.wake_all();
        return true;
    });
}

// Moves bytes from the UART into the ring until the UART is empty or the ring is full; a full ring
// pauses the receive interrupt and leaves the rest in the UART. Returns how many moved. Lock held.
size_t drain_serial_locked()
{
    SerialPort& port = com1();
    size_t moved = 0;
    for (int i = 0; i < kSerialDrainLimit; ++i) {
        if (g_ring.free_space() == 0) {
            if (!g_serial_paused) {
                port.disable_rx_interrupt();
                g_serial_paused = true;
                ++g_serial_pauses;
            }
            break;
        }
        const int byte = port.read_byte();
        if (byte < 0)
            break;
        (void)g_ring.push(static_cast<uint8_t>(byte));
        ++g_serial_bytes;
        ++moved;
    }
    return moved;
}

void drain_serial()
{
    g_readers.with_lock([](sync::WaitQueue::Locked& locked) {
        if (drain_serial_locked() != 0)
            (void)locked.wake_all();
    });
}

// After a reader took a byte (lock held): paused serial input resumes once there is room. The UART
// raises its interrupt again at once for the bytes it holds (the FIFO trigger or its timeout).
void resume_serial_locked()
{
    if (!g_serial_paused || g_ring.size() > kSerialResumeFill)
        return;
    g_serial_paused = false;
    com1().enable_rx_interrupt();
}

// The oldest byte or -1; lock held.
int pop_locked()
{
    const int byte = g_ring.pop();
    if (byte >= 0)
        resume_serial_locked();
    return byte;
}

// IRQ 4: the UART lowers its line once the receive FIFO is empty.
void on_serial_irq(arch::InterruptFrame&) { drain_serial(); }

void on_keyboard_bytes(const uint8_t* bytes, size_t n) { (void)enqueue(bytes, n, Source::Keyboard); }

// Blocks until a byte arrives or the tick count reaches `deadline` (sync::kNoDeadline: never).
int read_until(uint64_t deadline)
{
    for (;;) {
        int byte = -1;
        auto try_now = [&byte] {
            byte = pop_locked();
            return byte >= 0;
        };
        const sync::WaitResult result = g_readers.wait_unless(try_now, deadline, "drivers::input_read_byte");
        if (byte >= 0)
            return byte;
        if (result == sync::WaitResult::TimedOut)
            return -1;
        // Woken, but another reader took the byte: wait again.
    }
}

} // namespace

void init_input()
{
    SerialPort& port = com1();
    if (!port.present()) {
        lib::log::info("input: no COM1 UART, so no serial input");
    } else if (!arch::register_irq_handler(kSerialIrq, &on_serial_irq)) {
        lib::log::warn("input: IRQ {} is taken by another handler: no serial input", kSerialIrq);
    } else {
        port.enable_rx_interrupt();
        g_serial_irq.store(true, std::memory_order_relaxed);
        // Bytes typed before the interrupt was on raised no edge: collect them now (under the
        // ring's lock, so the handler cannot read the UART between our status check and read).
        drain_serial();
    }
    const Ps2Status keyboard = init_ps2_keyboard(&on_keyboard_bytes);
    g_keyboard.store(keyboard == Ps2Status::Ready, std::memory_order_relaxed);
}

uint8_t input_read_byte() { return static_cast<uint8_t>(read_until(sync::kNoDeadline)); }

int input_read_byte_for(uint64_t timeout_ms)
{
    constexpr uint64_t kNsPerMs = 1'000'000;
    if (timeout_ms >= UINT64_MAX / kNsPerMs)
        return read_until(sync::kNoDeadline);
    return read_until(sync::deadline_after_ticks(kernel::time::ns_to_ticks(timeout_ms * kNsPerMs)));
}

int input_try_read_byte()
{
    return g_readers.with_lock([](sync::WaitQueue::Locked&) { return pop_locked(); });
}

bool input_inject(uint8_t byte) { return enqueue(&byte, 1, Source::Injected); }

InputCounters input_counters()
{
    InputCounters out;
    g_readers.with_lock([&out](sync::WaitQueue::Locked&) {
        out.serial_bytes = g_serial_bytes;
        out.keyboard_bytes = g_keyboard_bytes;
        out.injected_bytes = g_injected_bytes;
        out.dropped_bytes = g_ring.dropped();
        out.serial_pauses = g_serial_pauses;
        out.queued = g_ring.size();
        out.serial_paused = g_serial_paused;
    });
    out.serial_irq = g_serial_irq.load(std::memory_order_relaxed);
    out.keyboard = g_keyboard.load(std::memory_order_relaxed);
    return out;
}

} // namespace drivers
