// In-kernel tests of the consoles: COM1 detection, the VGA text grid, the hardware cursor,
// which screen console the boot display gets, the framebuffer console's pixels, and many
// writers (threads and the timer interrupt) on one screen at once.
#include <atomic>

#include "arch/x86_64/memory_layout.h"
#include "diag/ktest.h"
#include "drivers/console.h"
#include "drivers/font.h"
#include "drivers/framebuffer_console.h"
#include "drivers/serial.h"
#include "drivers/text_grid.h"
#include "drivers/vga_text.h"
#include "kernel/boot_info.h"
#include "lib/log.h"
#include "sched/scheduler.h"
#include "time/time.h"

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
    for (unsigned b = 0; b < layout.bytes_per_pixel; ++b)
        value |= static_cast<uint32_t>(p[b]) << (8 * b);
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
        if (cursor && y >= drivers::FramebufferRenderer::kCursorFirstRow)
            bits = 0xff;
        for (uint32_t x = 0; x < drivers::kFontCellWidth; ++x) {
            const uint32_t want = (bits & (0x80u >> x)) ? fg : bg;
            const uint32_t px = column * drivers::kFontCellWidth + x;
            const uint32_t py = row * drivers::kFontCellHeight + y;
            if (framebuffer_pixel(screen, px, py) != want)
                return false;
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
    for (uint16_t i = 0; i < h; ++i)
        grid.write("\n", 1);
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
    // Whatever display the loader handed over, the kernel must have drawn on it: our grub.cfg keeps
    // BIOS machines in 80x25 text, but a plain `multiboot2` entry leaves them in a VBE pixel mode
    // (our header asks for a framebuffer), and UEFI machines have only pixels. So the expectation
    // comes from the boot information, by the documented rules, not from the firmware.
    const kernel::BootInfo& info = kernel::boot_info();
    const kernel::FramebufferInfo& fb = info.framebuffer;
    const bool ega_text = info.has_framebuffer && fb.type == kernel::FramebufferType::EgaText;
    const bool standard_text = ega_text && fb.phys_addr.get() == drivers::VgaTextConsole::kBufferPhys &&
        fb.width == drivers::VgaTextConsole::kWidth && fb.height == drivers::VgaTextConsole::kHeight &&
        fb.pitch == drivers::VgaTextConsole::kWidth * 2u;
    // A pixel framebuffer is drawable when its format is one the renderer knows and it lies inside
    // the boot physmap (the console starts before the Mana Pool could map more).
    bool drawable = false;
    if (info.has_framebuffer && !ega_text) {
        const auto layout = drivers::check_framebuffer(fb);
        drawable = layout.has_value() && fb.phys_addr.get() < arch::kPhysMapSize &&
            layout->size_bytes() <= arch::kPhysMapSize - fb.phys_addr.get();
    }
    if (info.has_framebuffer)
        lib::log::print("    (the loader handed over a {}x{} {} display at {} bpp, phys {:#x}: {})\n", fb.width,
                        fb.height, kernel::framebuffer_type_name(fb.type), static_cast<unsigned>(fb.bpp),
                        fb.phys_addr.get(),
                        standard_text  ? "VGA text console"
                            : drawable ? "framebuffer console"
                                       : "no screen console");
    else
        lib::log::print("    (the loader reported no display: no screen console)\n");
    KEXPECT_EQ(drivers::has_vga_text(info.has_framebuffer ? &info.framebuffer : nullptr), standard_text);
    KEXPECT_EQ(drivers::vga_text_console_present(), standard_text);
    KEXPECT_EQ(drivers::framebuffer_console_present(), drawable);
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
    for (uint16_t c = 0; c < grid.width(); ++c)
        KEXPECT(framebuffer_shows_cell(screen, c, row));
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
        for (uint16_t c = 0; c < grid.width(); ++c)
            KEXPECT(framebuffer_shows_cell(screen, c, r));
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

// ---- Many writers at once ----
//
// Threads and the timer interrupt all write to the live screen console through its sink. Each
// write is "ESC [ r H" (a row r in 1..h-1), a line feed and a fixed-width tag, so every write goes
// through the escape parser and TextGrid::line_feed and leaves its tag at column 0 of a row.
// Serialised, every row afterwards is blank or one whole tag. A write cut into by another (a thread
// preempted inside it, or the timer interrupt landing in it) leaves the rest of its bytes after
// the other's tag, and nothing ever clears those columns again. The cursor must also have been
// inside the grid after every write, and the cells just past the grid must be untouched.

namespace {

constexpr int kRaceThreads = 4;
constexpr uint64_t kRaceTicks = 400;
// The interrupt writes on every 4th tick: a framebuffer write compares the whole grid with the
// renderer's shadow, about 2 ms at -icount shift=5, so one every tick would leave no time to
// anything but the timer interrupt.
constexpr uint64_t kRaceIrqEvery = 4;
constexpr uint16_t kTagLength = 9; // "t3:012345" or "ir:012345"
constexpr uint16_t kCanaryCell = 0x5aa5;
constexpr size_t kCanaryCells = 160;

struct RaceScreen {
    lib::log::Sink* sink = nullptr;
    drivers::TextGrid* grid = nullptr;
    uint16_t* past_grid = nullptr; // kCanaryCells spare cells right after the grid, or nullptr
};

RaceScreen g_race;
std::atomic<bool> g_race_stop{false};
std::atomic<uint64_t> g_race_writes{0};
std::atomic<uint64_t> g_race_irq_writes{0};
std::atomic<uint64_t> g_race_outside{0}; // writes after which the cursor was outside the grid
kernel::time::TickCallback g_race_chained_tick = nullptr;

bool cursor_inside(const drivers::TextGrid& grid)
{
    return grid.cursor_row() < grid.height() && grid.cursor_column() < grid.width();
}

// `who`: '0'..'3' for the threads, 'i' for the interrupt.
void race_write(char who, uint64_t seq)
{
    const drivers::TextGrid& grid = *g_race.grid;
    const uint64_t row = 1 + (seq * 7 + static_cast<uint8_t>(who)) % (grid.height() - 1u);
    char text[40];
    const size_t n = lib::format(text, sizeof(text), "\x1b[{}H\n{}{}:{:06}", row, who == 'i' ? 'i' : 't',
                                 who == 'i' ? 'r' : who, seq % 1000000);
    g_race.sink->write(text, n);
    if (!cursor_inside(grid))
        g_race_outside.fetch_add(1, std::memory_order_relaxed);
}

void race_thread(void* arg)
{
    const char who = static_cast<char>('0' + reinterpret_cast<uintptr_t>(arg));
    for (uint64_t seq = 0; !g_race_stop.load(std::memory_order_relaxed); ++seq) {
        race_write(who, seq);
        g_race_writes.fetch_add(1, std::memory_order_relaxed);
    }
}

void race_tick()
{
    if (g_race_chained_tick != nullptr)
        g_race_chained_tick();
    if (g_race_stop.load(std::memory_order_relaxed) || kernel::time::ticks() % kRaceIrqEvery != 0)
        return;
    race_write('i', g_race_irq_writes.fetch_add(1, std::memory_order_relaxed));
}

// Blank, or one whole tag at column 0 and blanks after it.
bool is_clean_row(const drivers::TextGrid& grid, uint16_t row)
{
    auto glyph = [&](uint16_t c) { return drivers::cell_glyph(grid.cell(c, row)); };
    bool blank = true;
    for (uint16_t c = 0; c < grid.width() && blank; ++c)
        blank = glyph(c) == ' ';
    if (blank)
        return true;
    const bool thread_tag = glyph(0) == 't' && glyph(1) >= '0' && glyph(1) < '0' + kRaceThreads;
    const bool irq_tag = glyph(0) == 'i' && glyph(1) == 'r';
    if (!(thread_tag || irq_tag) || glyph(2) != ':')
        return false;
    for (uint16_t c = 3; c < kTagLength; ++c)
        if (glyph(c) < '0' || glyph(c) > '9')
            return false;
    for (uint16_t c = kTagLength; c < grid.width(); ++c)
        if (glyph(c) != ' ')
            return false;
    return true;
}

} // namespace

KTEST(console, threads_and_interrupts_write_at_once)
{
    drivers::VgaTextConsole& vga = drivers::vga_text();
    drivers::FramebufferConsole& fb = drivers::framebuffer_console();
    // Spare cells after the grid: VGA text memory holds 16 Ki cells, the framebuffer grid's array
    // kMaxColumns x kMaxRows (the renderer's shadow follows it, so the largest grid has none).
    size_t capacity = 0;
    g_race = {};
    if (vga.present()) {
        g_race = {&vga, &vga.grid(), nullptr};
        capacity = 16384;
    } else if (fb.present()) {
        g_race = {&fb, &fb.grid(), nullptr};
        capacity = size_t(drivers::FramebufferConsole::kMaxColumns) * drivers::FramebufferConsole::kMaxRows;
    } else {
        lib::log::print("    (no screen console on this machine: nothing to check)\n");
        return;
    }
    drivers::TextGrid& grid = *g_race.grid;
    KASSERT(grid.height() >= 2 && grid.width() > kTagLength);
    const size_t used = size_t(grid.width()) * grid.height();
    if (used + kCanaryCells <= capacity) {
        // The device's (or the driver's own) memory past the grid, which no write may reach.
        g_race.past_grid = const_cast<uint16_t*>(grid.cells()) + used;
        for (size_t i = 0; i < kCanaryCells; ++i)
            g_race.past_grid[i] = kCanaryCell;
    }
    g_race.sink->write("\x1b[0m\x1b[2J", 8);

    g_race_stop = false;
    g_race_writes = 0;
    g_race_irq_writes = 0;
    g_race_outside = 0;
    sched::Thread* threads[kRaceThreads] = {};
    int spawned = 0;
    for (int i = 0; i < kRaceThreads; ++i) {
        auto t = sched::spawn(&race_thread, reinterpret_cast<void*>(uintptr_t(i)), "console-writer",
                              sched::Priority::Normal);
        if (!t)
            break;
        threads[i] = *t;
        ++spawned;
    }
    KEXPECT_EQ(spawned, kRaceThreads);
    g_race_chained_tick = kernel::time::set_tick_callback(&race_tick);
    const uint64_t until = kernel::time::ticks() + kRaceTicks;
    while (kernel::time::ticks() < until)
        sched::sleep_for(10);
    g_race_stop = true;
    const kernel::time::TickCallback ours = kernel::time::set_tick_callback(g_race_chained_tick);
    KEXPECT(ours == &race_tick);
    for (sched::Thread* t : threads)
        if (t != nullptr)
            sched::join(t);

    size_t canaries_hit = 0;
    if (g_race.past_grid != nullptr) {
        for (size_t i = 0; i < kCanaryCells; ++i)
            canaries_hit += g_race.past_grid[i] != kCanaryCell;
        for (size_t i = 0; i < kCanaryCells; ++i)
            g_race.past_grid[i] = 0;
    }
    size_t torn_rows = 0;
    for (uint16_t r = 0; r < grid.height(); ++r)
        torn_rows += !is_clean_row(grid, r);
    g_race.sink->write("\x1b[2J\x1b[H", 7);
    lib::log::print("    ({} thread writes and {} from the timer interrupt on a {}x{} grid: {} rows torn, {} writes "
                    "left the cursor outside, {} cells written past the grid)\n",
                    g_race_writes.load(), g_race_irq_writes.load(), grid.width(), grid.height(), torn_rows,
                    g_race_outside.load(), canaries_hit);
    KEXPECT(g_race_writes.load() > 0);
    KEXPECT(g_race_irq_writes.load() > 0);
    KEXPECT_EQ(torn_rows, 0u);
    KEXPECT_EQ(g_race_outside.load(), 0u);
    KEXPECT_EQ(canaries_hit, 0u);
    KEXPECT(cursor_inside(grid));
}
