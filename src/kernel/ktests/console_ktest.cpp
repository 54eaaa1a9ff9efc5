// In-kernel tests of the consoles: COM1 detection, the VGA text grid, the hardware cursor.
#include "drivers/console.h"
#include "drivers/serial.h"
#include "drivers/text_grid.h"
#include "drivers/vga_text.h"
#include "kernel/ktest.h"
#include "lib/log.h"

namespace {

// Off-screen cells: the grid logic is checked here without touching the live screen.
uint16_t g_scratch_cells[drivers::VgaTextConsole::kWidth * drivers::VgaTextConsole::kHeight];

} // namespace

KTEST(console, serial_present)
{
    // QEMU always provides a 16550A on COM1.
    KEXPECT(drivers::serial_console_present());
    KEXPECT(drivers::com1().present());
    KEXPECT_EQ(drivers::com1().base(), drivers::kCom1Base);
    KEXPECT(drivers::com1().has_fifo());
    KEXPECT_EQ(drivers::com1().dropped_bytes(), 0u);
}

KTEST(console, serial_rejects_absent_port_and_bad_baud)
{
    drivers::SerialPort probe;
    // Nothing answers at COM4 (0x2E8) on QEMU's q35 machine unless extra -serial options add it.
    KEXPECT(!probe.init(0x2e8, drivers::kDefaultBaud));
    KEXPECT(!probe.present());
    // A baud rate that 115200 does not divide is refused before any port is touched.
    KEXPECT(!probe.init(drivers::kCom1Base, 7));
    KEXPECT_EQ(probe.read_byte(), -1);
    probe.write("dropped\n", 8); // absent: must simply return
}

KTEST(console, text_grid_writes_with_attributes)
{
    using drivers::make_cell;
    constexpr uint16_t w = drivers::VgaTextConsole::kWidth;
    constexpr uint16_t h = drivers::VgaTextConsole::kHeight;
    drivers::TextGrid grid(g_scratch_cells, w, h);
    KEXPECT_EQ(g_scratch_cells[0], make_cell(' ', 0x07));

    const char text[] = "A\x1b[1;31mR\x1b[0m\x1b[44mb\x1b[0m\nnext";
    grid.write(text, sizeof(text) - 1);
    KEXPECT_EQ(g_scratch_cells[0], make_cell('A', 0x07));
    KEXPECT_EQ(g_scratch_cells[1], make_cell('R', 0x0c)); // bold red = light red
    KEXPECT_EQ(g_scratch_cells[2], make_cell('b', 0x17)); // grey on blue
    KEXPECT_EQ(g_scratch_cells[w], make_cell('n', 0x07));
    KEXPECT_EQ(grid.cursor_offset(), w + 4);

    // Fill past the bottom: the first row scrolls off, the last line stays visible.
    for (uint16_t i = 0; i < h; ++i) grid.write("\n", 1);
    grid.write("last", 4);
    KEXPECT_EQ(g_scratch_cells[(h - 1) * w], make_cell('l', 0x07));
    KEXPECT_EQ(grid.cursor_row(), h - 1);
}

KTEST(console, vga_hardware_cursor_follows_writes)
{
    drivers::VgaTextConsole& screen = drivers::vga_text();
    if (!screen.present()) {
        lib::log::print("    (no VGA text console on this machine, e.g. UEFI: nothing to check)\n");
        return;
    }
    const char probe[] = "console ktest: the cursor sits after this";
    screen.write(probe, sizeof(probe) - 1);
    const uint16_t expected = screen.grid().cursor_offset();
    KEXPECT_EQ(drivers::VgaTextConsole::hardware_cursor_offset(), expected);
    KEXPECT(expected % drivers::VgaTextConsole::kWidth != 0);
    screen.write("\n", 1);
    KEXPECT_EQ(drivers::VgaTextConsole::hardware_cursor_offset(), screen.grid().cursor_offset());
    KEXPECT_EQ(screen.grid().cursor_column(), 0);
}
