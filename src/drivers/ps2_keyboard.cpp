#include "drivers/ps2_keyboard.h"

#include <atomic>

#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/io.h"
#include "drivers/keyboard_decoder.h"
#include "lib/log.h"
#include "time/time.h"

namespace drivers {

namespace {

constexpr uint16_t kDataPort = 0x60;
constexpr uint16_t kStatusPort = 0x64; // read: status; write: controller command

constexpr uint8_t kStatusOutputFull = 0x01; // a byte waits at 0x60 for us
constexpr uint8_t kStatusInputFull = 0x02;  // the controller has not taken our last byte yet
constexpr uint8_t kStatusAuxData = 0x20;    // the waiting byte came from the second (mouse) port

// Controller commands.
constexpr uint8_t kCmdReadConfig = 0x20, kCmdWriteConfig = 0x60, kCmdDisablePort2 = 0xa7, kCmdSelfTest = 0xaa,
                  kCmdTestPort1 = 0xab, kCmdDisablePort1 = 0xad, kCmdEnablePort1 = 0xae;
constexpr uint8_t kSelfTestPassed = 0x55, kPortTestPassed = 0x00;

// Configuration byte.
constexpr uint8_t kConfigPort1Irq = 0x01, kConfigPort2Irq = 0x02, kConfigPort1ClockOff = 0x10,
                  kConfigTranslation = 0x40;

// Keyboard commands and replies.
constexpr uint8_t kKbdSetLeds = 0xed, kKbdScancodeSet = 0xf0, kKbdEnableScanning = 0xf4, kKbdReset = 0xff;
constexpr uint8_t kKbdAck = 0xfa, kKbdResend = 0xfe, kKbdSelfTestPassed = 0xaa, kKbdSelfTestFailed1 = 0xfc,
                  kKbdSelfTestFailed2 = 0xfd;

constexpr uint8_t kIrq = 1;

// Controller commands complete in microseconds; a keyboard's power-on self-test may take up to
// about half a second on real hardware. Waits are timed with the tick clock and also capped in
// polls, so a stopped clock cannot hang the boot.
constexpr uint64_t kControllerTimeoutMs = 50;
constexpr uint64_t kAckTimeoutMs = 200;
constexpr uint64_t kResetTimeoutMs = 1000;
constexpr uint64_t kMaxPollsPerMs = 20000;
constexpr int kResendAttempts = 3;
constexpr int kFlushLimit = 64;
// In the IRQ handler: polls of the input-full bit before giving up on writing an LED command.
constexpr int kIrqWriteSpins = 2000;
// Bytes one interrupt drains at most (the controller holds one; more may follow quickly).
constexpr int kIrqDrainLimit = 16;

enum class LedState : uint8_t { Idle, AwaitSetLedsAck, AwaitValueAck };

KeyBytesSink g_sink = nullptr;
KeyboardDecoder g_decoder;             // IRQ handler only (after init)
LedState g_led_state = LedState::Idle; // IRQ handler only
uint8_t g_leds_sent = 0;               // IRQ handler only: the value of the last LED update
std::atomic<uint64_t> g_scancodes{0};

uint8_t status() { return arch::inb(kStatusPort); }

// Polls until status() & mask == want or `timeout_ms` passes.
bool wait_status(uint8_t mask, uint8_t want, uint64_t timeout_ms)
{
    const uint64_t start = kernel::time::uptime_ns();
    const uint64_t limit_ns = timeout_ms * 1'000'000;
    const uint64_t max_polls = timeout_ms * kMaxPollsPerMs;
    for (uint64_t polls = 0; polls < max_polls; ++polls) {
        if ((status() & mask) == want)
            return true;
        if (kernel::time::uptime_ns() - start >= limit_ns)
            return false;
        asm volatile("pause");
    }
    return false;
}

bool write_port(uint16_t port, uint8_t value)
{
    if (!wait_status(kStatusInputFull, 0, kControllerTimeoutMs))
        return false;
    arch::outb(port, value);
    return true;
}

bool command(uint8_t cmd) { return write_port(kStatusPort, cmd); }

// The next byte from the controller, or -1 after `timeout_ms`.
int read_data(uint64_t timeout_ms)
{
    if (!wait_status(kStatusOutputFull, kStatusOutputFull, timeout_ms))
        return -1;
    return arch::inb(kDataPort);
}

void flush_output()
{
    for (int i = 0; i < kFlushLimit && (status() & kStatusOutputFull); ++i)
        (void)arch::inb(kDataPort);
}

int command_with_reply(uint8_t cmd, uint64_t timeout_ms = kControllerTimeoutMs)
{
    if (!command(cmd))
        return -1;
    return read_data(timeout_ms);
}

bool write_config(uint8_t config) { return command(kCmdWriteConfig) && write_port(kDataPort, config); }

// Sends one byte to the keyboard and waits for its ACK, resending when asked to.
bool keyboard_send(uint8_t byte)
{
    for (int attempt = 0; attempt < kResendAttempts; ++attempt) {
        if (!write_port(kDataPort, byte))
            return false;
        const int reply = read_data(kAckTimeoutMs);
        if (reply == kKbdAck)
            return true;
        if (reply != kKbdResend)
            return false;
    }
    return false;
}

Ps2Status reset_keyboard()
{
    if (!keyboard_send(kKbdReset))
        return Ps2Status::NoKeyboard;
    // The self-test verdict follows the ACK once the keyboard has tested itself.
    const uint64_t start = kernel::time::uptime_ns();
    while (kernel::time::uptime_ns() - start < kResetTimeoutMs * 1'000'000) {
        const int reply = read_data(kResetTimeoutMs);
        if (reply == kKbdSelfTestPassed)
            return Ps2Status::Ready;
        if (reply == kKbdSelfTestFailed1 || reply == kKbdSelfTestFailed2)
            return Ps2Status::KeyboardFailed;
        if (reply < 0)
            break;
    }
    return Ps2Status::NoKeyboard;
}

// IRQ context: writes a byte for the keyboard only if the controller takes it promptly.
bool irq_write(uint8_t byte)
{
    for (int i = 0; i < kIrqWriteSpins; ++i) {
        if (!(status() & kStatusInputFull)) {
            arch::outb(kDataPort, byte);
            return true;
        }
    }
    return false;
}

void start_led_update()
{
    if (g_led_state != LedState::Idle)
        return; // the running update catches up when it ends
    if (irq_write(kKbdSetLeds))
        g_led_state = LedState::AwaitSetLedsAck;
}

// An ACK or resend while an LED update runs belongs to it, not to the decoder.
bool handle_led_reply(uint8_t byte)
{
    if (g_led_state == LedState::Idle || (byte != kKbdAck && byte != kKbdResend))
        return false;
    if (byte == kKbdResend) {
        g_led_state = LedState::Idle; // the LEDs are a courtesy: no retry loop in an IRQ
        return true;
    }
    if (g_led_state == LedState::AwaitSetLedsAck) {
        g_leds_sent = g_decoder.leds();
        g_led_state = irq_write(g_leds_sent) ? LedState::AwaitValueAck : LedState::Idle;
    } else {
        g_led_state = LedState::Idle;
        if (g_decoder.leds() != g_leds_sent)
            start_led_update(); // a lock key changed meanwhile
    }
    return true;
}

void on_irq(arch::InterruptFrame&)
{
    for (int i = 0; i < kIrqDrainLimit; ++i) {
        const uint8_t st = status();
        if (!(st & kStatusOutputFull))
            break;
        const uint8_t byte = arch::inb(kDataPort);
        if (st & kStatusAuxData)
            continue; // a mouse byte (the second port is disabled; stray)
        g_scancodes.fetch_add(1, std::memory_order_relaxed);
        if (handle_led_reply(byte))
            continue;
        uint8_t out[KeyboardDecoder::kMaxOutput];
        const size_t n = g_decoder.feed(byte, out);
        if (n > 0 && g_sink != nullptr)
            g_sink(out, n);
        if (g_decoder.take_leds_changed())
            start_led_update();
    }
}

Ps2Status bring_up(uint8_t& config_out)
{
    // Nothing decodes port 0x64 on a machine without an 8042: the bus floats to 0xFF.
    if (status() == 0xff)
        return Ps2Status::NoController;
    if (!command(kCmdDisablePort1) || !command(kCmdDisablePort2))
        return Ps2Status::NoController;
    flush_output();

    const int config_read = command_with_reply(kCmdReadConfig);
    if (config_read < 0)
        return Ps2Status::NoController;
    uint8_t config = static_cast<uint8_t>(config_read);
    config = static_cast<uint8_t>((config & ~(kConfigPort1Irq | kConfigPort2Irq)) | kConfigTranslation);
    if (!write_config(config))
        return Ps2Status::NoController;

    if (command_with_reply(kCmdSelfTest, kAckTimeoutMs) != kSelfTestPassed)
        return Ps2Status::SelfTestFailed;
    // Some controllers reset themselves in the self-test: write the configuration again.
    if (!write_config(config))
        return Ps2Status::NoController;
    if (command_with_reply(kCmdTestPort1) != kPortTestPassed)
        return Ps2Status::PortTestFailed;

    if (!command(kCmdEnablePort1))
        return Ps2Status::NoController;
    config = static_cast<uint8_t>(config & ~kConfigPort1ClockOff);
    const Ps2Status keyboard = reset_keyboard();
    if (keyboard != Ps2Status::Ready)
        return keyboard;

    // Confirm the translation bit stuck; if not, ask the keyboard for set 1 directly.
    const int config_now = command_with_reply(kCmdReadConfig);
    if (config_now >= 0 && !(config_now & kConfigTranslation)) {
        if (keyboard_send(kKbdScancodeSet) && keyboard_send(1))
            lib::log::warn("ps/2: the controller refused scancode translation; the keyboard was switched to set 1");
        else
            lib::log::warn("ps/2: no scancode translation and the keyboard refused set 1: keys may decode wrongly");
    }
    if (!keyboard_send(kKbdEnableScanning))
        return Ps2Status::NoKeyboard;
    config_out = config;
    return Ps2Status::Ready;
}

} // namespace

const char* to_string(Ps2Status status)
{
    switch (status) {
    case Ps2Status::Ready: return "ready";
    case Ps2Status::NoController: return "no 8042 controller answered";
    case Ps2Status::SelfTestFailed: return "the 8042 failed its self-test";
    case Ps2Status::PortTestFailed: return "the keyboard port failed its interface test";
    case Ps2Status::NoKeyboard: return "no keyboard acknowledged a reset";
    case Ps2Status::KeyboardFailed: return "the keyboard failed its self-test";
    case Ps2Status::IrqUnavailable: return "IRQ 1 is taken by another handler";
    }
    return "unknown";
}

uint64_t ps2_scancodes_received() { return g_scancodes.load(std::memory_order_relaxed); }

Ps2Status init_ps2_keyboard(KeyBytesSink sink)
{
    uint8_t config = 0;
    const uint64_t start = kernel::time::uptime_ns();
    Ps2Status result = bring_up(config);
    if (result == Ps2Status::Ready) {
        g_sink = sink;
        g_decoder = KeyboardDecoder{};
        g_led_state = LedState::Idle;
        g_leds_sent = 0; // a reset keyboard has its LEDs off
        flush_output();
        if (!arch::register_irq_handler(kIrq, &on_irq)) {
            result = Ps2Status::IrqUnavailable;
        } else if (!write_config(static_cast<uint8_t>(config | kConfigPort1Irq))) {
            arch::unregister_irq_handler(kIrq);
            result = Ps2Status::NoController;
        }
    }
    const uint64_t took_ms = (kernel::time::uptime_ns() - start) / 1'000'000;
    if (result == Ps2Status::Ready)
        lib::log::info("ps/2 keyboard ready (scancode set 1 via 8042 translation, IRQ 1; {} ms)", took_ms);
    else
        lib::log::info("ps/2 keyboard: {} ({} ms); input continues on serial alone", to_string(result), took_ms);
    return result;
}

} // namespace drivers
