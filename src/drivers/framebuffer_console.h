#pragma once
// The framebuffer console: the screen of a machine the loader left in a pixel mode
// (always so under UEFI). The terminal is the same drivers::TextGrid the VGA text
// console uses, so both screens show the same cells; FramebufferRenderer turns them
// into pixels through the physmap.
#include <stddef.h>
#include <stdint.h>

#include "drivers/display.h"
#include "drivers/framebuffer_render.h"
#include "drivers/text_grid.h"
#include "lib/expected.h"
#include "lib/log.h"

namespace drivers {

class FramebufferConsole final : public lib::log::Sink {
public:
    // Larger screens use their top-left 2560x1600 pixels: the grid's cells and the
    // renderer's shadow are static (the console starts before the Mana Pool), 2 x 62.5 KiB
    // of .bss at this size.
    static constexpr uint16_t kMaxColumns = 320;
    static constexpr uint16_t kMaxRows = 100;

    constexpr FramebufferConsole() = default;
    FramebufferConsole(const FramebufferConsole&) = delete;
    FramebufferConsole& operator=(const FramebufferConsole&) = delete;

    // Checks the loader's framebuffer, clears it and attaches the grid. On an error
    // nothing is touched and the console stays absent.
    lib::Expected<void, FramebufferError> init(const FramebufferInfo& fb);
    bool present() const { return m_present; }

    void write(const char* s, size_t n) override;
    TextGrid& grid() { return m_grid; }
    const FramebufferRenderer& renderer() const { return m_renderer; }
    // The framebuffer's first pixel, through the physmap (null while absent).
    const uint8_t* pixels() const { return m_pixels; }

private:
    TextGrid m_grid;
    FramebufferRenderer m_renderer;
    uint8_t* m_pixels = nullptr;
    bool m_present = false;
};

// The single framebuffer console object.
FramebufferConsole& framebuffer_console();

} // namespace drivers
