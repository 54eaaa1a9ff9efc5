// In-kernel tests of the boot path: global constructors, the stack-protector canary, the symbol
// table, and the page tables boot.S left behind (W^X, no identity map, guard page).
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/paging.h"
#include "diag/ktest.h"
#include "kernel/runtime.h"
#include "kernel/symbols.h"

extern "C" [[noreturn]] void kernel_main(uint32_t multiboot_magic, uint64_t multiboot_info_phys);
extern "C" char boot_higher_half[];

namespace {

// Set by a global constructor; run_global_constructors() must have run it exactly once.
volatile int g_constructor_runs = 0;

struct ConstructorProbe {
    // Not constexpr and with an observable side effect, so the compiler cannot turn the object
    // into static data: it needs a real entry in .init_array.
    [[gnu::noinline]] ConstructorProbe() { g_constructor_runs = g_constructor_runs + 1; }
};

ConstructorProbe g_probe;

bool starts_with(const char* s, const char* prefix)
{
    while (*prefix != '\0') {
        if (*s++ != *prefix++)
            return false;
    }
    return true;
}

bool equal(const char* a, const char* b) { return starts_with(a, b) && a[__builtin_strlen(b)] == '\0'; }

[[gnu::noinline]] int symbolize_target(int x) { return x * 3 + 1; }

// Effective permissions of the 4 KiB page holding `virt`, from the live tables via the physmap.
struct PageInfo {
    bool present = false;
    bool writable = false;   // writable at every level
    bool no_execute = false; // NX at some level
};

PageInfo lookup(uint64_t virt)
{
    PageInfo info;
    bool writable = true;
    bool nx = false;
    uint64_t table = arch::read_cr3() & arch::kPteAddressMask;
    for (int level = 3; level >= 0; --level) {
        const uint64_t index = (virt >> (12 + 9 * level)) & 511;
        const uint64_t entry =
            *arch::phys_to_virt(PhysicalAddress(table + index * 8)).as_ptr<const volatile uint64_t>();
        if ((entry & arch::kPtePresent) == 0)
            return info;
        writable = writable && (entry & arch::kPteWritable) != 0;
        nx = nx || (entry & arch::kPteNoExecute) != 0;
        if ((level == 1 || level == 2) && (entry & arch::kPteLargePage) != 0)
            break;
        table = entry & arch::kPteAddressMask;
    }
    info.present = true;
    info.writable = writable;
    info.no_execute = nx;
    return info;
}

bool nx_enabled() { return (arch::rdmsr(arch::kMsrEfer) & arch::kEferNxe) != 0; }

uint64_t addr(const volatile void* p) { return reinterpret_cast<uint64_t>(p); }

} // namespace

KTEST(boot, global_constructor_ran_once)
{
    const int runs = g_constructor_runs;
    KEXPECT_EQ(runs, 1);
    kernel::run_global_constructors(); // a second call must not run them again
    const int runs_after = g_constructor_runs;
    KEXPECT_EQ(runs_after, 1);
}

KTEST(boot, stack_canary_is_random)
{
    const uintptr_t guard = __stack_chk_guard;
    KEXPECT(guard != 0);
    KEXPECT(guard != kernel::kStackGuardLinkTimeValue);
    KEXPECT_EQ(guard & 0xff, 0u); // zero low byte: string functions stop at the canary
    // Not a repeated byte or an all-ones/all-zeros upper half.
    const uint64_t upper = guard >> 8;
    KEXPECT(upper != 0 && upper != 0xffffffffffffffull);
    KEXPECT(upper != (upper & 0xff) * 0x01010101010101ull);
}

KTEST(boot, symbolize_finds_functions)
{
    KASSERT(kernel::symbol_count() > 0);

    uint64_t offset = 99;
    const char* name = kernel::symbolize(addr(reinterpret_cast<const void*>(&kernel_main)), &offset);
    KASSERT(name != nullptr);
    KEXPECT(equal(name, "kernel_main"));
    KEXPECT_EQ(offset, 0u);

    name = kernel::symbolize(addr(reinterpret_cast<const void*>(&kernel_main)) + 5, &offset);
    KASSERT(name != nullptr);
    KEXPECT(equal(name, "kernel_main"));
    KEXPECT_EQ(offset, 5u);

    // A C++ function: the table holds demangled names.
    name = kernel::symbolize(addr(reinterpret_cast<const void*>(&symbolize_target)) + 1, &offset);
    KASSERT(name != nullptr);
    KEXPECT(starts_with(name, "(anonymous namespace)::symbolize_target(int)"));
    KEXPECT_EQ(offset, 1u);

    // An assembly label with .type/.size from boot.S.
    KEXPECT_EQ(kernel::symbol_address("boot_higher_half"), addr(boot_higher_half));

    // Nothing below the image.
    KEXPECT(kernel::symbolize(0x1000, &offset) == nullptr);
    KEXPECT(kernel::symbolize(arch::kPhysMapBase, &offset) == nullptr);
}

KTEST(boot, identity_map_removed)
{
    const uint64_t pml4 = arch::read_cr3() & arch::kPteAddressMask;
    const uint64_t entry0 = *arch::phys_to_virt(PhysicalAddress(pml4)).as_ptr<const volatile uint64_t>();
    KEXPECT_EQ(entry0 & arch::kPtePresent, 0u);
    KEXPECT(!lookup(0x100000).present); // where GRUB loaded us
    KEXPECT(!lookup(0).present);
}

KTEST(boot, kernel_image_is_w_xor_x)
{
    const uint64_t start = addr(__kernel_virt_start);
    const uint64_t end = addr(__kernel_virt_end);
    KASSERT(start == addr(__text_start));
    KASSERT(start < end && (start & 0xfff) == 0 && (end & 0xfff) == 0);

    const bool nx = nx_enabled();
    unsigned writable_and_executable = 0;
    unsigned mapped = 0;
    for (uint64_t page = start; page < end; page += 4096) {
        const PageInfo p = lookup(page);
        if (!p.present)
            continue;
        ++mapped;
        if (p.writable && !p.no_execute)
            ++writable_and_executable;
    }
    KEXPECT(mapped > 0);
    if (nx) {
        KEXPECT_EQ(writable_and_executable, 0u);
    } else {
        // Without NX, data pages are necessarily executable; boot.S documents the gap.
        ktest_ctx.failf(__FILE__, __LINE__, "CPU has no NX: W^X cannot be enforced ({} RW pages executable)",
                        writable_and_executable);
    }
}

KTEST(boot, section_permissions)
{
    const PageInfo text = lookup(addr(reinterpret_cast<const void*>(&symbolize_target)));
    KEXPECT(text.present);
    KEXPECT(!text.writable);
    KEXPECT(!text.no_execute);

    static const char kConstant[] = "read-only";
    const PageInfo rodata = lookup(addr(kConstant));
    KEXPECT(rodata.present);
    KEXPECT(!rodata.writable);
    if (nx_enabled())
        KEXPECT(rodata.no_execute);

    const PageInfo data = lookup(addr(&g_constructor_runs));
    KEXPECT(data.present);
    KEXPECT(data.writable);
    if (nx_enabled())
        KEXPECT(data.no_execute);

    const PageInfo ksyms = lookup(addr(__ksyms_start));
    KEXPECT(ksyms.present);
    KEXPECT(!ksyms.writable);

    // CR0.WP makes the kernel itself honour read-only pages.
    KEXPECT((arch::read_cr0() & arch::kCr0WriteProtect) != 0);
}

KTEST(boot, stack_guard_page_unmapped)
{
    KEXPECT(!lookup(addr(boot_stack_guard)).present);
    KEXPECT(lookup(addr(boot_stack_bottom)).present);
    KEXPECT(lookup(addr(boot_stack_top) - 8).present);
}

KTEST(boot, physmap_covers_4_gib)
{
    const PageInfo low = lookup(arch::kPhysMapBase + 0xb8000);
    KEXPECT(low.present);
    KEXPECT(low.writable);
    const PageInfo high = lookup(arch::kPhysMapBase + arch::kPhysMapSize - 4096);
    KEXPECT(high.present);
    if (nx_enabled())
        KEXPECT(high.no_execute);
    // Boot maps exactly 4 GiB; the frame allocator later extends the physmap over RAM above it only.
    if (arch::physmap_top() <= arch::kPhysMapSize)
        KEXPECT(!lookup(arch::kPhysMapBase + arch::kPhysMapSize).present);
    // The physmap and the image alias the same bytes.
    const int through_physmap = *arch::phys_to_virt(arch::kernel_virt_to_phys(const_cast<int*>(&g_constructor_runs)))
                                     .as_ptr<const volatile int>();
    const int through_image = g_constructor_runs;
    KEXPECT_EQ(through_physmap, through_image);
}
