#include "drivers/serial.h"

#include "arch/x86_64/io.h"
#include "drivers/console.h"

namespace drivers {

namespace {

// Register offsets from the base port.
constexpr uint16_t kData = 0;        // RBR (read) / THR (write); DLL when DLAB=1
constexpr uint16_t kIntEnable = 1;   // IER; DLM when DLAB=1
constexpr uint16_t kFifoControl = 2; // FCR (write) / IIR (read)
constexpr uint16_t kLineControl = 3; // LCR
constexpr uint16_t kModemControl = 4;
constexpr uint16_t kLineStatus = 5;
constexpr uint16_t kScratch = 7;

constexpr uint8_t kLcrDlab = 0x80;
constexpr uint8_t kLcr8N1 = 0x03;
// Enable FIFOs, clear both, receive trigger at 14 bytes.
constexpr uint8_t kFcrEnableAndClear = 0xc7;
constexpr uint8_t kIirFifoEnabled = 0xc0;
constexpr uint8_t kMcrDtr = 0x01, kMcrRts = 0x02, kMcrOut1 = 0x04, kMcrOut2 = 0x08, kMcrLoop = 0x10;
// OUT2 gates the UART's interrupt line onto the ISA bus on PCs.
constexpr uint8_t kMcrNormal = kMcrDtr | kMcrRts | kMcrOut1 | kMcrOut2;
constexpr uint8_t kLsrDataReady = 0x01;
constexpr uint8_t kLsrThrEmpty = 0x20;
// The FIFO and the shift register are both empty (in QEMU: the byte has reached the backend).
constexpr uint8_t kLsrTransmitterEmpty = 0x40;
constexpr uint8_t kIerRxAvailable = 0x01;

constexpr uint32_t kUartClock = 115200; // 1.8432 MHz / 16
constexpr uint8_t k16550FifoDepth = 16;

// Each poll is one port read, roughly a microsecond on real hardware. A 16-byte FIFO
// drains in ~1.4 ms at 115200 baud and ~17 ms at 9600, so this bound (~0.1-0.3 s)
// is only ever reached by a transmitter that has stopped.
constexpr uint32_t kTxSpinLimit = 200000;
// A looped-back byte needs one character time (~87 us at 115200).
constexpr uint32_t kLoopbackSpinLimit = 100000;

constinit SerialPort g_com1;

} // namespace

SerialPort& com1() { return g_com1; }

bool SerialPort::init(uint16_t base, uint32_t baud)
{
    m_base = base;
    m_present = false;
    m_stalled = false;
    m_fifo_depth = 1;
    m_tx_credit = 0;
    if (base == 0 || baud == 0 || baud > kUartClock || kUartClock % baud != 0)
        return false;
    const uint16_t divisor = static_cast<uint16_t>(kUartClock / baud);

    // Scratch register: an empty ISA port floats and reads 0xFF, so two patterns
    // that differ in every bit rule out "nothing there" cheaply.
    constexpr uint8_t kScratchPatterns[] = {0x5a, 0xa5};
    for (const uint8_t pattern : kScratchPatterns) {
        arch::outb(static_cast<uint16_t>(base + kScratch), pattern);
        if (arch::inb(static_cast<uint16_t>(base + kScratch)) != pattern)
            return false;
    }

    arch::outb(static_cast<uint16_t>(base + kIntEnable), 0x00);
    arch::outb(static_cast<uint16_t>(base + kLineControl), kLcrDlab);
    arch::outb(static_cast<uint16_t>(base + kData), static_cast<uint8_t>(divisor & 0xff));
    arch::outb(static_cast<uint16_t>(base + kIntEnable), static_cast<uint8_t>(divisor >> 8));
    arch::outb(static_cast<uint16_t>(base + kLineControl), kLcr8N1);
    arch::outb(static_cast<uint16_t>(base + kFifoControl), kFcrEnableAndClear);

    // Loopback: what we transmit comes straight back to the receiver and nothing reaches
    // the wire. A UART that returns the bytes is really there and really programmed.
    arch::outb(static_cast<uint16_t>(base + kModemControl), kMcrLoop | kMcrRts | kMcrOut1 | kMcrOut2);
    constexpr uint8_t kLoopbackPatterns[] = {0xae, 0x51};
    bool echoed = true;
    for (const uint8_t pattern : kLoopbackPatterns) {
        // Discard stale input (bounded: a broken device might claim data forever).
        for (int i = 0; i < 64 && (arch::inb(static_cast<uint16_t>(base + kLineStatus)) & kLsrDataReady); ++i)
            (void)arch::inb(static_cast<uint16_t>(base + kData));
        arch::outb(static_cast<uint16_t>(base + kData), pattern);
        bool ready = false;
        for (uint32_t spin = 0; spin < kLoopbackSpinLimit && !ready; ++spin)
            ready = arch::inb(static_cast<uint16_t>(base + kLineStatus)) & kLsrDataReady;
        if (!ready || arch::inb(static_cast<uint16_t>(base + kData)) != pattern) {
            echoed = false;
            break;
        }
    }
    arch::outb(static_cast<uint16_t>(base + kModemControl), kMcrNormal);
    if (!echoed)
        return false;

    // IIR bits 7:6 read 11 only on a 16550A-class UART whose FIFOs really switched on.
    if ((arch::inb(static_cast<uint16_t>(base + kFifoControl)) & kIirFifoEnabled) == kIirFifoEnabled)
        m_fifo_depth = k16550FifoDepth;
    m_present = true;
    return true;
}

bool SerialPort::ready_to_send()
{
    if (m_tx_credit > 0)
        return true;
    // THRE set means the whole transmit FIFO (or the single holding register) is empty.
    const uint16_t lsr = static_cast<uint16_t>(m_base + kLineStatus);
    if (m_stalled) {
        // One look per byte while stalled: output resumes as soon as the port drains again.
        if (!(arch::inb(lsr) & kLsrThrEmpty))
            return false;
        m_stalled = false;
    } else {
        uint32_t spin = 0;
        while (!(arch::inb(lsr) & kLsrThrEmpty)) {
            if (++spin == kTxSpinLimit) {
                m_stalled = true;
                return false;
            }
        }
    }
    m_tx_credit = m_fifo_depth;
    return true;
}

bool SerialPort::transmitter_empty()
{
    return m_present && (arch::inb(static_cast<uint16_t>(m_base + kLineStatus)) & kLsrTransmitterEmpty) != 0;
}

void SerialPort::transmit(uint8_t byte)
{
    if (!ready_to_send()) {
        ++m_dropped;
        return;
    }
    --m_tx_credit;
    arch::outb(static_cast<uint16_t>(m_base + kData), byte);
}

void SerialPort::put_char(char c)
{
    if (!m_present)
        return;
    ConsoleGuard guard;
    transmit(static_cast<uint8_t>(c));
}

void SerialPort::write(const char* s, size_t n)
{
    if (!m_present || !s)
        return;
    ConsoleGuard guard;
    for (size_t i = 0; i < n; ++i) {
        if (s[i] == '\n')
            transmit('\r');
        transmit(static_cast<uint8_t>(s[i]));
    }
}

bool SerialPort::has_byte()
{
    if (!m_present)
        return false;
    return arch::inb(static_cast<uint16_t>(m_base + kLineStatus)) & kLsrDataReady;
}

int SerialPort::read_byte()
{
    if (!has_byte())
        return -1;
    return arch::inb(static_cast<uint16_t>(m_base + kData));
}

void SerialPort::enable_rx_interrupt()
{
    if (!m_present)
        return;
    const uint16_t ier = static_cast<uint16_t>(m_base + kIntEnable);
    arch::outb(ier, static_cast<uint8_t>(arch::inb(ier) | kIerRxAvailable));
}

void SerialPort::disable_rx_interrupt()
{
    if (!m_present)
        return;
    const uint16_t ier = static_cast<uint16_t>(m_base + kIntEnable);
    arch::outb(ier, static_cast<uint8_t>(arch::inb(ier) & ~kIerRxAvailable));
}

} // namespace drivers
