// Multiboot2 parser: blobs laid out the way GRUB writes them, then every kind of
// damage the parser promises to name, then random damage it must survive.
#include <catch2/catch.hpp>

#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "kernel/multiboot2.h"

// Catch prints the enum by name rather than as a uint8_t character.
namespace Catch {
template <>
struct StringMaker<kernel::BootInfoErrorCode> {
    static std::string convert(kernel::BootInfoErrorCode code) { return kernel::boot_info_error_code_name(code); }
};
} // namespace Catch

using Catch::Matchers::Contains;
using kernel::BootInfo;
using kernel::BootInfoErrorCode;
using kernel::MemoryType;

namespace {

constexpr uint64_t kInfoPhys = 0x10000;

// Little-endian byte sink for tag payloads.
class Bytes {
public:
    Bytes& u8(uint8_t v)
    {
        m_data.push_back(v);
        return *this;
    }
    Bytes& u16(uint16_t v) { return u8(static_cast<uint8_t>(v)).u8(static_cast<uint8_t>(v >> 8)); }
    Bytes& u32(uint32_t v) { return u16(static_cast<uint16_t>(v)).u16(static_cast<uint16_t>(v >> 16)); }
    Bytes& u64(uint64_t v) { return u32(static_cast<uint32_t>(v)).u32(static_cast<uint32_t>(v >> 32)); }
    // With its NUL unless told otherwise.
    Bytes& str(const std::string& s, bool nul = true)
    {
        m_data.insert(m_data.end(), s.begin(), s.end());
        if (nul)
            m_data.push_back(0);
        return *this;
    }
    Bytes& raw(const std::vector<uint8_t>& v)
    {
        m_data.insert(m_data.end(), v.begin(), v.end());
        return *this;
    }
    const std::vector<uint8_t>& data() const { return m_data; }

private:
    std::vector<uint8_t> m_data;
};

struct Entry {
    uint64_t base;
    uint64_t length;
    uint32_t type;
};

std::vector<uint8_t> rsdp_v1(bool valid_checksum = true)
{
    Bytes b;
    b.str("RSD PTR ", false).u8(0).str("BOCHS ", false).u8(0).u32(0x07fe14d2);
    std::vector<uint8_t> v = b.data();
    uint8_t sum = 0;
    for (uint8_t x : v)
        sum = static_cast<uint8_t>(sum + x);
    v[8] = static_cast<uint8_t>(-sum + (valid_checksum ? 0 : 1));
    return v;
}

std::vector<uint8_t> rsdp_v2()
{
    Bytes b;
    b.str("RSD PTR ", false).u8(0).str("OVMF  ", false).u8(2).u32(0x7fb7e014).u32(36).u64(0x7fb7e0e8).u8(0);
    b.u8(0).u8(0).u8(0);
    std::vector<uint8_t> v = b.data();
    uint8_t sum = 0;
    for (size_t i = 0; i < 20; ++i)
        sum = static_cast<uint8_t>(sum + v[i]);
    v[8] = static_cast<uint8_t>(-sum);
    sum = 0;
    for (uint8_t x : v)
        sum = static_cast<uint8_t>(sum + x);
    v[32] = static_cast<uint8_t>(-sum);
    return v;
}

// Builds an info blob tag by tag, padding each to 8 bytes as GRUB does.
class InfoBuilder {
public:
    InfoBuilder() : m_bytes(Bytes().u32(0).u32(0).data()) { }

    // Appends a tag whose declared size is 8 + payload (or `size_override`); returns its offset.
    size_t tag(uint32_t type, const std::vector<uint8_t>& payload, int64_t size_override = -1)
    {
        const size_t offset = m_bytes.size();
        const uint32_t size =
            size_override >= 0 ? static_cast<uint32_t>(size_override) : static_cast<uint32_t>(8 + payload.size());
        append(Bytes().u32(type).u32(size).raw(payload).data());
        while (m_bytes.size() % 8 != 0)
            m_bytes.push_back(0xcc); // padding need not be zero
        return offset;
    }
    InfoBuilder& cmdline(const std::string& s)
    {
        tag(1, Bytes().str(s).data());
        return *this;
    }
    InfoBuilder& loader(const std::string& s)
    {
        tag(2, Bytes().str(s).data());
        return *this;
    }
    InfoBuilder& module(uint32_t start, uint32_t end, const std::string& s)
    {
        tag(3, Bytes().u32(start).u32(end).str(s).data());
        return *this;
    }
    InfoBuilder& meminfo(uint32_t lower, uint32_t upper)
    {
        tag(4, Bytes().u32(lower).u32(upper).data());
        return *this;
    }
    InfoBuilder& bootdev()
    {
        tag(5, Bytes().u32(0x80).u32(0xffffffff).u32(0xffffffff).data());
        return *this;
    }
    InfoBuilder& mmap(const std::vector<Entry>& entries, uint32_t entry_size = 24, uint32_t version = 0)
    {
        Bytes b;
        b.u32(entry_size).u32(version);
        for (const Entry& e : entries) {
            b.u64(e.base).u64(e.length).u32(e.type).u32(0);
            for (uint32_t i = 24; i < entry_size; ++i)
                b.u8(0xee);
        }
        m_mmap_offset = tag(6, b.data());
        return *this;
    }
    static Bytes fb_common(uint64_t addr, uint32_t pitch, uint32_t w, uint32_t h, uint8_t bpp, uint8_t type)
    {
        Bytes b;
        b.u64(addr).u32(pitch).u32(w).u32(h).u8(bpp).u8(type).u16(0);
        return b;
    }
    InfoBuilder& fb_rgb(uint64_t addr = 0xfd000000, uint32_t w = 1024, uint32_t h = 768, uint8_t bpp = 32)
    {
        tag(8, fb_common(addr, w * bpp / 8, w, h, bpp, 1).u8(16).u8(8).u8(8).u8(8).u8(0).u8(8).data());
        return *this;
    }
    InfoBuilder& fb_ega()
    {
        tag(8, fb_common(0xb8000, 160, 80, 25, 16, 2).data());
        return *this;
    }
    InfoBuilder& rsdp_old(bool valid = true)
    {
        tag(14, rsdp_v1(valid));
        return *this;
    }
    InfoBuilder& rsdp_new()
    {
        tag(15, rsdp_v2());
        return *this;
    }
    InfoBuilder& efi64(uint64_t table)
    {
        tag(12, Bytes().u64(table).data());
        return *this;
    }
    InfoBuilder& efi_bs()
    {
        tag(18, {});
        return *this;
    }
    InfoBuilder& load_base(uint32_t base)
    {
        tag(21, Bytes().u32(base).data());
        return *this;
    }

    // Appends the end tag (unless told not to) and fills in total_size.
    std::vector<uint8_t> build(bool with_end = true)
    {
        std::vector<uint8_t> out = m_bytes;
        if (with_end)
            append_to(out, Bytes().u32(0).u32(8).data());
        const uint32_t total = static_cast<uint32_t>(out.size());
        std::memcpy(out.data(), &total, 4);
        return out;
    }
    size_t mmap_offset() const { return m_mmap_offset; }
    size_t size() const { return m_bytes.size(); }

private:
    static void append_to(std::vector<uint8_t>& v, const std::vector<uint8_t>& more)
    {
        v.insert(v.end(), more.begin(), more.end());
    }
    void append(const std::vector<uint8_t>& more) { append_to(m_bytes, more); }

    std::vector<uint8_t> m_bytes;
    size_t m_mmap_offset = 0;
};

// What SeaBIOS reports for `qemu -m 128M`, as GRUB passes it on.
const std::vector<Entry> kQemuBiosMap = {
    {0x0, 0x9fc00, 1},        {0x9fc00, 0x400, 2},     {0xf0000, 0x10000, 2},
    {0x100000, 0x7ee0000, 1}, {0x7fe0000, 0x20000, 2}, {0xfffc0000, 0x40000, 2},
};
constexpr uint64_t kQemuBiosUsable = 0x9fc00 + 0x7ee0000;

std::vector<uint8_t> grub_bios_blob()
{
    return InfoBuilder()
        .cmdline("log=debug hz=100")
        .loader("GRUB 2.06-13+deb12u1")
        .module(0x200000, 0x201000, "initrd.tar")
        .meminfo(639, 129920)
        .bootdev()
        .mmap(kQemuBiosMap)
        .fb_ega()
        .rsdp_old()
        .build();
}

std::vector<uint8_t> grub_uefi_blob()
{
    return InfoBuilder()
        .cmdline("ktest")
        .loader("GRUB 2.06")
        .efi64(0x7f9ee018)
        .efi_bs()
        .mmap({{0x0, 0xa0000, 1},
               {0x100000, 0x700000, 1},
               {0x800000, 0x8000, 4},
               {0x808000, 0x7f000000 - 0x808000, 1},
               {0x7f000000, 0x1000000, 3},
               {0xffc00000, 0x400000, 2},
               {0x100000000, 0x40000000, 1}})
        .fb_rgb(0x80000000)
        .rsdp_old()
        .rsdp_new()
        .load_base(0x100000)
        .build();
}

using Result = lib::Expected<BootInfo, kernel::BootInfoError>;

Result parse(const std::vector<uint8_t>& blob, uint64_t phys = kInfoPhys)
{
    return kernel::parse_multiboot2(lib::Span<const uint8_t>(blob.data(), blob.size()), phys);
}

void require_error(const std::vector<uint8_t>& blob, BootInfoErrorCode code, const std::string& text,
                   uint64_t phys = kInfoPhys)
{
    const Result r = parse(blob, phys);
    INFO("expected " << kernel::boot_info_error_code_name(code));
    REQUIRE_FALSE(r.has_value());
    INFO("got " << kernel::boot_info_error_code_name(r.error().code) << ": " << r.error().message);
    CHECK(r.error().code == code);
    CHECK_THAT(std::string(r.error().message), Contains(text));
}

void put_u32(std::vector<uint8_t>& blob, size_t offset, uint32_t v) { std::memcpy(blob.data() + offset, &v, 4); }

std::string hex(uint64_t v)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%#llx", static_cast<unsigned long long>(v));
    return buf;
}

// Field-by-field (padding bytes may differ between two equal BootInfos).
void require_same(const BootInfo& a, const BootInfo& b)
{
    REQUIRE(std::string(a.cmdline) == b.cmdline);
    REQUIRE(std::string(a.bootloader_name) == b.bootloader_name);
    REQUIRE(a.memory_region_count == b.memory_region_count);
    for (size_t i = 0; i < BootInfo::kMaxMemoryRegions; ++i) {
        REQUIRE(a.memory_regions[i].base == b.memory_regions[i].base);
        REQUIRE(a.memory_regions[i].length == b.memory_regions[i].length);
        REQUIRE(a.memory_regions[i].type == b.memory_regions[i].type);
        REQUIRE(a.memory_regions[i].raw_type == b.memory_regions[i].raw_type);
    }
    REQUIRE(a.total_usable_bytes == b.total_usable_bytes);
    REQUIRE(a.has_framebuffer == b.has_framebuffer);
    REQUIRE(a.framebuffer.phys_addr == b.framebuffer.phys_addr);
    REQUIRE(a.framebuffer.type == b.framebuffer.type);
    REQUIRE(a.module_count == b.module_count);
    for (size_t i = 0; i < BootInfo::kMaxModules; ++i) {
        REQUIRE(a.modules[i].start == b.modules[i].start);
        REQUIRE(a.modules[i].end == b.modules[i].end);
        REQUIRE(std::string(a.modules[i].string) == b.modules[i].string);
    }
    REQUIRE(a.has_rsdp == b.has_rsdp);
    REQUIRE(a.rsdp.source == b.rsdp.source);
    REQUIRE(std::memcmp(a.rsdp.bytes, b.rsdp.bytes, sizeof(a.rsdp.bytes)) == 0);
    REQUIRE(a.info_phys_start == b.info_phys_start);
    REQUIRE(a.info_phys_end == b.info_phys_end);
    REQUIRE(a.has_basic_meminfo == b.has_basic_meminfo);
    REQUIRE(a.has_load_base == b.has_load_base);
    REQUIRE(a.efi_system_table == b.efi_system_table);
    REQUIRE(a.efi_boot_services_active == b.efi_boot_services_active);
    REQUIRE(a.tag_types_seen == b.tag_types_seen);
}

// The guarantees every successfully parsed BootInfo must keep.
void check_invariants(const BootInfo& info, size_t blob_size)
{
    REQUIRE(info.memory_region_count <= BootInfo::kMaxMemoryRegions);
    REQUIRE(info.module_count <= BootInfo::kMaxModules);
    uint64_t usable = 0;
    for (size_t i = 0; i < info.memory_region_count; ++i) {
        const kernel::MemoryRegion& r = info.memory_regions[i];
        REQUIRE(r.length > 0);
        REQUIRE(r.end().get() > r.base.get());
        if (i > 0)
            REQUIRE(info.memory_regions[i - 1].end() <= r.base);
        if (r.is_usable())
            usable += r.length;
    }
    REQUIRE(usable == info.total_usable_bytes);
    REQUIRE(usable > 0);
    REQUIRE(std::memchr(info.cmdline, 0, sizeof(info.cmdline)) != nullptr);
    REQUIRE(std::memchr(info.bootloader_name, 0, sizeof(info.bootloader_name)) != nullptr);
    for (const kernel::BootModule& m : info.boot_modules()) {
        REQUIRE(m.start <= m.end);
        REQUIRE(std::memchr(m.string, 0, sizeof(m.string)) != nullptr);
    }
    REQUIRE(info.info_phys_start.get() == kInfoPhys);
    REQUIRE(info.info_phys_end.get() - info.info_phys_start.get() <= blob_size);
    if (info.has_rsdp)
        REQUIRE((info.rsdp.length == 20 || info.rsdp.length == 36));
}

} // namespace

TEST_CASE("multiboot2: GRUB-style BIOS boot information parses completely", "[multiboot2]")
{
    const auto blob = grub_bios_blob();
    const Result r = parse(blob);
    REQUIRE(r.has_value());
    const BootInfo& info = *r;
    check_invariants(info, blob.size());

    CHECK(std::string(info.cmdline) == "log=debug hz=100");
    CHECK(std::string(info.bootloader_name) == "GRUB 2.06-13+deb12u1");

    REQUIRE(info.memory_region_count == kQemuBiosMap.size());
    for (size_t i = 0; i < kQemuBiosMap.size(); ++i) {
        CHECK(info.memory_regions[i].base.get() == kQemuBiosMap[i].base);
        CHECK(info.memory_regions[i].length == kQemuBiosMap[i].length);
        CHECK(info.memory_regions[i].raw_type == kQemuBiosMap[i].type);
    }
    CHECK(info.memory_regions[0].type == MemoryType::Available);
    CHECK(info.memory_regions[1].type == MemoryType::Reserved);
    CHECK(info.total_usable_bytes == kQemuBiosUsable);
    CHECK(info.usable_bytes() == kQemuBiosUsable);
    CHECK(info.mmap_entry_version == 0);

    REQUIRE(info.module_count == 1);
    CHECK(info.modules[0].start.get() == 0x200000);
    CHECK(info.modules[0].end.get() == 0x201000);
    CHECK(info.modules[0].size() == 0x1000);
    CHECK(std::string(info.modules[0].string) == "initrd.tar");

    REQUIRE(info.has_framebuffer);
    CHECK(info.framebuffer.type == kernel::FramebufferType::EgaText);
    CHECK(info.framebuffer.phys_addr.get() == 0xb8000);
    CHECK(info.framebuffer.width == 80);
    CHECK(info.framebuffer.height == 25);
    CHECK(info.framebuffer.pitch == 160);
    CHECK(info.framebuffer.bpp == 16);
    CHECK(info.framebuffer.size_bytes() == 4000);

    REQUIRE(info.has_rsdp);
    CHECK(info.rsdp.source == kernel::RsdpSource::AcpiOld);
    CHECK(info.rsdp.revision == 0);
    CHECK(info.rsdp.length == 20);
    CHECK(info.rsdp.checksum_ok);
    CHECK(std::memcmp(info.rsdp.data().data(), "RSD PTR ", 8) == 0);

    CHECK(info.has_basic_meminfo);
    CHECK(info.mem_lower_kib == 639);
    CHECK(info.mem_upper_kib == 129920);
    CHECK(info.info_phys_start.get() == kInfoPhys);
    CHECK(info.info_phys_end.get() == kInfoPhys + blob.size());
    CHECK(info.saw_tag(5));
    CHECK(info.saw_tag(6));
    CHECK_FALSE(info.saw_tag(12));
    CHECK(info.efi_system_table.is_null());
    CHECK_FALSE(info.efi_boot_services_active);
}

TEST_CASE("multiboot2: usable-region helpers skip everything but Available", "[multiboot2]")
{
    const auto blob = grub_bios_blob();
    const Result r = parse(blob);
    REQUIRE(r.has_value());
    std::vector<uint64_t> bases;
    uint64_t total = 0;
    for (const kernel::MemoryRegion& region : r->usable_regions()) {
        CHECK(region.type == MemoryType::Available);
        bases.push_back(region.base.get());
        total += region.length;
    }
    CHECK(bases == std::vector<uint64_t>{0x0, 0x100000});
    CHECK(total == r->usable_bytes());
    CHECK(r->usable_region_count() == 2);
    CHECK(r->usable_end().get() == 0x7fe0000);
    CHECK(r->memory_map().size() == 6);
    REQUIRE(r->region_containing(PhysicalAddress(0x9fc10)) != nullptr);
    CHECK(r->region_containing(PhysicalAddress(0x9fc10))->type == MemoryType::Reserved);
    CHECK(r->region_containing(PhysicalAddress(0xa0000)) == nullptr); // the VGA hole
}

TEST_CASE("multiboot2: GRUB-style UEFI boot information with a >4 GiB region", "[multiboot2]")
{
    const auto blob = grub_uefi_blob();
    const Result r = parse(blob);
    REQUIRE(r.has_value());
    const BootInfo& info = *r;
    check_invariants(info, blob.size());

    CHECK(info.memory_region_count == 7);
    CHECK(info.memory_regions[6].base.get() == 0x100000000);
    CHECK(info.memory_regions[6].end().get() == 0x140000000);
    CHECK(info.memory_regions[2].type == MemoryType::AcpiNvs);
    CHECK(info.memory_regions[4].type == MemoryType::AcpiReclaimable);
    CHECK(info.total_usable_bytes == 0xa0000ull + 0x700000 + (0x7f000000 - 0x808000) + 0x40000000);
    CHECK(info.usable_end().get() == 0x140000000);

    REQUIRE(info.has_framebuffer);
    CHECK(info.framebuffer.type == kernel::FramebufferType::Rgb);
    CHECK(info.framebuffer.phys_addr.get() == 0x80000000);
    CHECK(info.framebuffer.pitch == 4096);
    CHECK(info.framebuffer.bpp == 32);
    CHECK(info.framebuffer.red.position == 16);
    CHECK(info.framebuffer.red.size == 8);
    CHECK(info.framebuffer.green.position == 8);
    CHECK(info.framebuffer.blue.position == 0);
    CHECK(info.framebuffer.blue.size == 8);

    // Both RSDP tags present: the ACPI 2.0 copy wins.
    REQUIRE(info.has_rsdp);
    CHECK(info.rsdp.source == kernel::RsdpSource::AcpiNew);
    CHECK(info.rsdp.revision == 2);
    CHECK(info.rsdp.length == 36);
    CHECK(info.rsdp.checksum_ok);

    CHECK(info.efi_system_table.get() == 0x7f9ee018);
    CHECK(info.efi_boot_services_active);
    CHECK(info.has_load_base);
    CHECK(info.load_base.get() == 0x100000);
    CHECK_FALSE(info.has_basic_meminfo);
}

TEST_CASE("multiboot2: the ACPI 2.0 RSDP wins whichever tag comes first", "[multiboot2]")
{
    const auto blob = InfoBuilder().rsdp_new().rsdp_old().mmap(kQemuBiosMap).build();
    const Result r = parse(blob);
    REQUIRE(r.has_value());
    CHECK(r->rsdp.source == kernel::RsdpSource::AcpiNew);
    CHECK(r->rsdp.length == 36);
}

TEST_CASE("multiboot2: a bad RSDP checksum is recorded, not fatal", "[multiboot2]")
{
    const auto blob = InfoBuilder().rsdp_old(false).mmap(kQemuBiosMap).build();
    const Result r = parse(blob);
    REQUIRE(r.has_value());
    REQUIRE(r->has_rsdp);
    CHECK_FALSE(r->rsdp.checksum_ok);
}

TEST_CASE("multiboot2: indexed framebuffer with its palette", "[multiboot2]")
{
    Bytes b = InfoBuilder::fb_common(0xa0000, 320, 320, 200, 8, 0);
    b.u16(4);
    for (int i = 0; i < 4 * 3; ++i)
        b.u8(static_cast<uint8_t>(i));
    InfoBuilder ib;
    ib.tag(8, b.data());
    const Result r = parse(ib.mmap(kQemuBiosMap).build());
    REQUIRE(r.has_value());
    CHECK(r->framebuffer.type == kernel::FramebufferType::Indexed);
    CHECK(r->framebuffer.palette_colors == 4);
}

TEST_CASE("multiboot2: no framebuffer, modules or RSDP is fine", "[multiboot2]")
{
    const Result r = parse(InfoBuilder().mmap(kQemuBiosMap).build());
    REQUIRE(r.has_value());
    CHECK_FALSE(r->has_framebuffer);
    CHECK_FALSE(r->has_rsdp);
    CHECK(r->module_count == 0);
    CHECK(r->cmdline[0] == '\0');
    CHECK(r->bootloader_name[0] == '\0');
}

TEST_CASE("multiboot2: unknown and unstored tags are skipped", "[multiboot2]")
{
    InfoBuilder ib;
    ib.tag(99, Bytes().u32(1).u32(2).u8(3).data());       // odd size: the next tag is padded
    ib.tag(7, std::vector<uint8_t>(8 + 512 + 256, 0));    // VBE
    ib.tag(13, Bytes().u8(2).u8(8).u32(0).u16(0).data()); // SMBIOS header only
    ib.tag(0x7fffffff, {});
    ib.cmdline("hz=250");
    const Result r = parse(ib.mmap(kQemuBiosMap).build());
    REQUIRE(r.has_value());
    CHECK(std::string(r->cmdline) == "hz=250");
    CHECK(r->saw_tag(7));
    CHECK(r->saw_tag(13));
}

TEST_CASE("multiboot2: larger mmap entries and newer entry versions are read by their first 24 bytes", "[multiboot2]")
{
    const Result r = parse(InfoBuilder().mmap(kQemuBiosMap, 32, 1).build());
    REQUIRE(r.has_value());
    CHECK(r->memory_region_count == kQemuBiosMap.size());
    CHECK(r->total_usable_bytes == kQemuBiosUsable);
    CHECK(r->mmap_entry_version == 1);
}

TEST_CASE("multiboot2: zero-length mmap entries are dropped", "[multiboot2]")
{
    const Result r = parse(InfoBuilder().mmap({{0x0, 0x9fc00, 1}, {0x50000, 0, 2}, {0x100000, 0x100000, 1}}).build());
    REQUIRE(r.has_value());
    CHECK(r->memory_region_count == 2);
    CHECK(r->memory_regions[1].base.get() == 0x100000);
}

TEST_CASE("multiboot2: adjacent regions are accepted", "[multiboot2]")
{
    const Result r = parse(InfoBuilder().mmap({{0x0, 0x1000, 2}, {0x1000, 0x9000, 1}, {0xa000, 0x1000, 1}}).build());
    REQUIRE(r.has_value());
    CHECK(r->memory_region_count == 3);
    CHECK(r->total_usable_bytes == 0xa000);
}

TEST_CASE("multiboot2: capacity limits", "[multiboot2]")
{
    SECTION("128 regions fit, 129 do not")
    {
        std::vector<Entry> entries;
        for (uint64_t i = 0; i < BootInfo::kMaxMemoryRegions; ++i)
            entries.push_back({i * 0x10000, 0x8000, static_cast<uint32_t>(i % 2 ? 2 : 1)});
        const Result ok = parse(InfoBuilder().mmap(entries).build());
        REQUIRE(ok.has_value());
        CHECK(ok->memory_region_count == 128);
        CHECK(ok->total_usable_bytes == 64 * 0x8000);
        entries.push_back({128 * 0x10000, 0x8000, 1});
        require_error(InfoBuilder().mmap(entries).build(), BootInfoErrorCode::TooManyRegions,
                      "BootInfo holds at most 128");
    }
    SECTION("16 modules fit, 17 do not")
    {
        InfoBuilder ib;
        for (uint32_t i = 0; i < BootInfo::kMaxModules; ++i)
            ib.module(0x200000 + i * 0x1000, 0x200000 + (i + 1) * 0x1000, "mod" + std::to_string(i));
        ib.mmap(kQemuBiosMap);
        const Result ok = parse(ib.build());
        REQUIRE(ok.has_value());
        CHECK(ok->module_count == 16);
        CHECK(std::string(ok->modules[15].string) == "mod15");
        CHECK(ok->boot_modules().size() == 16);
        ib.module(0x300000, 0x301000, "one too many");
        require_error(ib.build(), BootInfoErrorCode::TooManyModules, "at most 16");
    }
    SECTION("a 511-byte command line fits, 512 bytes do not")
    {
        const std::string longest(BootInfo::kCmdlineCapacity - 1, 'x');
        const Result ok = parse(InfoBuilder().cmdline(longest).mmap(kQemuBiosMap).build());
        REQUIRE(ok.has_value());
        CHECK(std::string(ok->cmdline) == longest);
        require_error(InfoBuilder().cmdline(longest + "y").mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringTooLong,
                      "cmdline is 512 bytes; the Heartwood keeps at most 511");
    }
    SECTION("a long module string is rejected")
    {
        const std::string name(kernel::BootModule::kStringCapacity, 'm');
        require_error(InfoBuilder().module(0x1000, 0x2000, name).mmap(kQemuBiosMap).build(),
                      BootInfoErrorCode::StringTooLong, "module 0 string is 64 bytes");
    }
    SECTION("a long boot loader name is truncated")
    {
        const std::string name(200, 'g');
        const Result ok = parse(InfoBuilder().loader(name).mmap(kQemuBiosMap).build());
        REQUIRE(ok.has_value());
        CHECK(std::string(ok->bootloader_name) == name.substr(0, BootInfo::kBootloaderNameCapacity - 1));
    }
}

TEST_CASE("multiboot2: parse_multiboot2_into matches and fully replaces old contents", "[multiboot2]")
{
    static BootInfo info; // static, as the kernel keeps it
    auto uefi = grub_uefi_blob();
    REQUIRE(kernel::parse_multiboot2_into(info, lib::Span<const uint8_t>(uefi.data(), uefi.size()), kInfoPhys));
    CHECK(info.has_load_base);

    const auto bios = grub_bios_blob();
    REQUIRE(kernel::parse_multiboot2_into(info, lib::Span<const uint8_t>(bios.data(), bios.size()), kInfoPhys));
    const Result fresh = parse(bios);
    REQUIRE(fresh.has_value());
    require_same(info, *fresh);
    CHECK_FALSE(info.has_load_base);
    CHECK(info.memory_regions[6].length == 0); // the UEFI map's 7th region was cleared

    const std::vector<uint8_t> tiny(4, 0);
    const auto err = kernel::parse_multiboot2_into(info, lib::Span<const uint8_t>(tiny.data(), tiny.size()), 0);
    REQUIRE_FALSE(err.has_value());
    CHECK(err.error().code == BootInfoErrorCode::BlobTooSmall);
}

TEST_CASE("multiboot2: header errors", "[multiboot2][errors]")
{
    SECTION("blob shorter than the fixed header")
    {
        require_error(std::vector<uint8_t>(7, 0), BootInfoErrorCode::BlobTooSmall,
                      "boot information is 7 bytes; its fixed header alone needs 8");
        const Result r = kernel::parse_multiboot2(lib::Span<const uint8_t>(), kInfoPhys);
        REQUIRE_FALSE(r.has_value());
        CHECK(r.error().code == BootInfoErrorCode::BlobTooSmall);
    }
    SECTION("misaligned info")
    {
        require_error(grub_bios_blob(), BootInfoErrorCode::MisalignedInfo,
                      "misaligned tag: boot information at phys 0x10004 is not 8-byte aligned", 0x10004);
    }
    SECTION("total_size smaller than header plus end tag")
    {
        auto blob = grub_bios_blob();
        put_u32(blob, 0, 0xc);
        require_error(blob, BootInfoErrorCode::TotalSizeTooSmall,
                      "total_size 0xc smaller than header plus end tag (0x10)");
        put_u32(blob, 0, 0);
        require_error(blob, BootInfoErrorCode::TotalSizeTooSmall, "total_size 0x0 smaller than header");
    }
    SECTION("total_size larger than the blob (truncated copy)")
    {
        auto blob = grub_bios_blob();
        const size_t full = blob.size();
        blob.resize(full - 8);
        require_error(blob, BootInfoErrorCode::TotalSizeExceedsBlob,
                      "total_size " + hex(full) + " exceeds the " + hex(full - 8) + " bytes");
    }
}

TEST_CASE("multiboot2: tag framing errors", "[multiboot2][errors]")
{
    SECTION("tag runs past total_size")
    {
        InfoBuilder ib;
        ib.cmdline("a").loader("b").mmap(kQemuBiosMap);
        auto blob = ib.build();
        const size_t mmap_at = ib.mmap_offset();
        const uint32_t bogus = static_cast<uint32_t>(blob.size());
        put_u32(blob, mmap_at + 4, bogus);
        require_error(blob, BootInfoErrorCode::TagPastEnd,
                      "tag #2 (type 6, mmap) at offset " + hex(mmap_at) + ": size " + std::to_string(bogus) +
                          " runs past the end of the info (total_size " + hex(blob.size()) + ")");
    }
    SECTION("tag smaller than its header")
    {
        InfoBuilder ib;
        ib.tag(1, {}, 4);
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::TagTooSmall,
                      "tag #0 (type 1, cmdline) at offset 0x8: size 4 is smaller than the 8-byte tag header");
    }
    SECTION("known tag smaller than its fixed layout")
    {
        InfoBuilder ib;
        ib.tag(4, Bytes().u32(639).data()); // basic meminfo needs 16
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::TagTooSmall,
                      "(type 4, basic meminfo) at offset 0x8: size 12 is smaller than the 16 bytes this tag needs");
        InfoBuilder acpi;
        acpi.tag(15, rsdp_v1()); // a 20-byte RSDP in the ACPI 2.0 tag
        require_error(acpi.mmap(kQemuBiosMap).build(), BootInfoErrorCode::TagTooSmall,
                      "size 28 is smaller than the 44 bytes");
    }
    SECTION("missing end tag")
    {
        require_error(InfoBuilder().cmdline("x").mmap(kQemuBiosMap).build(false), BootInfoErrorCode::MissingEndTag,
                      "missing end tag");
        // total_size cut so the last tag ends exactly at it, with no room for the end tag.
        auto blob = grub_bios_blob();
        put_u32(blob, 0, static_cast<uint32_t>(blob.size() - 8));
        require_error(blob, BootInfoErrorCode::MissingEndTag, "missing end tag: 8 tag(s)");
    }
    SECTION("end tag with the wrong size")
    {
        InfoBuilder ib;
        ib.mmap(kQemuBiosMap);
        ib.tag(0, Bytes().u64(0).data());
        auto blob = ib.build(false);
        require_error(blob, BootInfoErrorCode::BadEndTag, "(type 0, end) at offset");
        require_error(blob, BootInfoErrorCode::BadEndTag, "end tag size 16 (expected 8)");
    }
    SECTION("bytes after the end tag are ignored")
    {
        auto blob = grub_bios_blob();
        blob.resize(blob.size() + 16, 0xab);
        put_u32(blob, 0, static_cast<uint32_t>(blob.size()));
        CHECK(parse(blob).has_value());
    }
    SECTION("duplicate unique tag")
    {
        require_error(InfoBuilder().cmdline("a").mmap(kQemuBiosMap).cmdline("b").build(),
                      BootInfoErrorCode::DuplicateTag, "tag #2 (type 1, cmdline) at offset 0x");
        require_error(InfoBuilder().mmap(kQemuBiosMap).mmap(kQemuBiosMap).build(), BootInfoErrorCode::DuplicateTag,
                      "duplicate mmap tag; only one is allowed");
    }
}

TEST_CASE("multiboot2: string errors", "[multiboot2][errors]")
{
    SECTION("cmdline")
    {
        InfoBuilder ib;
        ib.tag(1, Bytes().str("hz=100", false).data());
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringNotTerminated,
                      "tag #0 (type 1, cmdline) at offset 0x8: cmdline not NUL-terminated within its 6 byte(s)");
    }
    SECTION("empty string tag without even a NUL")
    {
        InfoBuilder ib;
        ib.tag(1, {});
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringNotTerminated,
                      "cmdline not NUL-terminated within its 0 byte(s)");
    }
    SECTION("boot loader name")
    {
        InfoBuilder ib;
        ib.tag(2, Bytes().str("GRUB", false).data());
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringNotTerminated,
                      "boot loader name not NUL-terminated");
    }
    SECTION("module string")
    {
        InfoBuilder ib;
        ib.tag(3, Bytes().u32(0x1000).u32(0x2000).str("initrd", false).data());
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringNotTerminated,
                      "module string not NUL-terminated");
    }
    SECTION("the NUL must lie inside the tag, not in its padding")
    {
        InfoBuilder ib;
        // Declared size stops before the NUL that follows in the buffer.
        ib.tag(1, Bytes().str("abc").data(), 8 + 3);
        require_error(ib.mmap(kQemuBiosMap).build(), BootInfoErrorCode::StringNotTerminated, "within its 3 byte(s)");
    }
}

TEST_CASE("multiboot2: memory map errors", "[multiboot2][errors]")
{
    SECTION("entry_size too small")
    {
        InfoBuilder ib;
        ib.tag(6, Bytes().u32(20).u32(0).u64(0).u64(0x9fc00).u32(1).data());
        require_error(ib.build(), BootInfoErrorCode::BadMmapEntrySize,
                      "tag #0 (type 6, mmap) at offset 0x8: entry_size 20 < 24");
    }
    SECTION("entry_size not a multiple of 8")
    {
        require_error(InfoBuilder().mmap(kQemuBiosMap, 28).build(), BootInfoErrorCode::BadMmapEntrySize,
                      "entry_size 28 is not a multiple of 8");
    }
    SECTION("entries do not fill the tag exactly")
    {
        InfoBuilder ib;
        ib.tag(6, Bytes().u32(24).u32(0).u64(0).u64(0x9fc00).u32(1).u32(0).u64(0x100000).data());
        require_error(ib.build(), BootInfoErrorCode::BadMmapSize,
                      "32 bytes of entries is not a whole number of 24-byte entries");
    }
    SECTION("no mmap tag")
    {
        require_error(InfoBuilder().cmdline("x").meminfo(639, 129920).build(), BootInfoErrorCode::NoMemoryMap,
                      "no memory map tag (type 6)");
    }
    SECTION("no usable memory")
    {
        require_error(InfoBuilder().mmap({{0x0, 0x100000, 2}, {0x100000, 0x100000, 5}}).build(),
                      BootInfoErrorCode::NoUsableMemory, "no usable memory: none of the 2 memory map region(s)");
        require_error(InfoBuilder().mmap({}).build(), BootInfoErrorCode::NoUsableMemory, "no usable memory");
        require_error(InfoBuilder().mmap({{0x100000, 0, 1}}).build(), BootInfoErrorCode::NoUsableMemory,
                      "no usable memory");
    }
    SECTION("overlapping regions")
    {
        require_error(InfoBuilder()
                          .mmap({{0x0, 0x9000, 1}, {0x10000, 0x1000, 2}, {0x9fc00, 0x400, 2}, {0x9f000, 0x61000, 1}})
                          .build(),
                      BootInfoErrorCode::OverlappingRegions,
                      "memory regions 2 and 3 overlap: [0x9fc00..0xa0000) and [0x9f000..0x100000)");
        // Same start: overlap, not merely unsorted.
        require_error(InfoBuilder().mmap({{0x100000, 0x1000, 1}, {0x100000, 0x2000, 1}}).build(),
                      BootInfoErrorCode::OverlappingRegions, "memory regions 0 and 1 overlap");
    }
    SECTION("overlap reported with original entry indices when empty entries are skipped")
    {
        require_error(InfoBuilder().mmap({{0x0, 0x2000, 1}, {0x5000, 0, 1}, {0x1000, 0x1000, 2}}).build(),
                      BootInfoErrorCode::OverlappingRegions, "memory regions 0 and 2 overlap");
    }
    SECTION("unsorted regions")
    {
        require_error(InfoBuilder()
                          .mmap({{0x0, 0x9fc00, 1},
                                 {0x9fc00, 0x400, 2},
                                 {0xf0000, 0x10000, 2},
                                 {0x200000, 0x100000, 1},
                                 {0x100000, 0x100000, 1}})
                          .build(),
                      BootInfoErrorCode::UnsortedRegions,
                      "unsorted memory map: region 4 base 0x100000 < region 3 base 0x200000");
    }
    SECTION("region wrapping past 2^64")
    {
        require_error(InfoBuilder().mmap({{0x0, 0x9fc00, 1}, {0xfffffffffffff000, 0x2000, 2}}).build(),
                      BootInfoErrorCode::RegionWraps,
                      "memory region 1 [0xfffffffffffff000, +0x2000) wraps past the top");
    }
    SECTION("a region ending exactly at 2^64 - 1 is fine")
    {
        const Result r = parse(InfoBuilder().mmap({{0x0, 0x9fc00, 1}, {0xfffffffffffff000, 0xfff, 2}}).build());
        REQUIRE(r.has_value());
        CHECK(r->memory_regions[1].end().get() == 0xffffffffffffffff);
    }
}

TEST_CASE("multiboot2: framebuffer errors", "[multiboot2][errors]")
{
    auto with_fb = [](const std::vector<uint8_t>& payload, int64_t size = -1) {
        InfoBuilder ib;
        ib.tag(8, payload, size);
        return ib.mmap(kQemuBiosMap).build();
    };
    SECTION("unknown type")
    {
        require_error(with_fb(InfoBuilder::fb_common(0xfd000000, 4096, 1024, 768, 32, 3).data()),
                      BootInfoErrorCode::UnknownFramebufferType,
                      "tag #0 (type 8, framebuffer) at offset 0x8: unknown framebuffer type 3");
    }
    SECTION("zero size")
    {
        require_error(with_fb(InfoBuilder::fb_common(0xfd000000, 4096, 0, 768, 32, 2).data()),
                      BootInfoErrorCode::BadFramebuffer, "empty framebuffer: 0x768 at 32 bpp");
    }
    SECTION("pitch shorter than a line")
    {
        auto p = InfoBuilder::fb_common(0xfd000000, 4000, 1024, 768, 32, 1).u8(16).u8(8).u8(8).u8(8).u8(0).u8(8);
        require_error(with_fb(p.data()), BootInfoErrorCode::BadFramebuffer,
                      "pitch 4000 bytes is shorter than a line of 1024 at 32 bpp");
    }
    SECTION("null address")
    {
        require_error(with_fb(InfoBuilder::fb_common(0, 160, 80, 25, 16, 2).data()), BootInfoErrorCode::BadFramebuffer,
                      "framebuffer address 0x0 cannot hold 4000 bytes");
    }
    SECTION("RGB tag without its colour info")
    {
        require_error(with_fb(InfoBuilder::fb_common(0xfd000000, 4096, 1024, 768, 32, 1).data()),
                      BootInfoErrorCode::TagTooSmall,
                      "size 32 is smaller than the 38 bytes an RGB framebuffer tag needs");
    }
    SECTION("colour field beyond bpp")
    {
        auto p = InfoBuilder::fb_common(0xfd000000, 2048, 1024, 768, 16, 1).u8(11).u8(5).u8(5).u8(6).u8(12).u8(5);
        require_error(with_fb(p.data()), BootInfoErrorCode::BadFramebuffer,
                      "blue field at bit 12 width 5 does not fit in 16 bpp");
    }
    SECTION("palette longer than the tag")
    {
        auto p = InfoBuilder::fb_common(0xa0000, 320, 320, 200, 8, 0).u16(256).u8(0).u8(0).u8(0);
        require_error(with_fb(p.data()), BootInfoErrorCode::BadFramebuffer,
                      "palette of 256 colours needs 802 bytes but the tag has 37");
    }
}

TEST_CASE("multiboot2: module errors", "[multiboot2][errors]")
{
    require_error(InfoBuilder().module(0x300000, 0x200000, "backwards").mmap(kQemuBiosMap).build(),
                  BootInfoErrorCode::BadModule, "module 0 [0x300000..0x200000): mod_start > mod_end");
    const Result empty = parse(InfoBuilder().module(0x300000, 0x300000, "").mmap(kQemuBiosMap).build());
    REQUIRE(empty.has_value());
    CHECK(empty->modules[0].size() == 0);
}

TEST_CASE("multiboot2: names for codes, tags and types", "[multiboot2]")
{
    for (int c = 0; c <= static_cast<int>(BootInfoErrorCode::TooManyModules); ++c)
        CHECK(std::string(kernel::boot_info_error_code_name(static_cast<BootInfoErrorCode>(c))) != "?");
    CHECK(std::string(kernel::multiboot2_tag_name(6)) == "mmap");
    CHECK(std::string(kernel::multiboot2_tag_name(21)) == "load base addr");
    CHECK(std::string(kernel::multiboot2_tag_name(22)) == "unknown");
    CHECK(std::string(kernel::memory_type_name(MemoryType::AcpiNvs)) == "ACPI NVS");
    CHECK(std::string(kernel::framebuffer_type_name(kernel::FramebufferType::EgaText)) == "EGA text");
}

TEST_CASE("multiboot2: every truncation of a valid blob is rejected", "[multiboot2][robustness]")
{
    for (const auto& valid : {grub_bios_blob(), grub_uefi_blob()}) {
        // A short copy: the span ends before total_size.
        for (size_t n = 0; n < valid.size(); ++n) {
            std::unique_ptr<uint8_t[]> exact(new uint8_t[n ? n : 1]);
            std::memcpy(exact.get(), valid.data(), n);
            const Result r = kernel::parse_multiboot2(lib::Span<const uint8_t>(exact.get(), n), kInfoPhys);
            INFO("length " << n);
            REQUIRE_FALSE(r.has_value());
        }
        // total_size itself lowered: only values reaching past the end tag parse.
        for (uint32_t total = 0; total <= valid.size() + 8; ++total) {
            auto blob = valid;
            blob.resize(std::max<size_t>(blob.size(), total));
            put_u32(blob, 0, total);
            const Result r = parse(blob);
            INFO("total_size " << total);
            REQUIRE(r.has_value() == (total >= valid.size()));
        }
    }
}

TEST_CASE("multiboot2: random damage never crashes and always yields a verdict", "[multiboot2][robustness]")
{
    std::mt19937_64 rng(0xae7e105);
    const std::vector<std::vector<uint8_t>> seeds = {grub_bios_blob(), grub_uefi_blob()};
    const uint32_t interesting[] = {0,  1,    7,    8,     9,      16,         20,         23,
                                    24, 0x7f, 0xff, 0x100, 0xfff0, 0x7fffffff, 0xfffffff8, 0xffffffff};
    size_t parsed = 0;
    size_t rejected = 0;
    for (int iteration = 0; iteration < 30000; ++iteration) {
        std::vector<uint8_t> blob = seeds[rng() % seeds.size()];
        const int mutations = 1 + static_cast<int>(rng() % 4);
        for (int m = 0; m < mutations; ++m) {
            switch (rng() % 5) {
            case 0: // flip one bit
                blob[rng() % blob.size()] ^= static_cast<uint8_t>(1u << (rng() % 8));
                break;
            case 1: // random byte
                blob[rng() % blob.size()] = static_cast<uint8_t>(rng());
                break;
            case 2: // a size/type-like field gets an edge value
                if (blob.size() >= 4) {
                    const size_t at = (rng() % (blob.size() / 4)) * 4;
                    put_u32(blob, at, interesting[rng() % (sizeof(interesting) / sizeof(interesting[0]))]);
                }
                break;
            case 3: // truncate the copy
                blob.resize(rng() % (blob.size() + 1));
                if (blob.empty())
                    blob.push_back(0);
                break;
            case 4: // a random total_size
                if (blob.size() >= 4)
                    put_u32(blob, 0, static_cast<uint32_t>(rng() % (blob.size() + 64)));
                break;
            }
        }
        // An exact-size heap copy, so reading one byte too far is caught by ASan.
        std::unique_ptr<uint8_t[]> exact(new uint8_t[blob.size()]);
        std::memcpy(exact.get(), blob.data(), blob.size());
        const lib::Span<const uint8_t> span(exact.get(), blob.size());
        const Result r = kernel::parse_multiboot2(span, kInfoPhys);
        if (r.has_value()) {
            ++parsed;
            check_invariants(*r, blob.size());
        } else {
            ++rejected;
            const kernel::BootInfoError& e = r.error();
            REQUIRE(std::memchr(e.message, 0, sizeof(e.message)) != nullptr);
            REQUIRE(e.message[0] != '\0');
            REQUIRE(std::string(kernel::boot_info_error_code_name(e.code)) != "?");
        }
        // Both entry points agree on the verdict.
        static BootInfo scratch;
        const auto into = kernel::parse_multiboot2_into(scratch, span, kInfoPhys);
        REQUIRE(into.has_value() == r.has_value());
        if (!r.has_value())
            REQUIRE(std::string(into.error().message) == r.error().message);
    }
    // Both outcomes must actually have been exercised.
    CHECK(parsed > 100);
    CHECK(rejected > 100);
}
