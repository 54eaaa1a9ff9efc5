// In-kernel tests of the consoles: COM1 detection, the VGA text grid, the hardware cursor,
// which screen console the boot display gets, and the framebuffer console's pixels.
#include "drivers/console.h"
#include "drivers/font.h"
#include "drivers/framebuffer_console.h"
#include "drivers/serial.h"
#include "drivers/text_grid.h"
#include "drivers/vga_text.h"
#include "kernel/boot_info.h"
#include "kernel/ktest.h"
#include "kernel/time.h"
#include "lib/log.h"

namespace {

// Off-screen cells: the grid logic is checked here without touching the live screen.
uint16_t g_scratch_cells[drivers::VgaTextConsole::kWidth * drivers::VgaTextConsole::kHeight];

// The pixel at (x, y) of the live framebuffer, read back through the physmap.
uint32_t framebuffer_pixel(const drivers::FramebufferConsole& screen, uint32_t x, uint32_t y)
{
    const drivers::PixelLayout& layout = screen.renderer().layout();
    const uint8_t* p =
        screen.pixels() + static_cast<size_t>(y) * layout.pitch + static_cast<size_t>(x) * layout.bytes_per_pixel;
    uint32_t value = 0;
    for (unsigned b = 0; b < layout.bytes_per_pixel; ++b) value |= static_cast<uint32_t>(p[b]) << (8 * b);
    return value;
}

// Whether cell (column, row) on the screen is exactly the grid's cell in its colours,
// underlined when the cursor is there.
bool framebuffer_shows_cell(drivers::FramebufferConsole& screen, uint16_t column, uint16_t row)
{
    const drivers::TextGrid& grid = screen.grid();
    const uint16_t cell = grid.cell(column, row);
    const uint8_t attribute = drivers::cell_attribute(cell);
    const uint32_t fg = screen.renderer().pixel_for_attribute_nibble(attribute & 0x0f);
    const uint32_t bg = screen.renderer().pixel_for_attribute_nibble((attribute >> 4) & 0x07);
    const uint8_t* glyph = drivers::font_glyph(static_cast<uint8_t>(drivers::cell_glyph(cell)));
    const bool cursor = column == grid.cursor_column() && row == grid.cursor_row();
    for (uint32_t y = 0; y < drivers::kFontCellHeight; ++y) {
        uint8_t bits = glyph[y];
        if (cursor && y >= drivers::FramebufferRenderer::kCursorFirstRow) bits = 0xff;
        for (uint32_t x = 0; x < drivers::kFontCellWidth; ++x) {
            const uint32_t want = (bits & (0x80u >> x)) ? fg : bg;
            const uint32_t px = column * drivers::kFontCellWidth + x;
            const uint32_t py = row * drivers::kFontCellHeight + y;
            if (framebuffer_pixel(screen, px, py) != want) return false;
        }
    }
    return true;
}

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

KTEST(console, screen_console_matches_boot_display)
{
    const kernel::BootInfo& info = kernel::boot_info();
    const bool text = drivers::has_vga_text(info);
    KEXPECT_EQ(drivers::vga_text_console_present(), text);
    if (text) {
        KEXPECT(!drivers::framebuffer_console_present());
    } else if (info.has_framebuffer && info.framebuffer.type == kernel::FramebufferType::Rgb) {
        // QEMU's display under OVMF is a 32 bpp framebuffer below 4 GiB: always drawable.
        KEXPECT(drivers::check_framebuffer(info.framebuffer).has_value());
        KEXPECT(drivers::framebuffer_console_present());
    }
    // Our grub.cfg files keep BIOS boots (no EFI system table) in 80x25 text mode although
    // the Multiboot2 header asks for a framebuffer; UEFI has no text mode to keep.
    if (info.efi_system_table.is_null()) KEXPECT(text);
    else KEXPECT(!text);
}

KTEST(console, framebuffer_draws_what_the_grid_holds)
{
    drivers::FramebufferConsole& screen = drivers::framebuffer_console();
    if (!screen.present()) {
        lib::log::print("    (no framebuffer console on this machine, e.g. BIOS text mode: nothing to check)\n");
        return;
    }
    drivers::TextGrid& grid = screen.grid();
    const char probe[] = "\x1b[1;33mframebuffer ktest:\x1b[0m \x1b[44mevery pixel of this row\x1b[0m is checked";
    screen.write(probe, sizeof(probe) - 1);
    const uint16_t row = grid.cursor_row();
    for (uint16_t c = 0; c < grid.width(); ++c) KEXPECT(framebuffer_shows_cell(screen, c, row));
    KEXPECT_EQ(drivers::cell_attribute(grid.cell(0, row)), 0x0e); // bold yellow

    // One more character redraws two cells: the one written and the one the cursor reached.
    const uint64_t before = screen.renderer().cells_drawn();
    screen.write(".", 1);
    KEXPECT_EQ(screen.renderer().cells_drawn() - before, 2u);
    KEXPECT(framebuffer_shows_cell(screen, static_cast<uint16_t>(grid.cursor_column() - 1), row));
    KEXPECT(framebuffer_shows_cell(screen, grid.cursor_column(), row));
    screen.write("\n", 1);
}

KTEST(console, framebuffer_scrolls_a_full_screen_quickly)
{
    drivers::FramebufferConsole& screen = drivers::framebuffer_console();
    if (!screen.present()) {
        lib::log::print("    (no framebuffer console on this machine: nothing to check)\n");
        return;
    }
    // A screenful of lines, each one scrolling the screen: written to this console alone,
    // so serial is spared the noise. Every line differs from the one above it, so nearly
    // every cell in the text is redrawn on each scroll: the worst case for the renderer.
    drivers::TextGrid& grid = screen.grid();
    const uint16_t lines = grid.height();
    char line[96];
    const uint64_t drawn_before = screen.renderer().cells_drawn();
    const uint64_t start = kernel::time::uptime_ns();
    for (uint16_t i = 0; i < lines; ++i) {
        const size_t n =
            lib::format(line, sizeof(line), "\nscroll probe {} of {}: the Heartwood keeps its rings", i + 1, lines);
        screen.write(line, n < sizeof(line) ? n : sizeof(line) - 1);
    }
    const uint64_t elapsed = kernel::time::uptime_ns() - start;
    const uint64_t drawn = screen.renderer().cells_drawn() - drawn_before;
    for (uint16_t r = 0; r < grid.height(); ++r)
        for (uint16_t c = 0; c < grid.width(); ++c) KEXPECT(framebuffer_shows_cell(screen, c, r));
    lib::log::print("    ({} lines scrolled on a {}x{} cell screen: {} cells drawn in {} us, {} us a line)\n", lines,
                    grid.width(), grid.height(), drawn, elapsed / 1000, elapsed / 1000 / lines);
    // Generous even for TCG on a loaded host (measured well below it): a full redraw per
    // character would take seconds here.
    KEXPECT(elapsed < 5'000'000'000ull);
    screen.write("\n", 1);
}

KTEST(console, framebuffer_console_refuses_what_it_cannot_draw)
{
    // Refusals return before anything is touched, so a second console object is safe here.
    drivers::FramebufferConsole probe;
    kernel::FramebufferInfo fb;
    fb.phys_addr = PhysicalAddress(0x1'0000'0000ull); // above the boot physmap (a 64-bit BAR)
    fb.width = 1024;
    fb.height = 768;
    fb.pitch = 4096;
    fb.bpp = 32;
    fb.type = kernel::FramebufferType::Rgb;
    fb.red = {16, 8};
    fb.green = {8, 8};
    fb.blue = {0, 8};
    auto status = probe.init(fb);
    KASSERT(!status);
    KEXPECT(status.error() == drivers::FramebufferError::NotMapped);
    fb.phys_addr = PhysicalAddress(0xffe0'0000ull); // starts below 4 GiB, ends above it
    status = probe.init(fb);
    KASSERT(!status);
    KEXPECT(status.error() == drivers::FramebufferError::NotMapped);
    fb.type = kernel::FramebufferType::Indexed;
    status = probe.init(fb);
    KASSERT(!status);
    KEXPECT(status.error() == drivers::FramebufferError::Indexed);
    KEXPECT(!probe.present());
    probe.write("dropped\n", 8); // absent: must simply return
}
