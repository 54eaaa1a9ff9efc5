// Multiboot2 boot information parser. Layouts follow the Multiboot2
// specification, section 3.6 "Boot information"; where the prose and GRUB's
// multiboot2.h disagree (the framebuffer tag), GRUB's layout wins because GRUB
// is what writes the bytes.
#include "kernel/multiboot2.h"

#include "lib/format.h"
#include "lib/string.h"
#include "lib/utility.h"

namespace kernel {

const char* memory_type_name(MemoryType type)
{
    switch (type) {
    case MemoryType::Available: return "available";
    case MemoryType::Reserved: return "reserved";
    case MemoryType::AcpiReclaimable: return "ACPI reclaimable";
    case MemoryType::AcpiNvs: return "ACPI NVS";
    case MemoryType::Bad: return "bad";
    case MemoryType::Other: return "other";
    }
    return "?";
}

const char* boot_info_error_code_name(BootInfoErrorCode code)
{
    switch (code) {
    case BootInfoErrorCode::BlobTooSmall: return "BlobTooSmall";
    case BootInfoErrorCode::MisalignedInfo: return "MisalignedInfo";
    case BootInfoErrorCode::TotalSizeTooSmall: return "TotalSizeTooSmall";
    case BootInfoErrorCode::TotalSizeExceedsBlob: return "TotalSizeExceedsBlob";
    case BootInfoErrorCode::TagTooSmall: return "TagTooSmall";
    case BootInfoErrorCode::TagPastEnd: return "TagPastEnd";
    case BootInfoErrorCode::MissingEndTag: return "MissingEndTag";
    case BootInfoErrorCode::BadEndTag: return "BadEndTag";
    case BootInfoErrorCode::DuplicateTag: return "DuplicateTag";
    case BootInfoErrorCode::StringNotTerminated: return "StringNotTerminated";
    case BootInfoErrorCode::StringTooLong: return "StringTooLong";
    case BootInfoErrorCode::BadMmapEntrySize: return "BadMmapEntrySize";
    case BootInfoErrorCode::BadMmapSize: return "BadMmapSize";
    case BootInfoErrorCode::NoMemoryMap: return "NoMemoryMap";
    case BootInfoErrorCode::TooManyRegions: return "TooManyRegions";
    case BootInfoErrorCode::RegionWraps: return "RegionWraps";
    case BootInfoErrorCode::OverlappingRegions: return "OverlappingRegions";
    case BootInfoErrorCode::UnsortedRegions: return "UnsortedRegions";
    case BootInfoErrorCode::NoUsableMemory: return "NoUsableMemory";
    case BootInfoErrorCode::UnknownFramebufferType: return "UnknownFramebufferType";
    case BootInfoErrorCode::BadFramebuffer: return "BadFramebuffer";
    case BootInfoErrorCode::BadModule: return "BadModule";
    case BootInfoErrorCode::TooManyModules: return "TooManyModules";
    }
    return "?";
}

const char* multiboot2_tag_name(uint32_t type)
{
    static constexpr const char* kNames[] = {
        "end",    "cmdline",  "boot loader name", "module",         "basic meminfo", "bootdev",
        "mmap",   "vbe",      "framebuffer",      "elf sections",   "apm",           "efi32",
        "efi64",  "smbios",   "acpi old rsdp",    "acpi new rsdp",  "network",       "efi mmap",
        "efi bs", "efi32 ih", "efi64 ih",         "load base addr",
    };
    return type < sizeof(kNames) / sizeof(kNames[0]) ? kNames[type] : "unknown";
}

namespace {

using Status = lib::Expected<void, BootInfoError>;

constexpr uint32_t kHeaderSize = 8;    // total_size + reserved
constexpr uint32_t kTagHeaderSize = 8; // type + size
constexpr uint32_t kEndTagSize = 8;
constexpr uint32_t kTagAlignment = 8;
constexpr uint32_t kMmapHeaderSize = 16;   // tag header + entry_size + entry_version
constexpr uint32_t kMmapMinEntrySize = 24; // base, length, type, reserved
constexpr uint32_t kModuleHeaderSize = 16; // tag header + mod_start + mod_end
// GRUB's multiboot_tag_framebuffer_common: bpp and type are u8, then a u16
// reserved (the spec's prose says u8), so colour info starts at 32.
constexpr uint32_t kFramebufferCommonSize = 32;
constexpr uint32_t kFramebufferRgbSize = kFramebufferCommonSize + 6;
constexpr uint32_t kFramebufferIndexedSize = kFramebufferCommonSize + 2; // + 3 bytes per palette colour
constexpr uint32_t kRsdpV1Size = 20;
constexpr uint32_t kRsdpV2Size = 36;

static_assert(RsdpInfo::kMaxBytes == kRsdpV2Size);

// Smallest size each known tag can have, from its fixed fields. Strings add at
// least their NUL, which the string check reports more precisely.
constexpr uint32_t kMinTagSize[] = {
    kEndTagSize,                  // 0 end
    kTagHeaderSize,               // 1 cmdline
    kTagHeaderSize,               // 2 boot loader name
    kModuleHeaderSize,            // 3 module
    16,                           // 4 basic meminfo: mem_lower, mem_upper
    20,                           // 5 bootdev: biosdev, partition, sub_partition
    kMmapHeaderSize,              // 6 mmap
    16 + 512 + 256,               // 7 vbe: mode/interface fields, control info, mode info
    kFramebufferCommonSize,       // 8 framebuffer
    16,                           // 9 elf sections (spec prose; GRUB writes 20)
    28,                           // 10 apm
    12,                           // 11 efi32 system table pointer
    16,                           // 12 efi64 system table pointer
    16,                           // 13 smbios: major, minor, 6 reserved
    kTagHeaderSize + kRsdpV1Size, // 14 acpi old
    kTagHeaderSize + kRsdpV2Size, // 15 acpi new
    kTagHeaderSize,               // 16 network (DHCP ACK follows)
    16,                           // 17 efi mmap: descriptor_size, descriptor_version
    kTagHeaderSize,               // 18 efi boot services not terminated
    12,                           // 19 efi32 image handle
    16,                           // 20 efi64 image handle
    12,                           // 21 load base addr
};
constexpr uint32_t kKnownTagTypes = sizeof(kMinTagSize) / sizeof(kMinTagSize[0]);

// Tags the parser stores: a second copy would leave it guessing which is right.
constexpr uint32_t tag_bit(Multiboot2Tag t) { return 1u << static_cast<uint32_t>(t); }
constexpr uint32_t kUniqueTags = tag_bit(Multiboot2Tag::Cmdline) | tag_bit(Multiboot2Tag::BootloaderName) |
    tag_bit(Multiboot2Tag::BasicMeminfo) | tag_bit(Multiboot2Tag::Mmap) | tag_bit(Multiboot2Tag::Framebuffer) |
    tag_bit(Multiboot2Tag::Efi32) | tag_bit(Multiboot2Tag::Efi64) | tag_bit(Multiboot2Tag::AcpiOld) |
    tag_bit(Multiboot2Tag::AcpiNew) | tag_bit(Multiboot2Tag::LoadBaseAddr);

// Little-endian loads from byte pointers: the blob has no alignment promise
// beyond 8 bytes per tag, and these compile to plain loads on x86.
constexpr uint16_t read_u16(const uint8_t* p) { return static_cast<uint16_t>(p[0] | (p[1] << 8)); }
constexpr uint32_t read_u32(const uint8_t* p)
{
    return static_cast<uint32_t>(p[0]) | (static_cast<uint32_t>(p[1]) << 8) | (static_cast<uint32_t>(p[2]) << 16) |
        (static_cast<uint32_t>(p[3]) << 24);
}
constexpr uint64_t read_u64(const uint8_t* p)
{
    return static_cast<uint64_t>(read_u32(p)) | (static_cast<uint64_t>(read_u32(p + 4)) << 32);
}

MemoryType memory_type_from_multiboot(uint32_t raw)
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

struct Tag {
    uint32_t index; // 0-based position among the tags
    uint32_t type;
    uint32_t size;       // as declared, without padding
    uint32_t offset;     // from the start of the blob
    const uint8_t* data; // the whole tag, header included
};

template <typename... Args>
lib::Unexpected<BootInfoError> fail(BootInfoErrorCode code, const char* fmt, const Args&... args)
{
    BootInfoError error;
    error.code = code;
    lib::format(error.message, sizeof(error.message), fmt, args...);
    return lib::Unexpected<BootInfoError>(error);
}

// Prefixes the message with where the bad tag sits, so a panic names it exactly.
template <typename... Args>
lib::Unexpected<BootInfoError> tag_fail(BootInfoErrorCode code, const Tag& tag, const char* fmt, const Args&... args)
{
    BootInfoError error;
    error.code = code;
    const size_t cap = sizeof(error.message);
    const size_t n = lib::format(error.message, cap, "tag #{} (type {}, {}) at offset {:#x}: ", tag.index, tag.type,
                                 multiboot2_tag_name(tag.type), tag.offset);
    if (n + 1 < cap)
        lib::format(error.message + n, cap - n, fmt, args...);
    return lib::Unexpected<BootInfoError>(error);
}

bool rsdp_checksum_ok(const uint8_t* bytes, uint32_t length)
{
    static constexpr char kSignature[] = "RSD PTR ";
    for (uint32_t i = 0; i < 8; ++i) {
        if (bytes[i] != static_cast<uint8_t>(kSignature[i]))
            return false;
    }
    // ACPI 1.0 checksum covers the first 20 bytes; 2.0 adds one over all 36.
    uint8_t sum = 0;
    for (uint32_t i = 0; i < kRsdpV1Size; ++i)
        sum = static_cast<uint8_t>(sum + bytes[i]);
    if (sum != 0)
        return false;
    if (length >= kRsdpV2Size) {
        for (uint32_t i = kRsdpV1Size; i < kRsdpV2Size; ++i)
            sum = static_cast<uint8_t>(sum + bytes[i]);
        if (sum != 0)
            return false;
    }
    return true;
}

void reset(BootInfo& info)
{
    for (char& c : info.cmdline)
        c = '\0';
    for (char& c : info.bootloader_name)
        c = '\0';
    for (MemoryRegion& r : info.memory_regions)
        r = MemoryRegion{};
    info.memory_region_count = 0;
    info.total_usable_bytes = 0;
    info.mmap_entry_version = 0;
    info.has_framebuffer = false;
    info.framebuffer = FramebufferInfo{};
    for (BootModule& m : info.modules)
        m = BootModule{};
    info.module_count = 0;
    info.has_rsdp = false;
    info.rsdp = RsdpInfo{};
    info.info_phys_start = PhysicalAddress();
    info.info_phys_end = PhysicalAddress();
    info.has_basic_meminfo = false;
    info.mem_lower_kib = 0;
    info.mem_upper_kib = 0;
    info.has_load_base = false;
    info.load_base = PhysicalAddress();
    info.efi_system_table = PhysicalAddress();
    info.efi_boot_services_active = false;
    info.tag_types_seen = 0;
}

// One pass over the blob. With `out == nullptr` it only validates, which lets
// parse_multiboot2 decide success before it builds a BootInfo in its result.
class Parser {
public:
    Parser(lib::Span<const uint8_t> blob, BootInfo* out) : m_blob(blob), m_out(out) { }

    Status run(uint64_t blob_phys)
    {
        if (m_out)
            reset(*m_out);
        if (m_blob.size() < kHeaderSize)
            return fail(BootInfoErrorCode::BlobTooSmall,
                        "boot information is {} bytes; its fixed header alone needs {}", m_blob.size(), kHeaderSize);
        if (blob_phys % kTagAlignment != 0)
            return fail(BootInfoErrorCode::MisalignedInfo,
                        "misaligned tag: boot information at phys {:#x} is not 8-byte aligned", blob_phys);
        const uint8_t* base = m_blob.data();
        const uint32_t total = read_u32(base);
        if (total < kHeaderSize + kEndTagSize)
            return fail(BootInfoErrorCode::TotalSizeTooSmall,
                        "total_size {:#x} smaller than header plus end tag ({:#x})", total, kHeaderSize + kEndTagSize);
        if (total > m_blob.size())
            return fail(BootInfoErrorCode::TotalSizeExceedsBlob,
                        "total_size {:#x} exceeds the {:#x} bytes of boot information available", total, m_blob.size());
        if (m_out) {
            m_out->info_phys_start = PhysicalAddress(blob_phys);
            m_out->info_phys_end = PhysicalAddress(blob_phys + total);
        }

        uint32_t offset = kHeaderSize;
        for (uint32_t index = 0;; ++index) {
            if (total - offset < kTagHeaderSize)
                return fail(BootInfoErrorCode::MissingEndTag,
                            "missing end tag: {} tag(s) stop at offset {:#x} with no type-0 tag (total_size {:#x})",
                            index, offset, total);
            const Tag tag{index, read_u32(base + offset), read_u32(base + offset + 4), offset, base + offset};
            if (tag.size < kTagHeaderSize)
                return tag_fail(BootInfoErrorCode::TagTooSmall, tag, "size {} is smaller than the {}-byte tag header",
                                tag.size, kTagHeaderSize);
            if (tag.size > total - offset)
                return tag_fail(BootInfoErrorCode::TagPastEnd, tag,
                                "size {} runs past the end of the info (total_size {:#x})", tag.size, total);
            if (tag.type < 32)
                m_seen |= 1u << tag.type;
            if (tag.type == static_cast<uint32_t>(Multiboot2Tag::End)) {
                if (tag.size != kEndTagSize)
                    return tag_fail(BootInfoErrorCode::BadEndTag, tag, "end tag size {} (expected {})", tag.size,
                                    kEndTagSize);
                break; // bytes after the end tag are not ours to judge
            }
            if (auto status = parse_tag(tag); !status)
                return status;
            // Tags start 8-byte aligned; `size` excludes the padding. total <= 4 GiB
            // and offset + size <= total, so this cannot overflow past 2^32 + 7.
            const uint64_t next = lib::align_up(static_cast<uint64_t>(offset) + tag.size, uint64_t{kTagAlignment});
            if (next >= total)
                return fail(BootInfoErrorCode::MissingEndTag,
                            "missing end tag: {} tag(s) stop at offset {:#x} with no type-0 tag (total_size {:#x})",
                            index + 1, next, total);
            offset = static_cast<uint32_t>(next);
        }
        return finish();
    }

private:
    Status finish()
    {
        if (!m_saw_mmap)
            return fail(BootInfoErrorCode::NoMemoryMap,
                        "no memory map tag (type 6): the Heartwood cannot tell RAM from holes");
        if (m_usable == 0)
            return fail(BootInfoErrorCode::NoUsableMemory,
                        "no usable memory: none of the {} memory map region(s) is available (type 1)", m_region_count);
        if (m_out) {
            m_out->memory_region_count = m_region_count;
            m_out->total_usable_bytes = m_usable;
            m_out->module_count = m_module_count;
            m_out->tag_types_seen = m_seen;
        }
        return {};
    }

    Status parse_tag(const Tag& tag)
    {
        if (tag.type < kKnownTagTypes && tag.size < kMinTagSize[tag.type])
            return tag_fail(BootInfoErrorCode::TagTooSmall, tag, "size {} is smaller than the {} bytes this tag needs",
                            tag.size, kMinTagSize[tag.type]);
        if (tag.type < 32 && (kUniqueTags & (1u << tag.type)) != 0) {
            if (m_unique_seen & (1u << tag.type))
                return tag_fail(BootInfoErrorCode::DuplicateTag, tag, "duplicate {} tag; only one is allowed",
                                multiboot2_tag_name(tag.type));
            m_unique_seen |= 1u << tag.type;
        }
        const uint8_t* d = tag.data;
        switch (static_cast<Multiboot2Tag>(tag.type)) {
        case Multiboot2Tag::Cmdline: return parse_cmdline(tag);
        case Multiboot2Tag::BootloaderName: return parse_bootloader_name(tag);
        case Multiboot2Tag::Module: return parse_module(tag);
        case Multiboot2Tag::Mmap: return parse_mmap(tag);
        case Multiboot2Tag::Framebuffer: return parse_framebuffer(tag);
        case Multiboot2Tag::AcpiOld:
        case Multiboot2Tag::AcpiNew: return parse_rsdp(tag);
        case Multiboot2Tag::BasicMeminfo:
            if (m_out) {
                m_out->has_basic_meminfo = true;
                m_out->mem_lower_kib = read_u32(d + 8);
                m_out->mem_upper_kib = read_u32(d + 12);
            }
            return {};
        case Multiboot2Tag::Efi32:
            // A 64-bit pointer, when also given, is the one a 64-bit kernel wants.
            if (m_out && !(m_unique_seen & tag_bit(Multiboot2Tag::Efi64)))
                m_out->efi_system_table = PhysicalAddress(read_u32(d + 8));
            return {};
        case Multiboot2Tag::Efi64:
            if (m_out)
                m_out->efi_system_table = PhysicalAddress(read_u64(d + 8));
            return {};
        case Multiboot2Tag::EfiBs:
            if (m_out)
                m_out->efi_boot_services_active = true;
            return {};
        case Multiboot2Tag::LoadBaseAddr:
            if (m_out) {
                m_out->has_load_base = true;
                m_out->load_base = PhysicalAddress(read_u32(d + 8));
            }
            return {};
        default: return {}; // validated above where the layout is known; otherwise skipped
        }
    }

    // Finds the string's NUL within the tag; `what` names it in the message.
    lib::Expected<lib::StringView, BootInfoError> tag_string(const Tag& tag, uint32_t start, const char* what)
    {
        const char* s = reinterpret_cast<const char*>(tag.data + start);
        const uint32_t room = tag.size - start;
        for (uint32_t i = 0; i < room; ++i) {
            if (s[i] == '\0')
                return lib::StringView(s, i);
        }
        return tag_fail(BootInfoErrorCode::StringNotTerminated, tag, "{} not NUL-terminated within its {} byte(s)",
                        what, room);
    }

    Status parse_cmdline(const Tag& tag)
    {
        auto s = tag_string(tag, kTagHeaderSize, "cmdline");
        if (!s)
            return lib::unexpected(s.error());
        if (s->size() >= BootInfo::kCmdlineCapacity)
            return tag_fail(BootInfoErrorCode::StringTooLong, tag,
                            "cmdline is {} bytes; the Heartwood keeps at most {}", s->size(),
                            BootInfo::kCmdlineCapacity - 1);
        if (m_out)
            lib::copy_string(m_out->cmdline, sizeof(m_out->cmdline), *s);
        return {};
    }

    Status parse_bootloader_name(const Tag& tag)
    {
        auto s = tag_string(tag, kTagHeaderSize, "boot loader name");
        if (!s)
            return lib::unexpected(s.error());
        if (m_out) // informational only, so a long name is truncated rather than fatal
            lib::copy_string(m_out->bootloader_name, sizeof(m_out->bootloader_name), *s);
        return {};
    }

    Status parse_module(const Tag& tag)
    {
        const uint32_t start = read_u32(tag.data + 8);
        const uint32_t end = read_u32(tag.data + 12);
        auto s = tag_string(tag, kModuleHeaderSize, "module string");
        if (!s)
            return lib::unexpected(s.error());
        if (start > end)
            return tag_fail(BootInfoErrorCode::BadModule, tag, "module {} [{:#x}..{:#x}): mod_start > mod_end",
                            m_module_count, start, end);
        if (m_module_count >= BootInfo::kMaxModules)
            return tag_fail(BootInfoErrorCode::TooManyModules, tag, "too many modules: BootInfo holds at most {}",
                            BootInfo::kMaxModules);
        if (s->size() >= BootModule::kStringCapacity)
            return tag_fail(BootInfoErrorCode::StringTooLong, tag, "module {} string is {} bytes; at most {} are kept",
                            m_module_count, s->size(), BootModule::kStringCapacity - 1);
        if (m_out) {
            BootModule& m = m_out->modules[m_module_count];
            m.start = PhysicalAddress(start);
            m.end = PhysicalAddress(end);
            lib::copy_string(m.string, sizeof(m.string), *s);
        }
        ++m_module_count;
        return {};
    }

    Status parse_mmap(const Tag& tag)
    {
        m_saw_mmap = true;
        const uint32_t entry_size = read_u32(tag.data + 8);
        const uint32_t version = read_u32(tag.data + 12);
        if (entry_size < kMmapMinEntrySize)
            return tag_fail(BootInfoErrorCode::BadMmapEntrySize, tag, "entry_size {} < {}", entry_size,
                            kMmapMinEntrySize);
        if (entry_size % 8 != 0)
            return tag_fail(BootInfoErrorCode::BadMmapEntrySize, tag, "entry_size {} is not a multiple of 8",
                            entry_size);
        const uint32_t bytes = tag.size - kMmapHeaderSize;
        if (bytes % entry_size != 0)
            return tag_fail(BootInfoErrorCode::BadMmapSize, tag,
                            "{} bytes of entries is not a whole number of {}-byte entries", bytes, entry_size);
        // Later entry versions only append fields (the spec promises backward
        // compatibility), so the first 24 bytes keep their meaning.
        if (m_out)
            m_out->mmap_entry_version = version;

        const uint32_t count = bytes / entry_size;
        for (uint32_t i = 0; i < count; ++i) {
            const uint8_t* e = tag.data + kMmapHeaderSize + static_cast<size_t>(i) * entry_size;
            const uint64_t base = read_u64(e);
            const uint64_t length = read_u64(e + 8);
            const uint32_t raw_type = read_u32(e + 16);
            if (length == 0)
                continue; // some firmware reports empty ranges; they describe nothing
            uint64_t end = 0;
            if (__builtin_add_overflow(base, length, &end))
                return fail(BootInfoErrorCode::RegionWraps,
                            "memory region {} [{:#x}, +{:#x}) wraps past the top of the 64-bit address space", i, base,
                            length);
            if (m_region_count > 0) {
                const uint64_t prev_base = m_prev.base.get();
                const uint64_t prev_end = m_prev.end().get();
                // Overlap first: an overlapping entry is usually also out of order,
                // and the overlap is the more telling fact.
                if (base < prev_end && prev_base < end)
                    return fail(BootInfoErrorCode::OverlappingRegions,
                                "memory regions {} and {} overlap: [{:#x}..{:#x}) and [{:#x}..{:#x})", m_prev_index, i,
                                prev_base, prev_end, base, end);
                if (base < prev_base)
                    return fail(BootInfoErrorCode::UnsortedRegions,
                                "unsorted memory map: region {} base {:#x} < region {} base {:#x}", i, base,
                                m_prev_index, prev_base);
            }
            MemoryRegion region;
            region.base = PhysicalAddress(base);
            region.length = length;
            region.type = memory_type_from_multiboot(raw_type);
            region.raw_type = raw_type;
            if (m_region_count >= BootInfo::kMaxMemoryRegions)
                return fail(BootInfoErrorCode::TooManyRegions,
                            "too many regions: memory map entry {} would be region {}; BootInfo holds at most {}", i,
                            m_region_count + 1, BootInfo::kMaxMemoryRegions);
            if (m_out)
                m_out->memory_regions[m_region_count] = region;
            ++m_region_count;
            if (region.is_usable())
                m_usable += length; // disjoint ranges below 2^64: the sum cannot overflow
            m_prev = region;
            m_prev_index = i;
        }
        return {};
    }

    Status parse_framebuffer(const Tag& tag)
    {
        const uint8_t* d = tag.data;
        FramebufferInfo fb;
        fb.phys_addr = PhysicalAddress(read_u64(d + 8));
        fb.pitch = read_u32(d + 16);
        fb.width = read_u32(d + 20);
        fb.height = read_u32(d + 24);
        fb.bpp = d[28];
        const unsigned raw_type = d[29];
        const unsigned bpp = fb.bpp;
        if (raw_type > static_cast<unsigned>(FramebufferType::EgaText))
            return tag_fail(BootInfoErrorCode::UnknownFramebufferType, tag,
                            "unknown framebuffer type {} (expected 0 indexed, 1 RGB or 2 EGA text)", raw_type);
        fb.type = static_cast<FramebufferType>(raw_type);
        if (fb.width == 0 || fb.height == 0 || bpp == 0)
            return tag_fail(BootInfoErrorCode::BadFramebuffer, tag, "empty framebuffer: {}x{} at {} bpp", fb.width,
                            fb.height, bpp);
        if (static_cast<uint64_t>(fb.pitch) * 8 < static_cast<uint64_t>(fb.width) * bpp)
            return tag_fail(BootInfoErrorCode::BadFramebuffer, tag,
                            "pitch {} bytes is shorter than a line of {} at {} bpp", fb.pitch, fb.width, bpp);
        uint64_t fb_end = 0;
        if (fb.phys_addr.is_null() || __builtin_add_overflow(fb.phys_addr.get(), fb.size_bytes(), &fb_end))
            return tag_fail(BootInfoErrorCode::BadFramebuffer, tag, "framebuffer address {:#x} cannot hold {} bytes",
                            fb.phys_addr.get(), fb.size_bytes());
        if (fb.type == FramebufferType::Rgb) {
            if (tag.size < kFramebufferRgbSize)
                return tag_fail(BootInfoErrorCode::TagTooSmall, tag,
                                "size {} is smaller than the {} bytes an RGB framebuffer tag needs", tag.size,
                                kFramebufferRgbSize);
            ColorField* fields[] = {&fb.red, &fb.green, &fb.blue};
            static constexpr const char* kFieldNames[] = {"red", "green", "blue"};
            for (unsigned i = 0; i < 3; ++i) {
                fields[i]->position = d[kFramebufferCommonSize + 2 * i];
                fields[i]->size = d[kFramebufferCommonSize + 2 * i + 1];
                const unsigned top = static_cast<unsigned>(fields[i]->position) + fields[i]->size;
                if (top > bpp)
                    return tag_fail(BootInfoErrorCode::BadFramebuffer, tag,
                                    "{} field at bit {} width {} does not fit in {} bpp", kFieldNames[i],
                                    static_cast<unsigned>(fields[i]->position), static_cast<unsigned>(fields[i]->size),
                                    bpp);
            }
        } else if (fb.type == FramebufferType::Indexed) {
            if (tag.size < kFramebufferIndexedSize)
                return tag_fail(BootInfoErrorCode::TagTooSmall, tag,
                                "size {} is smaller than the {} bytes an indexed framebuffer tag needs", tag.size,
                                kFramebufferIndexedSize);
            fb.palette_colors = read_u16(d + kFramebufferCommonSize);
            const uint32_t needed = kFramebufferIndexedSize + 3u * fb.palette_colors;
            if (needed > tag.size)
                return tag_fail(BootInfoErrorCode::BadFramebuffer, tag,
                                "palette of {} colours needs {} bytes but the tag has {}",
                                static_cast<unsigned>(fb.palette_colors), needed, tag.size);
        }
        if (m_out) {
            m_out->has_framebuffer = true;
            m_out->framebuffer = fb;
        }
        return {};
    }

    Status parse_rsdp(const Tag& tag)
    {
        const bool is_new = tag.type == static_cast<uint32_t>(Multiboot2Tag::AcpiNew);
        const uint32_t length = is_new ? kRsdpV2Size : kRsdpV1Size;
        if (!m_out)
            return {};
        // GRUB passes both copies when the firmware has ACPI 2.0; keep the newer.
        if (!is_new && m_out->rsdp.source == RsdpSource::AcpiNew)
            return {};
        RsdpInfo& rsdp = m_out->rsdp;
        const uint8_t* bytes = tag.data + kTagHeaderSize;
        for (uint32_t i = 0; i < RsdpInfo::kMaxBytes; ++i)
            rsdp.bytes[i] = i < length ? bytes[i] : 0;
        rsdp.length = static_cast<uint8_t>(length);
        rsdp.revision = bytes[15];
        rsdp.source = is_new ? RsdpSource::AcpiNew : RsdpSource::AcpiOld;
        rsdp.checksum_ok = rsdp_checksum_ok(bytes, length);
        m_out->has_rsdp = true;
        return {};
    }

    lib::Span<const uint8_t> m_blob;
    BootInfo* m_out;
    uint32_t m_seen = 0;        // every tag type < 32 that appeared
    uint32_t m_unique_seen = 0; // the kUniqueTags that appeared
    bool m_saw_mmap = false;
    size_t m_region_count = 0;
    size_t m_module_count = 0;
    uint64_t m_usable = 0;
    MemoryRegion m_prev;       // the last stored region, for the order checks
    uint32_t m_prev_index = 0; // its entry index in the mmap tag
};

// One return of one named object: the BootInfo is built in the caller's result.
lib::Expected<BootInfo, BootInfoError> build_validated(lib::Span<const uint8_t> blob, uint64_t blob_phys)
{
    lib::Expected<BootInfo, BootInfoError> result; // value-initialised in place
    (void)Parser(blob, &*result).run(blob_phys);   // validated by the caller; cannot fail
    return result;
}

} // namespace

lib::Expected<BootInfo, BootInfoError> parse_multiboot2(lib::Span<const uint8_t> blob, uint64_t blob_phys)
{
    // Validate first, then build: switching a built Expected to an error would
    // need a BootInfo-sized temporary on the stack.
    Status status = Parser(blob, nullptr).run(blob_phys);
    if (!status)
        return lib::unexpected(status.error());
    return build_validated(blob, blob_phys);
}

lib::Expected<void, BootInfoError> parse_multiboot2_into(BootInfo& out, lib::Span<const uint8_t> blob,
                                                         uint64_t blob_phys)
{
    return Parser(blob, &out).run(blob_phys);
}

} // namespace kernel
