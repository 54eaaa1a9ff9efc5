#pragma once
// Multiboot2 boot information parser (generic: runs unchanged in host tests).
//
// The loader's blob is untrusted input: every size and offset is checked before
// it is read, and a flaw yields a BootInfoError naming the tag, its offset and
// the exact inconsistency. Unknown tag types are skipped, as the spec asks.
#include <stdint.h>

#include "kernel/boot_info.h"
#include "lib/expected.h"
#include "lib/span.h"

namespace kernel {

// EAX at kernel entry when a Multiboot2 loader started us.
inline constexpr uint32_t kMultiboot2BootloaderMagic = 0x36d76289;

enum class Multiboot2Tag : uint32_t {
    End = 0,
    Cmdline = 1,
    BootloaderName = 2,
    Module = 3,
    BasicMeminfo = 4,
    Bootdev = 5,
    Mmap = 6,
    Vbe = 7,
    Framebuffer = 8,
    ElfSections = 9,
    Apm = 10,
    Efi32 = 11,
    Efi64 = 12,
    Smbios = 13,
    AcpiOld = 14,
    AcpiNew = 15,
    Network = 16,
    EfiMmap = 17,
    EfiBs = 18,
    Efi32ImageHandle = 19,
    Efi64ImageHandle = 20,
    LoadBaseAddr = 21,
};

// Short lowercase name of a tag type ("mmap", "acpi new rsdp"); "unknown" otherwise.
const char* multiboot2_tag_name(uint32_t type);

// Parses `blob` (at least total_size bytes, starting at the fixed header) that the
// loader placed at physical `blob_phys`. The BootInfo is returned by value; it is
// built in place (no BootInfo-sized temporaries), but the caller's Expected is
// itself ~5 KiB, so on a small stack prefer parse_multiboot2_into.
lib::Expected<BootInfo, BootInfoError> parse_multiboot2(lib::Span<const uint8_t> blob, uint64_t blob_phys);

// Same validation, writing into caller storage (e.g. a static BootInfo). On error
// `out` holds whatever was parsed before the flaw and must not be used.
lib::Expected<void, BootInfoError> parse_multiboot2_into(BootInfo& out, lib::Span<const uint8_t> blob,
                                                         uint64_t blob_phys);

} // namespace kernel
