#pragma once
// sched::Thread: the Loom of Fate's thread control block, built on the arch hooks of arch/thread.h.
//
// A Thread lives in the "thread" ObjectCache of the Mana Pool (never the general heap); its kernel
// stack is kKernelStackBytes from the frame allocator, mapped in the arch's kernel-stack area with
// an unmapped guard page below (see arch/x86_64/thread_arch.h). Scheduling fields (state, level,
// quantum, CPU time, switch counts) live in the embedded SchedEntity and belong to the policy
// (sched/policy.h); the scheduler (sched/scheduler.h) owns the rest, under its lock.
#include <stddef.h>
#include <stdint.h>

#include "arch/thread.h"
#include "lib/expected.h"
#include "sched/sched_entity.h"
#include "sched/thread_state.h"

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
    friend struct ThreadAccess; // the scheduler's internals (scheduler_state.h)

    SchedEntity m_entity;
    char m_name[kThreadNameBytes] = {};
    arch::KernelStack m_stack; // none for the boot thread (it keeps the boot stack)
    ThreadEntry m_entry = nullptr;
    void* m_arg = nullptr;
    Thread* m_joiner = nullptr;   // blocked in join() on this thread
    Thread* m_all_next = nullptr; // every live thread, for statistics and lookups
    Thread* m_all_prev = nullptr;
    Thread* m_zombie_next = nullptr; // detached and exited: the reaper frees it
    bool m_detached = false;
    bool m_joined = false;       // someone already joins it
    bool m_parked = false;       // blocked in park()
    bool m_unpark_token = false; // an unpark() arrived while not parked
    arch::ThreadContext m_context;
};

} // namespace sched
