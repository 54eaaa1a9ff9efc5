// x86_64 thread support for the Loom of Fate: see thread_arch.h and sched/thread.h.
#include "arch/x86_64/thread_arch.h"

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/paging.h"
#include "lib/panic.h"
#include "lib/string.h"
#include "mm/frames.h"
#include "sync/irq_spinlock.h"

namespace arch {

namespace {

constexpr uint64_t kCr0MonitorCoprocessor = 1ull << 1; // MP: wait/fwait honour TS
constexpr uint64_t kCr0Emulation = 1ull << 2;          // EM: x87 instructions trap (must be clear)
constexpr uint64_t kCr0TaskSwitched = 1ull << 3;       // TS: lazy-FPU trap (unused: eager switching)
constexpr uint64_t kCr4Osfxsr = 1ull << 9;             // fxsave/fxrstor + SSE enabled
constexpr uint64_t kCr4Osxmmexcpt = 1ull << 10;        // SIMD FP exceptions raise #XM
constexpr uint64_t kStackPages = kKernelStackBytes / kPageSize;
constexpr uint32_t kBitmapWords = kKernelStackSlots / 64;

// What a new thread's FPU/SSE state starts as: fninit defaults, MXCSR 0x1f80 (all masked).
alignas(16) constinit uint8_t g_initial_fpu[kFpuStateBytes]{};
bool g_ready = false;

// Slot bitmap only: distinct slots use distinct PTEs of tables made at init, so the page-table
// edits themselves need no lock. Ranked between the heap and the frame allocator: taken with
// neither held, and it takes none itself.
constinit kernel::sync::IrqSpinLock g_slots_lock{"kernel stacks", static_cast<kernel::sync::LockRank>(350)};
constinit uint64_t g_slot_bitmap[kBitmapWords]{};
constinit uint32_t g_slots_in_use = 0;
constinit uint32_t g_slots_peak = 0;

inline void write_cr0(uint64_t v) { asm volatile("mov %0, %%cr0" : : "r"(v) : "memory"); }
inline void write_cr4(uint64_t v) { asm volatile("mov %0, %%cr4" : : "r"(v) : "memory"); }

PhysicalAddress page_table_frame(void*)
{
    auto frame = mm::frames_allocate(0, mm::Zero::Yes, mm::ZoneLimit::Below4GiB);
    return frame ? *frame : PhysicalAddress();
}

uint64_t slot_base(uint32_t slot) { return kKernelStackAreaBase + uint64_t{slot} * kKernelStackSlotBytes; }

void unmap_stack_pages(uint64_t bottom, uint64_t pages)
{
    for (uint64_t i = 0; i < pages; ++i) {
        auto frame = unmap_kernel_page(VirtualAddress(bottom + i * kPageSize));
        if (!frame)
            kernel::panic("Loom of Fate: kernel stack page {:#x} could not be unmapped: {}", bottom + i * kPageSize,
                          to_string(frame.error()));
        mm::frames_free(*frame, 0);
    }
}

} // namespace

void thread_arch_init()
{
    if (g_ready)
        return;
    write_cr0((read_cr0() & ~(kCr0Emulation | kCr0TaskSwitched)) | kCr0MonitorCoprocessor);
    write_cr4(read_cr4() | kCr4Osfxsr | kCr4Osxmmexcpt);
    const uint32_t mxcsr = 0x1f80;
    asm volatile("fninit\n\tldmxcsr %1\n\tfxsave64 %0" : "=m"(g_initial_fpu) : "m"(mxcsr) : "memory");

    const PageTableFrameSource source{nullptr, &page_table_frame};
    auto tables = populate_kernel_tables(VirtualAddress(kKernelStackAreaBase),
                                         VirtualAddress(kKernelStackAreaBase + kKernelStackAreaBytes), source);
    if (!tables)
        kernel::panic("Loom of Fate: cannot build the kernel-stack area's page tables: {}", to_string(tables.error()));
    g_ready = true;
}

void thread_context_init(ThreadContext& context, uint64_t stack_top, void (*start)(void*), void* arg)
{
    memcpy(context.fpu, g_initial_fpu, kFpuStateBytes);
    // What arch_context_switch pops, lowest address first: r15 r14 r13 r12 rbx rbp, then its
    // return address. The trampoline's `call` then runs with rsp 16-aligned, as the ABI wants.
    // Above that, 16 zero bytes: a null return address and frame pointer end any backtrace.
    auto* sp = reinterpret_cast<uint64_t*>((stack_top & ~uint64_t{15}) - 16);
    sp[0] = 0;
    sp[1] = 0;
    *--sp = reinterpret_cast<uint64_t>(&arch_thread_trampoline);
    *--sp = 0;                                 // rbp
    *--sp = 0;                                 // rbx
    *--sp = reinterpret_cast<uint64_t>(start); // r12
    *--sp = reinterpret_cast<uint64_t>(arg);   // r13
    *--sp = 0;                                 // r14
    *--sp = 0;                                 // r15
    context.sp = reinterpret_cast<uint64_t>(sp);
}

void thread_context_init_current(ThreadContext& context)
{
    // Filled in by the first switch away from the running code.
    memcpy(context.fpu, g_initial_fpu, kFpuStateBytes);
    context.sp = 0;
}

// thread_context_switch(from, to) is defined in context_switch.S (it is arch_context_switch),
// which addresses the context by these offsets.
static_assert(offsetof(ThreadContext, sp) == 0 && offsetof(ThreadContext, fpu) == 16);

void thread_set_kernel_stack(uint64_t top) { set_kernel_stack(top); }

namespace {
using SwitchPoint = void (*)();
constinit SwitchPoint g_irq_exit_switch = nullptr;

InterruptFrame* irq_exit_switch(InterruptFrame* frame)
{
    // The frame lives on the interrupted thread's stack; switching stacks inside the call keeps it
    // there until that thread resumes and this returns it to isr.S.
    g_irq_exit_switch();
    return frame;
}
} // namespace

void thread_install_irq_exit_switch(void (*switch_point)())
{
    g_irq_exit_switch = switch_point;
    set_irq_exit_hook(switch_point != nullptr ? &irq_exit_switch : nullptr);
}

lib::Expected<KernelStack, KernelStackError> kernel_stack_allocate()
{
    if (!g_ready)
        return lib::unexpected(KernelStackError::NotInitialized);
    uint32_t slot = kKernelStackSlots;
    {
        kernel::sync::IrqSpinLock::Guard guard{g_slots_lock};
        for (uint32_t w = 0; w < kBitmapWords && slot == kKernelStackSlots; ++w) {
            if (g_slot_bitmap[w] == ~uint64_t{0})
                continue;
            const uint32_t bit = static_cast<uint32_t>(__builtin_ctzll(~g_slot_bitmap[w]));
            g_slot_bitmap[w] |= uint64_t{1} << bit;
            slot = w * 64 + bit;
        }
        if (slot == kKernelStackSlots)
            return lib::unexpected(KernelStackError::NoSlot);
        if (++g_slots_in_use > g_slots_peak)
            g_slots_peak = g_slots_in_use;
    }

    const uint64_t bottom = slot_base(slot) + kKernelStackGuardBytes;
    const PageTableFrameSource no_tables{};
    for (uint64_t i = 0; i < kStackPages; ++i) {
        auto frame = mm::frames_allocate(0);
        if (frame) {
            auto mapped = map_kernel_page(VirtualAddress(bottom + i * kPageSize), *frame, no_tables);
            if (mapped)
                continue;
            kernel::panic("Loom of Fate: mapping kernel stack page {:#x} failed: {}", bottom + i * kPageSize,
                          to_string(mapped.error()));
        }
        unmap_stack_pages(bottom, i);
        kernel::sync::IrqSpinLock::Guard guard{g_slots_lock};
        g_slot_bitmap[slot / 64] &= ~(uint64_t{1} << (slot % 64));
        --g_slots_in_use;
        return lib::unexpected(KernelStackError::OutOfMemory);
    }
    return KernelStack{bottom, bottom + kKernelStackBytes, slot};
}

void kernel_stack_free(const KernelStack& stack)
{
    if (stack.slot >= kKernelStackSlots || stack.bottom != slot_base(stack.slot) + kKernelStackGuardBytes)
        kernel::panic("Loom of Fate: freeing an invalid kernel stack (slot {}, bottom {:#x})", stack.slot,
                      stack.bottom);
    unmap_stack_pages(stack.bottom, kStackPages);
    kernel::sync::IrqSpinLock::Guard guard{g_slots_lock};
    const uint64_t bit = uint64_t{1} << (stack.slot % 64);
    if ((g_slot_bitmap[stack.slot / 64] & bit) == 0)
        kernel::panic("Loom of Fate: kernel stack slot {} freed twice", stack.slot);
    g_slot_bitmap[stack.slot / 64] &= ~bit;
    --g_slots_in_use;
}

KernelStackStats kernel_stack_stats()
{
    kernel::sync::IrqSpinLock::Guard guard{g_slots_lock};
    return KernelStackStats{g_slots_in_use, g_slots_peak, kKernelStackSlots};
}

bool kernel_stack_guard_hit(uint64_t address, uint32_t* slot)
{
    if (!in_kernel_stack_area(address))
        return false;
    const uint64_t offset = address - kKernelStackAreaBase;
    if (offset % kKernelStackSlotBytes >= kKernelStackGuardBytes)
        return false;
    if (slot != nullptr)
        *slot = static_cast<uint32_t>(offset / kKernelStackSlotBytes);
    return true;
}

} // namespace arch
