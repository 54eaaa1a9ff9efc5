#pragma once
// What the boot loader told the Heartwood, validated and copied into storage the
// kernel owns. Nothing here points back into the loader's memory, so the PMM may
// reuse the Multiboot2 blob once its range (info_phys_start/end) is released.
//
// Fixed capacity, no heap: a BootInfo is built before the Mana Pool exists. It is
// ~5 KiB, so keep it in static storage (parse_multiboot2_into) rather than on a
// boot stack.
#include <stddef.h>
#include <stdint.h>

#include "drivers/display.h"
#include "lib/span.h"
#include "lib/types.h"

namespace kernel {

enum class MemoryType : uint8_t {
    Available,       // free RAM (Multiboot2 type 1)
    Reserved,        // type 2
    AcpiReclaimable, // type 3: ACPI tables, usable once they have been read
    AcpiNvs,         // type 4: must be preserved across sleep
    Bad,             // type 5: defective RAM
    Other,           // any other value; treated as reserved (see raw_type)
};

const char* memory_type_name(MemoryType type);

struct MemoryRegion {
    PhysicalAddress base;
    uint64_t length = 0;
    MemoryType type = MemoryType::Reserved;
    uint32_t raw_type = 0; // the loader's number, kept for diagnostics

    // Exclusive end. The parser guarantees base + length does not wrap.
    constexpr PhysicalAddress end() const { return base.offset(length); }
    constexpr bool is_usable() const { return type == MemoryType::Available; }
    constexpr bool contains(PhysicalAddress addr) const { return addr >= base && addr < end(); }
};

// The display the loader left (kernel::BootInfo::framebuffer) is described in the drivers' terms,
// since the consoles are what draw on it.
using drivers::ColorField;
using drivers::framebuffer_type_name;
using drivers::FramebufferInfo;
using drivers::FramebufferType;

struct BootModule {
    static constexpr size_t kStringCapacity = 64;

    PhysicalAddress start;
    PhysicalAddress end; // exclusive
    char string[kStringCapacity] = {};

    constexpr uint64_t size() const { return end.get() - start.get(); }
};

// Which Multiboot2 tag the RSDP copy came from.
enum class RsdpSource : uint8_t {
    None = 0,
    AcpiOld = 14, // ACPI 1.0 RSDP (20 bytes)
    AcpiNew = 15, // ACPI 2.0+ RSDP (36 bytes); preferred when both tags exist
};

struct RsdpInfo {
    static constexpr size_t kMaxBytes = 36;

    RsdpSource source = RsdpSource::None;
    uint8_t revision = 0; // the RSDP's own revision byte (0 = ACPI 1.0, 2 = ACPI 2.0+)
    uint8_t length = 0;   // valid bytes in `bytes` (20 or 36)
    // "RSD PTR " signature present and checksum(s) sum to zero. Recorded, not
    // enforced: whether a bad RSDP is fatal is the ACPI code's decision.
    bool checksum_ok = false;
    uint8_t bytes[kMaxBytes] = {};

    constexpr lib::Span<const uint8_t> data() const { return lib::Span<const uint8_t>(bytes, length); }
};

// Iterates only the Available regions of a memory map.
class UsableRegionIterator {
public:
    constexpr UsableRegionIterator(const MemoryRegion* current, const MemoryRegion* end)
        : m_current(current), m_end(end)
    {
        skip_unusable();
    }
    constexpr const MemoryRegion& operator*() const { return *m_current; }
    constexpr const MemoryRegion* operator->() const { return m_current; }
    constexpr UsableRegionIterator& operator++()
    {
        ++m_current;
        skip_unusable();
        return *this;
    }
    constexpr bool operator==(const UsableRegionIterator& other) const { return m_current == other.m_current; }

private:
    constexpr void skip_unusable()
    {
        while (m_current != m_end && !m_current->is_usable())
            ++m_current;
    }

    const MemoryRegion* m_current;
    const MemoryRegion* m_end;
};

struct UsableRegions {
    const MemoryRegion* first;
    const MemoryRegion* last; // one past the end of the whole map
    constexpr UsableRegionIterator begin() const { return UsableRegionIterator(first, last); }
    constexpr UsableRegionIterator end() const { return UsableRegionIterator(last, last); }
};

struct BootInfo {
    static constexpr size_t kMaxMemoryRegions = 128;
    static constexpr size_t kMaxModules = 16;
    static constexpr size_t kCmdlineCapacity = 512;       // longer command lines are rejected
    static constexpr size_t kBootloaderNameCapacity = 64; // longer names are truncated (informational)

    char cmdline[kCmdlineCapacity] = {};
    char bootloader_name[kBootloaderNameCapacity] = {};

    // Sorted by base, pairwise disjoint, no zero-length entries (the parser drops
    // those). Adjacent regions of the same type are kept as the loader gave them.
    MemoryRegion memory_regions[kMaxMemoryRegions] = {};
    size_t memory_region_count = 0;
    uint64_t total_usable_bytes = 0; // sum of the Available lengths
    uint32_t mmap_entry_version = 0;

    bool has_framebuffer = false;
    FramebufferInfo framebuffer;

    BootModule modules[kMaxModules] = {};
    size_t module_count = 0;

    bool has_rsdp = false;
    RsdpInfo rsdp;

    // The Multiboot2 blob itself, [start, end): reserve it until BootInfo is built.
    PhysicalAddress info_phys_start;
    PhysicalAddress info_phys_end;

    // Smaller tags, kept because they are cheap and useful in diagnostics.
    bool has_basic_meminfo = false;
    uint32_t mem_lower_kib = 0; // memory below 1 MiB
    uint32_t mem_upper_kib = 0; // memory from 1 MiB to the first hole
    bool has_load_base = false;
    PhysicalAddress load_base;             // tag 21: where a relocatable image was put
    PhysicalAddress efi_system_table;      // tag 11/12; null when not booted by EFI
    bool efi_boot_services_active = false; // tag 18: ExitBootServices not called
    uint32_t tag_types_seen = 0;           // bit n set when a tag of type n (< 32) was present

    constexpr uint64_t usable_bytes() const { return total_usable_bytes; }
    constexpr lib::Span<const MemoryRegion> memory_map() const
    {
        return lib::Span<const MemoryRegion>(memory_regions, memory_region_count);
    }
    constexpr UsableRegions usable_regions() const
    {
        return UsableRegions{memory_regions, memory_regions + memory_region_count};
    }
    constexpr size_t usable_region_count() const
    {
        size_t n = 0;
        for (const MemoryRegion& r : usable_regions()) {
            (void)r;
            ++n;
        }
        return n;
    }
    // Exclusive end of the highest Available region (0 when there is none).
    constexpr PhysicalAddress usable_end() const
    {
        PhysicalAddress top;
        for (const MemoryRegion& r : usable_regions())
            top = r.end(); // sorted, so the last one wins
        return top;
    }
    // The region containing `addr`, or nullptr when the map does not cover it.
    constexpr const MemoryRegion* region_containing(PhysicalAddress addr) const
    {
        for (const MemoryRegion& r : memory_map()) {
            if (r.contains(addr))
                return &r;
        }
        return nullptr;
    }
    constexpr lib::Span<const BootModule> boot_modules() const
    {
        return lib::Span<const BootModule>(modules, module_count);
    }
    constexpr bool saw_tag(uint32_t type) const { return type < 32 && (tag_types_seen & (1u << type)) != 0; }
};

enum class BootInfoErrorCode : uint8_t {
    BlobTooSmall,         // fewer than 8 bytes handed to the parser
    MisalignedInfo,       // blob not 8-byte aligned, so no tag can be
    TotalSizeTooSmall,    // total_size below header + end tag
    TotalSizeExceedsBlob, // total_size larger than the bytes available
    TagTooSmall,          // size below the tag header or the tag's fixed layout
    TagPastEnd,           // a tag runs past total_size
    MissingEndTag,
    BadEndTag,    // end tag whose size is not 8
    DuplicateTag, // a second copy of a tag that must be unique
    StringNotTerminated,
    StringTooLong,
    BadMmapEntrySize, // entry_size < 24 or not a multiple of 8
    BadMmapSize,      // tag size is not 16 + n * entry_size
    NoMemoryMap,
    TooManyRegions,
    RegionWraps, // base + length overflows 64 bits
    OverlappingRegions,
    UnsortedRegions,
    NoUsableMemory,
    UnknownFramebufferType,
    BadFramebuffer, // impossible geometry or colour layout
    BadModule,      // mod_start > mod_end
    TooManyModules,
};

const char* boot_info_error_code_name(BootInfoErrorCode code);

struct BootInfoError {
    static constexpr size_t kMessageCapacity = 192;

    BootInfoErrorCode code = BootInfoErrorCode::BlobTooSmall;
    char message[kMessageCapacity] = {}; // always NUL-terminated

    const char* what() const { return message; }
};

// The BootInfo the kernel booted with (defined in main.cpp).
const BootInfo& boot_info();

} // namespace kernel
