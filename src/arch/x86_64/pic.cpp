#include "arch/x86_64/pic.h"

#include <atomic>

#include "arch/cpu.h"
#include "arch/x86_64/idt.h"
#include "arch/x86_64/io.h"

namespace arch {

namespace {

constexpr uint16_t kMasterCommand = 0x20;
constexpr uint16_t kMasterData = 0x21;
constexpr uint16_t kSlaveCommand = 0xa0;
constexpr uint16_t kSlaveData = 0xa1;

constexpr uint8_t kIcw1Init = 0x10;
constexpr uint8_t kIcw1NeedIcw4 = 0x01;
constexpr uint8_t kIcw4Mode8086 = 0x01;
constexpr uint8_t kOcw2Eoi = 0x20;
constexpr uint8_t kOcw3ReadIsr = 0x0b;
constexpr uint8_t kOcw3ReadIrr = 0x0a;
constexpr uint8_t kCascadeIrq = 2;

// Cached masks: reading them back costs a slow port access each time.
constinit uint8_t g_master_mask = 0xff;
constinit uint8_t g_slave_mask = 0xff;
constinit std::atomic<uint64_t> g_spurious{0};

void write_masks()
{
    outb(kMasterData, g_master_mask);
    outb(kSlaveData, g_slave_mask);
}

} // namespace

void pic_init()
{
    InterruptGuard guard;
    // ICW1: start initialisation, edge-triggered, cascaded, ICW4 follows.
    outb(kMasterCommand, kIcw1Init | kIcw1NeedIcw4);
    io_wait();
    outb(kSlaveCommand, kIcw1Init | kIcw1NeedIcw4);
    io_wait();
    // ICW2: vector offsets.
    outb(kMasterData, kIrqBase);
    io_wait();
    outb(kSlaveData, kIrqBase + 8);
    io_wait();
    // ICW3: the slave hangs off the master's IRQ 2.
    outb(kMasterData, 1u << kCascadeIrq);
    io_wait();
    outb(kSlaveData, kCascadeIrq);
    io_wait();
    // ICW4: 8086 mode, normal (not automatic) EOI.
    outb(kMasterData, kIcw4Mode8086);
    io_wait();
    outb(kSlaveData, kIcw4Mode8086);
    io_wait();

    g_master_mask = 0xff;
    g_slave_mask = 0xff;
    write_masks();
}

void pic_mask(uint8_t irq)
{
    if (irq >= kIrqCount)
        return;
    InterruptGuard guard;
    if (irq < 8) {
        g_master_mask |= static_cast<uint8_t>(1u << irq);
    } else {
        g_slave_mask |= static_cast<uint8_t>(1u << (irq - 8));
        // Close the cascade once no slave line is open.
        if (g_slave_mask == 0xff)
            g_master_mask |= 1u << kCascadeIrq;
    }
    write_masks();
}

void pic_unmask(uint8_t irq)
{
    if (irq >= kIrqCount)
        return;
    InterruptGuard guard;
    if (irq < 8) {
        g_master_mask &= static_cast<uint8_t>(~(1u << irq));
    } else {
        g_slave_mask &= static_cast<uint8_t>(~(1u << (irq - 8)));
        g_master_mask &= static_cast<uint8_t>(~(1u << kCascadeIrq));
    }
    write_masks();
}

bool pic_is_masked(uint8_t irq)
{
    if (irq >= kIrqCount)
        return true;
    return (pic_mask_bits() >> irq) & 1;
}

uint16_t pic_mask_bits() { return static_cast<uint16_t>(g_master_mask | (g_slave_mask << 8)); }

void pic_send_eoi(uint8_t irq)
{
    if (irq >= 8)
        outb(kSlaveCommand, kOcw2Eoi);
    outb(kMasterCommand, kOcw2Eoi);
}

uint16_t pic_read_isr()
{
    outb(kMasterCommand, kOcw3ReadIsr);
    outb(kSlaveCommand, kOcw3ReadIsr);
    const uint16_t isr = static_cast<uint16_t>(inb(kMasterCommand) | (inb(kSlaveCommand) << 8));
    // Back to the power-on default (reads return the IRR).
    outb(kMasterCommand, kOcw3ReadIrr);
    outb(kSlaveCommand, kOcw3ReadIrr);
    return isr;
}

bool pic_handle_spurious(uint8_t irq)
{
    if (irq != 7 && irq != 15)
        return false;
    if (pic_read_isr() & (1u << irq))
        return false;
    count_spurious_irq();
    // The master did see its cascade line raised by the slave and waits for an EOI.
    if (irq == 15)
        outb(kMasterCommand, kOcw2Eoi);
    return true;
}

uint64_t spurious_irq_count() { return g_spurious.load(std::memory_order_relaxed); }
void count_spurious_irq() { g_spurious.fetch_add(1, std::memory_order_relaxed); }

} // namespace arch
