#include "drivers/framebuffer_console.h"

#include "arch/x86_64/memory_layout.h"
#include "drivers/console.h"
#include "drivers/font.h"

namespace drivers {

namespace {

constinit FramebufferConsole g_framebuffer_console;
// Outside the object, which has non-zero initial state and so lives in .data.
uint16_t g_cells[FramebufferConsole::kMaxColumns * FramebufferConsole::kMaxRows];
uint16_t g_shadow[FramebufferConsole::kMaxColumns * FramebufferConsole::kMaxRows];

} // namespace

FramebufferConsole& framebuffer_console() { return g_framebuffer_console; }

lib::Expected<void, FramebufferError> FramebufferConsole::init(const FramebufferInfo& fb)
{
    auto layout = check_framebuffer(fb);
    if (!layout)
        return lib::unexpected(layout.error());
    // The console starts before the Mana Pool, when only the boot physmap exists; a
    // framebuffer above it (possible behind a 64-bit BAR) is refused rather than mapped.
    if (fb.phys_addr.get() >= arch::kPhysMapSize || layout->size_bytes() > arch::kPhysMapSize - fb.phys_addr.get())
        return lib::unexpected(FramebufferError::NotMapped);

    uint32_t columns = layout->width / kFontCellWidth;
    uint32_t rows = layout->height / kFontCellHeight;
    if (columns > kMaxColumns)
        columns = kMaxColumns;
    if (rows > kMaxRows)
        rows = kMaxRows;
    m_pixels = arch::phys_to_virt(fb.phys_addr).as_ptr<uint8_t>();
    m_renderer.attach(*layout, m_pixels, g_shadow, static_cast<uint16_t>(columns), static_cast<uint16_t>(rows));
    m_renderer.clear_screen();
    m_grid.attach(g_cells, static_cast<uint16_t>(columns), static_cast<uint16_t>(rows));
    m_renderer.sync(m_grid);
    m_present = true;
    return {};
}

void FramebufferConsole::write(const char* s, size_t n)
{
    if (!m_present)
        return;
    ConsoleGuard guard;
    m_grid.write(s, n);
    m_renderer.sync(m_grid);
}

} // namespace drivers
