#pragma once
// A display as a boot loader hands it over (Multiboot2's framebuffer tag): where it is, its
// geometry and its pixel format. The consoles take this, not the kernel's whole BootInfo, so the
// drivers room needs nothing from the kernel room above it.
#include <stdint.h>

#include "lib/types.h"

namespace drivers {

enum class FramebufferType : uint8_t {
    Indexed = 0, // palette colours
    Rgb = 1,     // direct colour, described by the field positions/sizes
    EgaText = 2, // 16-bit character cells; width/height are in characters
};

constexpr const char* framebuffer_type_name(FramebufferType type)
{
    switch (type) {
    case FramebufferType::Indexed: return "indexed";
    case FramebufferType::Rgb: return "RGB";
    case FramebufferType::EgaText: return "EGA text";
    }
    return "?";
}

struct ColorField {
    uint8_t position = 0; // lowest bit of the field within a pixel
    uint8_t size = 0;     // width of the field in bits
};

struct FramebufferInfo {
    PhysicalAddress phys_addr;
    uint32_t pitch = 0;  // bytes per line (per text row for EgaText)
    uint32_t width = 0;  // pixels, or characters for EgaText
    uint32_t height = 0; // pixels, or characters for EgaText
    uint8_t bpp = 0;
    FramebufferType type = FramebufferType::Rgb;
    ColorField red;              // Rgb only
    ColorField green;            // Rgb only
    ColorField blue;             // Rgb only
    uint16_t palette_colors = 0; // Indexed only (the palette itself is not kept)

    constexpr uint64_t size_bytes() const { return static_cast<uint64_t>(pitch) * height; }
};

} // namespace drivers
