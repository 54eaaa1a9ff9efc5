#pragma once
// 16550 UART (COM1 at 0x3F8 on a PC), polled. Output is never blocked for long:
// a transmitter that stops draining is declared stalled and later bytes are dropped
// (and counted) until it drains again, so a dead or unplugged port cannot hang the
// Heartwood. ANSI colour escapes pass through unchanged; terminals show them.
#include <stddef.h>
#include <stdint.h>

#include "lib/log.h"

namespace drivers {

inline constexpr uint16_t kCom1Base = 0x3f8;
inline constexpr uint32_t kDefaultBaud = 115200;

class SerialPort final : public lib::log::Sink {
public:
    constexpr SerialPort() = default;
    SerialPort(const SerialPort&) = delete;
    SerialPort& operator=(const SerialPort&) = delete;

    // Programs `baud` 8N1 with the FIFOs on and interrupts off, then checks that a UART
    // answers (scratch register and an internal loopback round trip). Returns present().
    // `baud` must divide 115200 exactly (115200, 57600, 38400, 9600, ...).
    bool init(uint16_t base, uint32_t baud);
    bool present() const { return m_present; }
    uint16_t base() const { return m_base; }
    bool has_fifo() const { return m_fifo_depth > 1; }
    // Bytes dropped because the transmitter stalled.
    uint64_t dropped_bytes() const { return m_dropped; }

    // True when the transmitter (FIFO and shift register) is empty, so the next bytes go out
    // without the stall logic: for writers that would rather wait than lose bytes (trace dump).
    bool transmitter_empty();

    // Writes bytes, turning "\n" into "\r\n". Does nothing if the port is absent.
    void write(const char* s, size_t n) override;
    // One raw byte (no newline translation).
    void put_char(char c);

    // Non-blocking input: has_byte() says whether read_byte() would return a byte;
    // read_byte() returns it (0..255) or -1 when there is none.
    bool has_byte();
    int read_byte();

    // Raises the UART's "received data available" interrupt (IRQ 4 for COM1). The IRQ
    // handler must read the bytes (read_byte until -1) or the line stays asserted.
    void enable_rx_interrupt();
    // Stops that interrupt; received bytes then wait in the UART, and once its FIFO is full the
    // sender is held back (QEMU's chardev stops reading its backend): input back-pressure.
    void disable_rx_interrupt();

private:
    bool ready_to_send();
    void transmit(uint8_t byte);

    uint16_t m_base = 0;
    bool m_present = false;
    bool m_stalled = false;
    uint8_t m_fifo_depth = 1;
    // Bytes that may still be pushed into the transmit FIFO without looking at the LSR.
    uint8_t m_tx_credit = 0;
    uint64_t m_dropped = 0;
};

// The COM1 port object (initialised by init_serial_console() in drivers/console.h).
SerialPort& com1();

} // namespace drivers
