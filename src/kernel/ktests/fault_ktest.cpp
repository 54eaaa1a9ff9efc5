// Deliberate faults the Heartwood must detect, each with its specific report, and recover from in
// a test: a fault probe (kernel/panic.h) stands in for the halt, keeps the report's text and
// resumes here, and each case then checks that the state is still consistent (interrupts and
// preemption as before, no spinlock held, the heap's invariants, the heap still serving).
// Faults that must halt run one per boot instead (diag/fault_inject.h, scripts/qemu-fault-test.sh).
#include <initializer_list>
#include <limits.h>

#include "arch/cpu.h"
#include "arch/x86_64/interrupts.h"
#include "blocking/mutex.h"
#include "diag/ktest.h"
#include "kernel/panic.h"
#include "lib/string.h"
#include "mm/kmalloc.h"
#include "sched/scheduler.h"
#include "sync/interrupt_guard.h"
#include "sync/irq_spinlock.h"
#include "sync/preempt.h"

namespace {

namespace sync = kernel::sync;
using kernel::CaughtFault;
using kernel::kProbeSoftwarePanic;
using kernel::probe_fault;

bool contains(const char* text, const char* needle) { return lib::StringView(text).contains(needle); }

#define KEXPECT_REPORT(caught, needle)                                                                                 \
    do {                                                                                                               \
        if (!contains((caught).message, needle))                                                                       \
            ktest_ctx.failf(__FILE__, __LINE__, "report '{}' lacks '{}'", (caught).message, needle);                   \
    } while (0)

// The Heartwood carries on as if nothing happened: ktests run in a thread context with interrupts
// on, preemption enabled and no spinlock held, and the heap is intact and serving.
void expect_consistent(kernel::ktest::Context& ktest_ctx)
{
    KEXPECT(arch::interrupts_enabled());
    KEXPECT_EQ(sync::preempt_count(), 0u);
#if AETHELOS_SYNC_CHECKS
    KEXPECT_EQ(sync::this_cpu().held_count, 0u);
#endif
    KEXPECT(mm::heap_check_invariants().ok());
    void* p = mm::kmalloc(100);
    KEXPECT(p != nullptr);
    mm::kfree(p);
}

uint64_t invalid_frees()
{
    static mm::HeapStats stats; // 4 KiB: not on the stack
    mm::heap_stats(stats);
    return stats.invalid_frees;
}

constinit sync::IrqSpinLock g_outer{"fault-probe-outer", sync::LockRank::kDevice};
constinit sync::IrqSpinLock g_lower{"fault-probe-lower", static_cast<sync::LockRank>(350)};
constinit sync::Mutex g_mutex{"fault-probe-mutex"};

uint64_t g_not_heap[4];
volatile uint64_t g_zero = 0;
volatile uint64_t g_non_canonical = 0x8000000000000000ull;

} // namespace

KTEST(fault, probe_returns_false_when_nothing_faults)
{
    CaughtFault caught;
    int ran = 0;
    KEXPECT(!probe_fault(kProbeSoftwarePanic, caught, [&] { ++ran; }));
    KEXPECT_EQ(ran, 1);
    KEXPECT_EQ(caught.message[0], '\0');
    expect_consistent(ktest_ctx);
}

// ---- The Mana Pool ----

KTEST(fault, double_free)
{
    const uint64_t before = invalid_frees();
    void* p = mm::kmalloc(3000);
    KASSERT(p != nullptr);
    CaughtFault caught;
    bool hit;
    {
        // Nobody (not even an interrupt handler) may get the block between the two frees.
        sync::InterruptGuard no_irqs;
        hit = probe_fault(kProbeSoftwarePanic, caught, [p] {
            mm::kfree(p);
            mm::kfree(p);
        });
    }
    KASSERT(hit);
    KEXPECT_REPORT(caught, "Mana Pool: kfree(");
    KEXPECT_REPORT(caught, "heap memory is not allocated (double free)");
    KEXPECT_EQ(invalid_frees(), before + 1);
    expect_consistent(ktest_ctx);
}

KTEST(fault, invalid_free)
{
    const uint64_t before = invalid_frees();
    CaughtFault caught;
    KASSERT(probe_fault(kProbeSoftwarePanic, caught, [] { mm::kfree(&g_not_heap[1]); }));
    KEXPECT_REPORT(caught, "Mana Pool: kfree(");
    KEXPECT_REPORT(caught, "pointer is not heap memory");
    uint64_t on_stack = 0;
    KASSERT(probe_fault(kProbeSoftwarePanic, caught, [&on_stack] { mm::kfree(&on_stack); }));
    KEXPECT_REPORT(caught, "pointer is not heap memory");
    KEXPECT_EQ(invalid_frees(), before + 2);
    expect_consistent(ktest_ctx);
}

KTEST(fault, free_of_a_pointer_into_a_block)
{
    const uint64_t before = invalid_frees();
    for (size_t size : {size_t{64}, size_t{3000}, size_t{256 * 1024}}) {
        auto* p = static_cast<uint8_t*>(mm::kmalloc(size));
        KASSERT(p != nullptr);
        p[0] = 0x5a;
        CaughtFault caught;
        KASSERT(probe_fault(kProbeSoftwarePanic, caught, [p] { mm::kfree(p + 16); }));
        KEXPECT_REPORT(caught, "pointer into the middle of a heap block");
        // The rejected free changed nothing: the block is still the caller's.
        KEXPECT_EQ(p[0], 0x5a);
        KEXPECT(mm::ksize(p) >= size);
        mm::kfree(p);
    }
    KEXPECT_EQ(invalid_frees(), before + 3);
    expect_consistent(ktest_ctx);
}

KTEST(fault, oom_at_the_nth_allocation)
{
    static mm::HeapStats before, after;
    void* got[3] = {};
    {
        // The countdown counts every kernel allocation: keep interrupt handlers out of it.
        sync::InterruptGuard no_irqs;
        mm::heap_stats(before);
        mm::heap_fail_nth_allocation(3);
        for (void*& p : got)
            p = mm::kmalloc(48);
        mm::heap_stats(after);
    }
    KEXPECT(got[0] != nullptr);
    KEXPECT(got[1] != nullptr);
    KEXPECT(got[2] == nullptr);
    KEXPECT_EQ(after.injected_failures, before.injected_failures + 1);
    KEXPECT_EQ(after.failed_allocations, before.failed_allocations + 1);
    mm::kfree(got[0]);
    mm::kfree(got[1]);

    // Plain operator new may not return nullptr: an injected failure there is a panic naming it.
    struct Payload {
        uint64_t words[5];
    };
    CaughtFault caught;
    Payload* leaked = nullptr;
    bool hit;
    {
        sync::InterruptGuard no_irqs;
        hit = probe_fault(kProbeSoftwarePanic, caught, [&leaked] {
            mm::heap_fail_nth_allocation(1);
            leaked = new Payload{};
        });
    }
    KEXPECT(hit);
    KEXPECT(leaked == nullptr);
    KEXPECT_REPORT(caught, "Mana Pool: operator new of 40 bytes");
    KEXPECT_REPORT(caught, "out of memory");
    expect_consistent(ktest_ctx);
}

// ---- Lock misuse (the debug lock checker) ----
#if AETHELOS_SYNC_CHECKS

KTEST(fault, recursive_spinlock)
{
    CaughtFault caught;
    {
        kernel::sync::IrqSpinLock::Guard held{g_outer};
        // Reported before the second acquisition changes anything: still held exactly once.
        KEXPECT(probe_fault(kProbeSoftwarePanic, caught, [] { kernel::sync::IrqSpinLock::Guard again{g_outer}; }));
        KEXPECT(g_outer.is_held_by_this_cpu());
        KEXPECT_EQ(sync::preempt_count(), 1u);
    }
    KEXPECT(!g_outer.is_locked());
    KEXPECT_REPORT(caught, "recursive acquisition of spinlock 'fault-probe-outer'");
    KEXPECT_REPORT(caught, "acquired again at");
    expect_consistent(ktest_ctx);
}

KTEST(fault, lock_order_inversion)
{
    CaughtFault caught;
    {
        kernel::sync::IrqSpinLock::Guard held{g_outer}; // rank 500, then rank 350: backwards
        KEXPECT(probe_fault(kProbeSoftwarePanic, caught, [] { kernel::sync::IrqSpinLock::Guard lower{g_lower}; }));
        KEXPECT(!g_lower.is_locked());
    }
    KEXPECT_REPORT(caught, "lock order inversion");
    KEXPECT_REPORT(caught, "acquires spinlock 'fault-probe-lower' (rank 350)");
    KEXPECT_REPORT(caught, "while holding spinlock 'fault-probe-outer' (rank 500)");
    // The right order is fine.
    {
        kernel::sync::IrqSpinLock::Guard lower{g_lower};
        kernel::sync::IrqSpinLock::Guard outer{g_outer};
    }
    expect_consistent(ktest_ctx);
}

KTEST(fault, blocking_in_atomic_context)
{
    CaughtFault caught;
    {
        kernel::sync::IrqSpinLock::Guard held{g_outer};
        KEXPECT(probe_fault(kProbeSoftwarePanic, caught, [] { sched::sleep_for(1); }));
    }
    KEXPECT_REPORT(caught, "may not sleep (sched::sleep_for) while holding spinlock 'fault-probe-outer'");

    {
        kernel::sync::IrqSpinLock::Guard held{g_outer};
        KEXPECT(probe_fault(kProbeSoftwarePanic, caught, [] { auto m = g_mutex.lock(); }));
    }
    KEXPECT_REPORT(caught, "may not sleep (Mutex::lock) while holding spinlock 'fault-probe-outer'");
    KEXPECT(!g_mutex.is_locked());

    {
        sync::PreemptGuard no_preempt;
        KEXPECT(probe_fault(kProbeSoftwarePanic, caught, [] { sched::sleep_for(1); }));
    }
    KEXPECT_REPORT(caught, "may not sleep (sched::sleep_for) with preemption disabled (preempt count 1)");
    expect_consistent(ktest_ctx);
}

#endif // AETHELOS_SYNC_CHECKS

// ---- CPU exceptions, through the full decoded report ----

KTEST(fault, divide_by_zero)
{
    CaughtFault caught;
    KASSERT(probe_fault(arch::kDivideError, caught, [] {
        uint64_t low = 42, high = 0;
        asm volatile("divq %2" : "+a"(low), "+d"(high) : "r"(g_zero));
    }));
    KEXPECT_EQ(caught.vector, static_cast<int>(arch::kDivideError));
    KEXPECT_REPORT(caught, "Divide Error (#DE, vector 0) at rip ");
    expect_consistent(ktest_ctx);
}

KTEST(fault, null_dereference)
{
    CaughtFault caught;
    KASSERT(probe_fault(arch::kPageFault, caught, [] {
        uint64_t value;
        // Through asm: in C++ UBSan (debug builds) would report the null pointer first.
        asm volatile("movq (%1), %0" : "=r"(value) : "r"(g_zero) : "memory");
    }));
    KEXPECT_EQ(caught.cr2, 0u);
    KEXPECT_REPORT(caught, "Page Fault (#PF, vector 14) at rip ");
    KEXPECT_REPORT(caught, ": not-present page, read, kernel mode at address 0x0 (error code 0x0)");
    KEXPECT_REPORT(caught, "; a null pointer dereference");
    expect_consistent(ktest_ctx);
}

KTEST(fault, general_protection)
{
    CaughtFault caught;
    KASSERT(probe_fault(arch::kGeneralProtection, caught, [] {
        uint64_t value;
        asm volatile("movq (%1), %0" : "=r"(value) : "r"(g_non_canonical) : "memory");
    }));
    KEXPECT_EQ(caught.error_code, 0u);
    KEXPECT_REPORT(caught, "General Protection (#GP, vector 13) at rip ");
    KEXPECT_REPORT(caught, "no selector (error code 0)");
    KEXPECT_REPORT(caught, "a non-canonical address");
    expect_consistent(ktest_ctx);
}

KTEST(fault, invalid_opcode)
{
    CaughtFault caught;
    KASSERT(probe_fault(arch::kInvalidOpcode, caught, [] { asm volatile("ud2"); }));
    KEXPECT_REPORT(caught, "Invalid Opcode (#UD, vector 6) at rip ");
    // The rip is the ud2 itself (a fault, not a trap).
    const auto* code = reinterpret_cast<const volatile uint8_t*>(caught.rip);
    KEXPECT_EQ(code[0], 0x0fu);
    KEXPECT_EQ(code[1], 0x0bu);
    expect_consistent(ktest_ctx);
}

KTEST(fault, panic_text_is_captured)
{
    CaughtFault caught;
    KASSERT(probe_fault(kProbeSoftwarePanic, caught, [] { kernel::panic("fault-probe: {} {}", "on", "purpose"); }));
    KEXPECT_EQ(caught.vector, kProbeSoftwarePanic);
    KEXPECT(lib::StringView(caught.message) == "fault-probe: on purpose");
    expect_consistent(ktest_ctx);
}

// ---- UBSan (debug builds) ----
#if AETHELOS_DEBUG_CHECKS

namespace {
volatile int g_int_max = INT_MAX;
volatile int g_sink;
volatile unsigned g_shift = 40;
} // namespace

KTEST(fault, ubsan_signed_overflow)
{
    CaughtFault caught;
    KASSERT(probe_fault(kProbeSoftwarePanic, caught, [] { g_sink = g_int_max + 1; }));
    KEXPECT_REPORT(caught, "UBSan: signed integer overflow: 2147483647 + 1 cannot be represented in type 'int'");
    KEXPECT_REPORT(caught, "fault_ktest.cpp:");
    KASSERT(probe_fault(kProbeSoftwarePanic, caught, [] { g_sink = 1 << g_shift; }));
    KEXPECT_REPORT(caught, "UBSan: shift exponent 40 is too large for 32-bit type 'int'");
    expect_consistent(ktest_ctx);
}

#endif // AETHELOS_DEBUG_CHECKS
