// The Heartwood's hardening, checked on the live system: NX on data, stacks and heap (executing
// there faults, recovered by a fault probe), W^X over every live mapping, no user-accessible
// page, SMEP/SMAP as the CPU offers them, and an unmapped guard under every kernel stack.
// (The stack-protector canary: boot.stack_canary_is_random here, a smash per boot in
// scripts/qemu-fault-test.sh.)
#include <initializer_list>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/paging.h"
#include "arch/x86_64/thread_arch.h"
#include "diag/ktest.h"
#include "kernel/panic.h"
#include "lib/log.h"
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"

namespace {

using kernel::CaughtFault;

constexpr uint8_t kRet = 0xc3;

bool nx_enabled() { return (arch::rdmsr(arch::kMsrEfer) & arch::kEferNxe) != 0; }

// Calls a single `ret` written at `code`; with NX it must fault on the fetch, at that address.
void expect_no_execute(kernel::ktest::Context& ktest_ctx, volatile uint8_t* code, const char* where)
{
    *code = kRet;
    const auto address = reinterpret_cast<uint64_t>(code);
    CaughtFault caught;
    const bool faulted =
        kernel::probe_fault(arch::kPageFault, caught, [address] { reinterpret_cast<void (*)()>(address)(); });
    if (!faulted) {
        ktest_ctx.failf(__FILE__, __LINE__, "code on the {} at {:#x} ran: not NX", where, address);
        return;
    }
    KEXPECT_EQ(caught.cr2, address);
    KEXPECT_EQ(caught.rip, address);
    // Present, instruction fetch, kernel mode: 0x11.
    KEXPECT_EQ(caught.error_code, 0x11u);
    if (!lib::StringView(caught.message).contains("protection violation, instruction fetch, kernel mode"))
        ktest_ctx.failf(__FILE__, __LINE__, "report '{}'", caught.message);
    if (!lib::StringView(caught.message).contains("executing a no-execute page"))
        ktest_ctx.failf(__FILE__, __LINE__, "report '{}' lacks the NX hint", caught.message);
}

uint8_t g_data_code[64] = {1}; // .data
uint8_t g_bss_code[64];        // .bss

} // namespace

KTEST(hardening, nx_is_enabled)
{
    // Every x86_64 CPU QEMU models has NX; a CPU without it would leave data executable.
    KEXPECT(nx_enabled());
}

KTEST(hardening, nx_on_data)
{
    KASSERT(nx_enabled());
    expect_no_execute(ktest_ctx, &g_data_code[8], "kernel data");
    expect_no_execute(ktest_ctx, &g_bss_code[8], "kernel bss");
}

namespace {

// Runs on a Loom of Fate thread's own stack (the kernel-stack area, not the boot stack).
void nx_on_thread_stack(void* context)
{
    auto& ctx = *static_cast<kernel::ktest::Context*>(context);
    volatile uint8_t code[64] = {};
    expect_no_execute(ctx, &code[8], "thread stack");
}

} // namespace

KTEST(hardening, nx_on_the_stack)
{
    KASSERT(nx_enabled());
    volatile uint8_t code[64] = {};
    expect_no_execute(ktest_ctx, &code[8], "boot stack"); // the heartwood runs its ktests here
    auto thread = sched::spawn(&nx_on_thread_stack, &ktest_ctx, "nx-stack");
    KASSERT(static_cast<bool>(thread));
    sched::join(*thread);
}

KTEST(hardening, nx_on_the_heap)
{
    KASSERT(nx_enabled());
    for (size_t size : {size_t{64}, size_t{3000}, size_t{256 * 1024}}) {
        auto* p = static_cast<volatile uint8_t*>(mm::kmalloc(size));
        KASSERT(p != nullptr);
        expect_no_execute(ktest_ctx, p, "heap");
        mm::kfree(const_cast<uint8_t*>(p));
    }
}

KTEST(hardening, no_mapping_is_writable_and_executable)
{
    const arch::MappingAudit audit = arch::audit_live_mappings();
    lib::log::info("hardening: {} tables, {} 4 KiB / {} 2 MiB / {} 1 GiB leaves; {} W+X, {} user, {} unreachable",
                   audit.tables, audit.leaves_4kib, audit.leaves_2mib, audit.leaves_1gib, audit.writable_executable,
                   audit.user_accessible, audit.unreachable_tables);
    KEXPECT(audit.nx_enabled);
    KEXPECT(audit.leaves_4kib > 0);                     // the image and the kernel stacks
    KEXPECT(audit.leaves_2mib + audit.leaves_1gib > 0); // the physmap
    KEXPECT_EQ(audit.unreachable_tables, 0u);
    if (audit.writable_executable != 0)
        ktest_ctx.failf(__FILE__, __LINE__, "{} writable+executable mapping(s), the first at {:#x}",
                        audit.writable_executable, audit.first_writable_executable);
    // Nothing is mapped for user mode yet, which is also what keeps SMEP/SMAP from ever firing.
    if (audit.user_accessible != 0)
        ktest_ctx.failf(__FILE__, __LINE__, "{} user-accessible mapping(s), the first at {:#x}", audit.user_accessible,
                        audit.first_user_accessible);
}

KTEST(hardening, smep_and_smap_match_the_cpu)
{
    const uint64_t cr4 = arch::read_cr4();
    KEXPECT_EQ((cr4 & arch::kCr4Smep) != 0, arch::cpu_has_smep());
    KEXPECT_EQ((cr4 & arch::kCr4Smap) != 0, arch::cpu_has_smap());
    // SMAP checks are suspended while RFLAGS.AC is set: nothing may leave it on.
    KEXPECT_EQ(arch::read_rflags() & (1ull << 18), 0u);
    lib::log::info("hardening: SMEP {}, SMAP {} (CPUID 7.EBX {:#x})", (cr4 & arch::kCr4Smep) ? "on" : "off",
                   (cr4 & arch::kCr4Smap) ? "on" : "off", arch::cpuid(0).eax >= 7 ? arch::cpuid(7, 0).ebx : 0);
}

namespace {

constexpr size_t kMaxStacks = 256;

struct StackList {
    arch::KernelStack stacks[kMaxStacks];
    size_t count = 0;
    size_t threads = 0;
    size_t overflow = 0;
};

// Runs under the scheduler lock: only copies.
void collect_stack(const sched::Thread& thread, void* context)
{
    auto& list = *static_cast<StackList*>(context);
    ++list.threads;
    if (!thread.stack().valid())
        return; // the boot thread keeps the boot stack (boot.stack_guard_page_unmapped)
    if (list.count == kMaxStacks) {
        ++list.overflow;
        return;
    }
    list.stacks[list.count++] = thread.stack();
}

bool page_mapped(uint64_t virt) { return static_cast<bool>(arch::kernel_page_frame(VirtualAddress(virt))); }

void park_briefly(void*) { sched::sleep_for(50); }

} // namespace

KTEST(hardening, every_kernel_stack_has_an_unmapped_guard)
{
    // At least one more thread than the standing ones, sleeping while the stacks are walked.
    auto extra = sched::spawn(&park_briefly, nullptr, "guard-check");
    KASSERT(static_cast<bool>(extra));

    static StackList list; // ~6 KiB
    list = StackList{};
    sched::LoomSample sample;
    KASSERT(sched::sample(sample, &collect_stack, &list));
    KEXPECT_EQ(list.overflow, 0u);
    KEXPECT(list.count >= 2); // idle and guard-check at least

    for (size_t i = 0; i < list.count; ++i) {
        const arch::KernelStack& s = list.stacks[i];
        KEXPECT_EQ(s.top - s.bottom, arch::kKernelStackBytes);
        KEXPECT(arch::in_kernel_stack_area(s.bottom));
        // The stack itself is mapped...
        for (uint64_t page = s.bottom; page < s.top; page += 4096)
            if (!page_mapped(page))
                ktest_ctx.failf(__FILE__, __LINE__, "stack slot {}: page {:#x} not mapped", s.slot, page);
        // ...and everything below it down to the slot's start is not, and is known as a guard.
        for (uint64_t page = s.bottom - arch::kKernelStackGuardBytes; page < s.bottom; page += 4096) {
            if (page_mapped(page))
                ktest_ctx.failf(__FILE__, __LINE__, "stack slot {}: guard page {:#x} is mapped", s.slot, page);
            uint32_t slot = UINT32_MAX;
            KEXPECT(arch::kernel_stack_guard_hit(page, &slot));
            KEXPECT_EQ(slot, s.slot);
        }
    }
    sched::join(*extra);
    lib::log::info("hardening: {} thread(s), {} kernel stack(s), every guard unmapped", list.threads, list.count);
}
