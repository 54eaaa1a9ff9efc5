// libFuzzer harness for the Multiboot2 boot-information parser (kernel/multiboot2.h).
//
// The input is the raw blob as a loader would leave it (total_size first); the seeds in
// corpus/multiboot2 are GRUB-shaped BIOS and UEFI blobs. The blob is copied into a buffer of
// exactly its size, so ASan flags any read past it. Checks:
//   * parse_multiboot2_into and parse_multiboot2 agree (same success, same error code and text);
//   * an error has a code and a NUL-terminated message; the same bytes at a misaligned physical
//     address fail with MisalignedInfo (or BlobTooSmall);
//   * on success the BootInfo keeps every promise of boot_info.h: counts within capacity, strings
//     terminated, regions sorted, disjoint, non-empty, non-wrapping, typed as their raw number
//     says, usable total matching the map, modules ordered, framebuffer geometry and colour
//     fields consistent, RSDP copy sized by its source, the blob range recorded.
// Nothing here may panic: bad input must come back as a BootInfoError.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <initializer_list>

#include "kernel/multiboot2.h"
#include "support/fuzz_check.h"

using kernel::BootInfo;
using kernel::BootInfoErrorCode;
using kernel::MemoryType;

namespace {

constexpr uint64_t kInfoPhys = 0x10000;

bool terminated(const char* s, size_t capacity) { return std::memchr(s, '\0', capacity) != nullptr; }

MemoryType type_for(uint32_t raw)
{
    switch (raw) {
    case 1: return MemoryType::Available;
    case 2: return MemoryType::Reserved;
    case 3: return MemoryType::AcpiReclaimable;
    case 4: return MemoryType::AcpiNvs;
    case 5: return MemoryType::Bad;
    default: return MemoryType::Other;
    }
}

void check_info(const BootInfo& info, const uint8_t* blob, size_t size)
{
    uint32_t total = 0;
    std::memcpy(&total, blob, sizeof(total));
    FUZZ_CHECK(total >= 16 && total <= size, "accepted total_size %u of a %zu-byte blob", total, size);
    FUZZ_CHECK(info.info_phys_start.get() == kInfoPhys && info.info_phys_end.get() == kInfoPhys + total,
               "blob range recorded wrongly");

    FUZZ_CHECK(terminated(info.cmdline, BootInfo::kCmdlineCapacity), "cmdline not terminated");
    FUZZ_CHECK(terminated(info.bootloader_name, BootInfo::kBootloaderNameCapacity), "loader name not terminated");

    FUZZ_CHECK(info.memory_region_count >= 1 && info.memory_region_count <= BootInfo::kMaxMemoryRegions,
               "%zu memory regions", info.memory_region_count);
    FUZZ_CHECK(info.saw_tag(6), "success without a memory map tag");
    uint64_t usable = 0;
    for (size_t i = 0; i < info.memory_region_count; ++i) {
        const kernel::MemoryRegion& r = info.memory_regions[i];
        FUZZ_CHECK(r.length > 0, "region %zu is empty", i);
        FUZZ_CHECK(r.base.get() + r.length > r.base.get(), "region %zu wraps", i);
        FUZZ_CHECK(r.type == type_for(r.raw_type), "region %zu: raw type %u kept as %s", i, r.raw_type,
                   kernel::memory_type_name(r.type));
        if (i > 0) {
            const kernel::MemoryRegion& prev = info.memory_regions[i - 1];
            FUZZ_CHECK(prev.base < r.base && prev.end() <= r.base, "regions %zu and %zu unsorted or overlapping", i - 1,
                       i);
        }
        if (r.is_usable()) {
            FUZZ_CHECK(usable + r.length >= usable, "usable total overflows");
            usable += r.length;
        }
    }
    FUZZ_CHECK(usable == info.total_usable_bytes && usable > 0, "usable bytes %llu, map says %llu",
               static_cast<unsigned long long>(info.total_usable_bytes), static_cast<unsigned long long>(usable));
    FUZZ_CHECK(info.usable_region_count() >= 1, "no usable region iterated");
    for (const kernel::MemoryRegion& r : info.usable_regions())
        FUZZ_CHECK(info.region_containing(r.base) == &r, "region_containing disagrees with the map");

    FUZZ_CHECK(info.module_count <= BootInfo::kMaxModules, "%zu modules", info.module_count);
    for (const kernel::BootModule& m : info.boot_modules()) {
        FUZZ_CHECK(m.start <= m.end, "module ends before it starts");
        FUZZ_CHECK(terminated(m.string, kernel::BootModule::kStringCapacity), "module string not terminated");
    }

    if (info.has_framebuffer) {
        const kernel::FramebufferInfo& fb = info.framebuffer;
        FUZZ_CHECK(static_cast<unsigned>(fb.type) <= 2, "framebuffer type %u", static_cast<unsigned>(fb.type));
        FUZZ_CHECK(fb.width > 0 && fb.height > 0 && fb.bpp > 0, "empty framebuffer accepted");
        FUZZ_CHECK(uint64_t{fb.pitch} * 8 >= uint64_t{fb.width} * fb.bpp, "pitch shorter than a line");
        FUZZ_CHECK(!fb.phys_addr.is_null() && fb.phys_addr.get() + fb.size_bytes() >= fb.phys_addr.get(),
                   "framebuffer address null or wrapping");
        if (fb.type == kernel::FramebufferType::Rgb) {
            for (const kernel::ColorField* f : {&fb.red, &fb.green, &fb.blue})
                FUZZ_CHECK(unsigned{f->position} + f->size <= fb.bpp, "colour field outside the pixel");
        }
        FUZZ_CHECK(info.saw_tag(8), "framebuffer without its tag");
    }

    if (info.has_rsdp) {
        const kernel::RsdpInfo& rsdp = info.rsdp;
        FUZZ_CHECK((rsdp.source == kernel::RsdpSource::AcpiOld && rsdp.length == 20) ||
                       (rsdp.source == kernel::RsdpSource::AcpiNew && rsdp.length == 36),
                   "RSDP from tag %u with %u bytes", static_cast<unsigned>(rsdp.source), rsdp.length);
        FUZZ_CHECK(info.saw_tag(static_cast<uint32_t>(rsdp.source)), "RSDP without its tag");
        if (rsdp.source == kernel::RsdpSource::AcpiOld)
            FUZZ_CHECK(!info.saw_tag(15), "the ACPI 2.0 RSDP was present but the 1.0 copy kept");
    } else {
        FUZZ_CHECK(info.rsdp.source == kernel::RsdpSource::None && !info.saw_tag(14) && !info.saw_tag(15),
                   "an RSDP tag was seen but none kept");
    }
}

void check_error(const kernel::BootInfoError& error)
{
    FUZZ_CHECK(terminated(error.message, kernel::BootInfoError::kMessageCapacity), "error message not terminated");
    FUZZ_CHECK(error.message[0] != '\0', "error %s without a message", kernel::boot_info_error_code_name(error.code));
    FUZZ_CHECK(static_cast<unsigned>(error.code) <= static_cast<unsigned>(BootInfoErrorCode::TooManyModules),
               "error code %u", static_cast<unsigned>(error.code));
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size)
{
    // Exactly `size` bytes on the heap (malloc aligns to 16, as the loader aligns to 8).
    auto* blob = static_cast<uint8_t*>(std::malloc(size == 0 ? 1 : size));
    if (size != 0)
        std::memcpy(blob, data, size);
    const lib::Span<const uint8_t> span(blob, size);

    static BootInfo info; // ~5 KiB: static, as the kernel keeps it
    auto into = kernel::parse_multiboot2_into(info, span, kInfoPhys);
    auto by_value = kernel::parse_multiboot2(span, kInfoPhys);
    FUZZ_CHECK(into.has_value() == by_value.has_value(), "the two entry points disagree on success");
    if (into) {
        check_info(info, blob, size);
        const BootInfo& other = *by_value;
        FUZZ_CHECK(other.memory_region_count == info.memory_region_count && other.module_count == info.module_count &&
                       other.total_usable_bytes == info.total_usable_bytes &&
                       other.tag_types_seen == info.tag_types_seen && std::strcmp(other.cmdline, info.cmdline) == 0 &&
                       other.has_framebuffer == info.has_framebuffer && other.has_rsdp == info.has_rsdp,
                   "the two entry points built different BootInfos");
        for (size_t i = 0; i < info.memory_region_count; ++i)
            FUZZ_CHECK(other.memory_regions[i].base == info.memory_regions[i].base &&
                           other.memory_regions[i].length == info.memory_regions[i].length,
                       "region %zu differs between the entry points", i);
    } else {
        check_error(into.error());
        FUZZ_CHECK(into.error().code == by_value.error().code &&
                       std::strcmp(into.error().message, by_value.error().message) == 0,
                   "the two entry points report different errors");
    }

    // The same bytes at an address that is not 8-byte aligned are refused outright.
    auto misaligned = kernel::parse_multiboot2_into(info, span, kInfoPhys + 4);
    FUZZ_CHECK(!misaligned &&
                   misaligned.error().code ==
                       (size < 8 ? BootInfoErrorCode::BlobTooSmall : BootInfoErrorCode::MisalignedInfo),
               "misaligned blob: %s", misaligned ? "accepted" : misaligned.error().message);
    std::free(blob);
    return 0;
}
