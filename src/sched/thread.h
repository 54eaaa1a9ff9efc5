#pragma once
// sched::Thread: the Loom of Fate's thread control block, and the arch hooks it is built on.
//
// A Thread lives in the "thread" ObjectCache of the Mana Pool (never the general heap); its kernel
// stack is kKernelStackBytes from the frame allocator, mapped in the arch's kernel-stack area with
// an unmapped guard page below (see arch/x86_64/thread_arch.h). Scheduling fields (state, level,
// quantum, CPU time, switch counts) live in the embedded SchedEntity and belong to the policy
// (sched/policy.h); the scheduler (sched/scheduler.h) owns the rest, under its lock.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "sched/sched_entity.h"
#include "sched/thread_state.h"

// ---- The arch interface the Loom of Fate needs (x86_64: arch/x86_64/thread_arch.cpp) ----
namespace arch {

inline constexpr size_t kFpuStateBytes = 512;      // x86_64 FXSAVE image
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

namespace sched {

inline constexpr size_t kThreadNameBytes = 32;

using ThreadEntry = void (*)(void* arg);

class Thread {
public:
    Thread(uint64_t id, const char* name, Priority priority, uint32_t quantum_ticks);
    Thread(const Thread&) = delete;
    Thread& operator=(const Thread&) = delete;

    uint64_t id() const { return m_entity.id(); }
    const char* name() const { return m_name; }
    ThreadState state() const { return m_entity.state(); }
    Priority priority() const { return m_entity.base_priority(); }
    uint32_t quantum_ticks() const { return m_entity.quantum_ticks(); }
    uint64_t cpu_ticks() const { return m_entity.cpu_ticks(); }
    const SchedEntity& entity() const { return m_entity; }
    const arch::KernelStack& stack() const { return m_stack; }
    bool is_idle() const { return m_entity.is_idle_thread(); }

private:
    friend struct ThreadAccess; // the scheduler's internals (scheduler.cpp)

    SchedEntity m_entity;
    char m_name[kThreadNameBytes] = {};
    arch::KernelStack m_stack;      // none for the boot thread (it keeps the boot stack)
    ThreadEntry m_entry = nullptr;
    void* m_arg = nullptr;
    Thread* m_joiner = nullptr;     // blocked in join() on this thread
    Thread* m_all_next = nullptr;   // every live thread, for statistics and lookups
    Thread* m_all_prev = nullptr;
    Thread* m_zombie_next = nullptr; // detached and exited: the reaper frees it
    bool m_detached = false;
    bool m_joined = false;          // someone already joins it
    bool m_parked = false;          // blocked in park()
    bool m_unpark_token = false;    // an unpark() arrived while not parked
    arch::ThreadContext m_context;
};

} // namespace sched
