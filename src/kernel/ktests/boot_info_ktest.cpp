// In-kernel tests of the boot information: what the real loader handed over, and
// that the parsers behave the same freestanding as they do in the host tests.
#include "diag/ktest.h"
#include "kernel/boot_info.h"
#include "kernel/cmdline.h"
#include "kernel/multiboot2.h"
#include "kernel/test_mode.h"

namespace {

using kernel::BootInfo;
using kernel::MemoryRegion;

// The blob and BootInfo live in static storage: a BootInfo is ~5 KiB, too much
// for a test's stack.
struct TestBlob {
    alignas(8) uint8_t bytes[256] = {};
    uint32_t size = 8;

    void put32(uint32_t v)
    {
        for (int i = 0; i < 4; ++i)
            bytes[size++] = static_cast<uint8_t>(v >> (8 * i));
    }
    void put64(uint64_t v)
    {
        put32(static_cast<uint32_t>(v));
        put32(static_cast<uint32_t>(v >> 32));
    }
    void pad()
    {
        while (size % 8 != 0)
            bytes[size++] = 0;
    }
    void cmdline(const char* s)
    {
        const uint32_t n = static_cast<uint32_t>(__builtin_strlen(s)) + 1;
        put32(1);
        put32(8 + n);
        for (uint32_t i = 0; i < n; ++i)
            bytes[size++] = static_cast<uint8_t>(s[i]);
        pad();
    }
    void mmap_entry(uint64_t base, uint64_t length, uint32_t type)
    {
        put64(base);
        put64(length);
        put32(type);
        put32(0);
    }
    void finish()
    {
        put32(0);
        put32(8);
        for (int i = 0; i < 4; ++i)
            bytes[i] = static_cast<uint8_t>(size >> (8 * i));
    }
    lib::Span<const uint8_t> span() const { return lib::Span<const uint8_t>(bytes, size); }
};

TestBlob g_blob;
BootInfo g_scratch;

void build_small_blob(bool overlapping)
{
    g_blob = TestBlob{};
    g_blob.cmdline("hz=100 ktest=boot_info.*");
    g_blob.put32(6);
    g_blob.put32(16 + 2 * 24);
    g_blob.put32(24);
    g_blob.put32(0);
    g_blob.mmap_entry(0x0, 0x9fc00, 1);
    g_blob.mmap_entry(overlapping ? 0x9f000 : 0x100000, 0x7ee0000, 1);
    g_blob.finish();
}

} // namespace

KTEST(boot_info, has_usable_memory)
{
    const BootInfo& info = kernel::boot_info();
    KEXPECT(info.usable_bytes() >= (1u << 20));
    KEXPECT(info.usable_region_count() > 0);
    uint64_t sum = 0;
    for (const MemoryRegion& r : info.usable_regions())
        sum += r.length;
    KEXPECT_EQ(sum, info.usable_bytes());
}

KTEST(boot_info, loader_name_present) { KEXPECT(kernel::boot_info().bootloader_name[0] != '\0'); }

KTEST(boot_info, regions_sorted_and_disjoint)
{
    const BootInfo& info = kernel::boot_info();
    KASSERT(info.memory_region_count > 0);
    KASSERT(info.memory_region_count <= BootInfo::kMaxMemoryRegions);
    for (size_t i = 0; i < info.memory_region_count; ++i) {
        const MemoryRegion& r = info.memory_regions[i];
        KEXPECT(r.length > 0);
        if (i > 0 && !(info.memory_regions[i - 1].end() <= r.base))
            ktest_ctx.failf(__FILE__, __LINE__, "region {} [{}..{}) does not follow region {} ending at {}", i, r.base,
                            r.end(), i - 1, info.memory_regions[i - 1].end());
    }
}

KTEST(boot_info, kernel_load_address_is_usable_ram)
{
    // GRUB loads the Heartwood at 1 MiB; the map must call that RAM.
    const MemoryRegion* r = kernel::boot_info().region_containing(PhysicalAddress(0x100000));
    KASSERT(r != nullptr);
    KEXPECT(r->is_usable());
}

KTEST(boot_info, info_blob_range_recorded)
{
    const BootInfo& info = kernel::boot_info();
    KEXPECT(!info.info_phys_start.is_null());
    KEXPECT(info.info_phys_start.is_aligned(8));
    KEXPECT(info.info_phys_end > info.info_phys_start);
    KEXPECT(info.saw_tag(static_cast<uint32_t>(kernel::Multiboot2Tag::Mmap)));
}

KTEST(boot_info, kept_command_line_matches_the_options_in_force)
{
    // The command line kept in BootInfo must re-parse to the options the kernel booted with
    // (ktests also run from the Eldarin shell, so whether `ktest` was given is not assumed).
    const kernel::CmdlineResult result = kernel::parse_cmdline(lib::StringView(kernel::boot_info().cmdline));
    KEXPECT_EQ(result.options.ktest, kernel::options().ktest);
    KEXPECT_EQ(result.options.hz, kernel::options().hz);
    KEXPECT_EQ(static_cast<int>(result.options.log_level), static_cast<int>(kernel::options().log_level));
    KEXPECT_EQ(result.options.stress_seconds, kernel::options().stress_seconds);
    // When this run was started by the boot command line, it must say ktest.
    if (kernel::test_mode())
        KEXPECT(result.options.ktest);
}

KTEST(boot_info, parser_works_freestanding)
{
    build_small_blob(false);
    const auto status = kernel::parse_multiboot2_into(g_scratch, g_blob.span(), 0x10000);
    KASSERT(status.has_value());
    KEXPECT_EQ(g_scratch.memory_region_count, size_t{2});
    KEXPECT_EQ(g_scratch.usable_bytes(), uint64_t{0x9fc00 + 0x7ee0000});
    KEXPECT(lib::StringView(g_scratch.cmdline) == lib::StringView("hz=100 ktest=boot_info.*"));
    KEXPECT_EQ(g_scratch.info_phys_end, PhysicalAddress(0x10000 + g_blob.size));

    build_small_blob(true);
    const auto bad = kernel::parse_multiboot2_into(g_scratch, g_blob.span(), 0x10000);
    KASSERT(!bad.has_value());
    KEXPECT(bad.error().code == kernel::BootInfoErrorCode::OverlappingRegions);
    KEXPECT(lib::StringView(bad.error().message).contains("memory regions 0 and 1 overlap"));
}

KTEST(boot_info, cmdline_parser_works_freestanding)
{
    const kernel::CmdlineResult r = kernel::parse_cmdline("log=debug hz=100 ktest=mm.* stress=5 bogus");
    KEXPECT(r.options.log_level == lib::log::Level::Debug);
    KEXPECT_EQ(r.options.hz, 100u);
    KEXPECT(r.options.ktest);
    KEXPECT(lib::StringView(r.options.ktest_filter) == lib::StringView("mm.*"));
    KEXPECT_EQ(r.options.stress_seconds, 5u);
    KASSERT(r.diagnostic_count == 1);
    KEXPECT(lib::StringView(r.diagnostics[0]) == lib::StringView("cmdline: unknown option 'bogus' (ignored)"));
}
