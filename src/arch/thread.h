#pragma once
// The arch interface the Loom of Fate builds its threads on: a saved context and the switch between
// two, the kernel stacks (with their guard pages) and the FPU state. x86_64 implements it in
// arch/x86_64/thread_arch.cpp; sched/thread.h is its user.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"

namespace arch {

inline constexpr size_t kFpuStateBytes = 512; // x86_64 FXSAVE image
inline constexpr uint64_t kKernelStackBytes = 16 * 1024;

// A thread's saved CPU state while it is off the CPU: its kernel stack pointer (the callee-saved
// registers sit on that stack) and its FPU/SSE registers.
struct ThreadContext {
    uint64_t sp = 0;
    alignas(16) uint8_t fpu[kFpuStateBytes];
};

struct KernelStack {
    uint64_t bottom = 0; // lowest mapped address; the guard lies below it
    uint64_t top = 0;    // initial stack pointer
    uint32_t slot = UINT32_MAX;
    bool valid() const { return top != 0; }
};

enum class KernelStackError : uint8_t { NotInitialized, NoSlot, OutOfMemory };

struct KernelStackStats {
    uint32_t in_use = 0;
    uint32_t peak = 0;
    uint32_t capacity = 0;
};

// Enables the FPU/SSE for fxsave (CR0.EM clear, CR0.MP set, CR4.OSFXSR/OSXMMEXCPT), captures the
// initial FPU image and builds the kernel-stack area's page tables. Idempotent.
void thread_arch_init();
// A new thread: its first switch-in calls start(arg) on `stack_top` with a fresh FPU state.
// start must never return.
void thread_context_init(ThreadContext& context, uint64_t stack_top, void (*start)(void*), void* arg);
// The code already running (the boot flow): filled in when it is first switched away from.
void thread_context_init_current(ThreadContext& context);
// Saves the running code's state into `from`, resumes `to`; returns when someone switches back
// to `from`. Interrupts must be disabled.
void thread_context_switch(ThreadContext& from, ThreadContext& to);
// The stack the CPU loads on an entry from user mode (x86_64: TSS.RSP0).
void thread_set_kernel_stack(uint64_t top);
// Installs the preemption point at the outermost interrupt exit: `switch_point` runs there (with
// interrupts disabled, the IRQ already acknowledged) and may switch threads; the interrupted
// context resumes when the interrupted thread is switched back in.
void thread_install_irq_exit_switch(void (*switch_point)());

lib::Expected<KernelStack, KernelStackError> kernel_stack_allocate();
// Unmaps the stack and gives its frames back. Panics on a stack not from kernel_stack_allocate.
void kernel_stack_free(const KernelStack& stack);
KernelStackStats kernel_stack_stats();

} // namespace arch
