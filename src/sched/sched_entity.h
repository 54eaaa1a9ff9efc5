#pragma once
// sched::SchedEntity: the scheduling half of a thread. The kernel's Thread embeds one; the Loom of
// Fate's policy core (policy.h) sees only this part, so it runs unchanged in the host tests.
//
// Every field is owned by the Policy (and its RunQueue): the kernel reads them through the
// accessors, under the scheduler lock, and changes them only through Policy calls. The entity
// carries its own list links (intrusive lists), so no scheduler operation ever allocates.
//
// Links: an entity is on at most these lists at once, each with its own link pair:
//   run link    one FIFO of the run queue         while Ready (except the idle thread, never queued)
//   age link    the policy's starvation age list  while Ready at a boostable level, not yet boosted
//   timer link  the policy's timer queue          while Sleeping
#include <stddef.h>
#include <stdint.h>

#include "sched/thread_state.h"

namespace sched {

class SchedEntity;

struct SchedLink {
    SchedEntity* next = nullptr;
    SchedEntity* prev = nullptr;
};

class SchedEntity {
public:
    static constexpr uint8_t kNotQueued = 0xff;

    // `quantum_ticks` 0 means "the policy's default", filled in by Policy::admit(). The entity is
    // not part of the Loom until admitted (its state reads Blocked until then).
    constexpr explicit SchedEntity(uint64_t id = 0, Priority priority = Priority::Normal, uint32_t quantum_ticks = 0)
        : m_id(id), m_quantum_ticks(quantum_ticks), m_base_priority(priority), m_level(level_of(priority))
    {
    }
    SchedEntity(const SchedEntity&) = delete;
    SchedEntity& operator=(const SchedEntity&) = delete;

    uint64_t id() const { return m_id; }
    ThreadState state() const { return m_state; }
    // What the thread asked for, and the level it is scheduled at (a boost or the idle thread's
    // kIdleThreadLevel make them differ).
    Priority base_priority() const { return m_base_priority; }
    uint8_t level() const { return m_level; }
    bool boosted() const { return m_boosted; }
    bool is_idle_thread() const { return m_idle_thread; }
    bool admitted() const { return m_admitted; }

    // The full quantum, and what is left of the current one (0: expired, a switch is due).
    uint32_t quantum_ticks() const { return m_quantum_ticks; }
    uint32_t remaining_ticks() const { return m_remaining_ticks; }

    // The tick at which it last became ready, or was put back in the queue (while Ready).
    uint64_t ready_since() const { return m_ready_since; }
    // The tick it sleeps until (while Sleeping).
    uint64_t wake_tick() const { return m_wake_tick; }
    // Run-queue level it is queued at, kNotQueued if not in the run queue.
    uint8_t queued_level() const { return m_queue_level; }
    bool queued() const { return m_queue_level != kNotQueued; }

    // Statistics. CPU time is sampled: each timer tick is charged in full to whoever was on the
    // CPU when it fired (Policy::cpu_time_ns converts to nanoseconds).
    uint64_t cpu_ticks() const { return m_cpu_ticks; }
    uint64_t runs() const { return m_runs; }                 // times it was given the CPU
    uint64_t voluntary_switches() const { return m_voluntary; }   // left the CPU by yield/block/sleep/exit
    uint64_t involuntary_switches() const { return m_involuntary; } // taken off the CPU while runnable
    uint64_t preemptions() const { return m_preemptions; }   // ...of those, with quantum left (outranked)
    uint64_t boosts() const { return m_boosts; }             // starvation boosts received
    uint64_t max_wait_ticks() const { return m_max_wait; }   // longest stretch Ready before running
    uint64_t total_wait_ticks() const { return m_total_wait; }

private:
    friend class RunQueue;
    friend class Policy;

    SchedLink m_run_link;
    SchedLink m_age_link;
    SchedLink m_timer_link;

    uint64_t m_id = 0;
    uint64_t m_ready_since = 0;
    uint64_t m_wake_tick = 0;
    uint64_t m_age_since = 0; // when it joined the age list (the starvation clock)
    uint64_t m_sequence = 0; // order of entry into the age list / timer queue (tie-breaks in checks)

    uint64_t m_cpu_ticks = 0;
    uint64_t m_runs = 0;
    uint64_t m_voluntary = 0;
    uint64_t m_involuntary = 0;
    uint64_t m_preemptions = 0;
    uint64_t m_boosts = 0;
    uint64_t m_max_wait = 0;
    uint64_t m_total_wait = 0;

    uint32_t m_quantum_ticks = 0;
    uint32_t m_remaining_ticks = 0;

    ThreadState m_state = ThreadState::Blocked;
    Priority m_base_priority = Priority::Normal;
    uint8_t m_level = kLevelNormal;
    uint8_t m_queue_level = kNotQueued;
    bool m_boosted = false;
    bool m_in_age_list = false;
    bool m_idle_thread = false;
    bool m_admitted = false;
};

// A doubly linked, null-terminated intrusive list of entities through one of their link pairs.
// O(1) everywhere except walking. It does not track membership: its users do (queued_level,
// state, m_in_age_list), so removing an entity that is not on this list is a caller bug.
template <SchedLink SchedEntity::*Link>
class EntityList {
public:
    SchedEntity* front() const { return m_head; }
    SchedEntity* back() const { return m_tail; }
    size_t size() const { return m_size; }
    bool empty() const { return m_head == nullptr; }

    static SchedEntity* next(const SchedEntity& entity) { return (entity.*Link).next; }
    static SchedEntity* prev(const SchedEntity& entity) { return (entity.*Link).prev; }

    void push_back(SchedEntity& entity) { insert_before(nullptr, entity); }
    void push_front(SchedEntity& entity) { insert_before(m_head, entity); }

    // Inserts before `position`; nullptr means at the back.
    void insert_before(SchedEntity* position, SchedEntity& entity)
    {
        SchedLink& link = entity.*Link;
        link.next = position;
        link.prev = position ? (position->*Link).prev : m_tail;
        if (link.prev)
            (link.prev->*Link).next = &entity;
        else
            m_head = &entity;
        if (position)
            (position->*Link).prev = &entity;
        else
            m_tail = &entity;
        ++m_size;
    }

    void remove(SchedEntity& entity)
    {
        SchedLink& link = entity.*Link;
        if (link.prev)
            (link.prev->*Link).next = link.next;
        else
            m_head = link.next;
        if (link.next)
            (link.next->*Link).prev = link.prev;
        else
            m_tail = link.prev;
        link.next = nullptr;
        link.prev = nullptr;
        --m_size;
    }

    SchedEntity* pop_front()
    {
        SchedEntity* entity = m_head;
        if (entity) remove(*entity);
        return entity;
    }

private:
    SchedEntity* m_head = nullptr;
    SchedEntity* m_tail = nullptr;
    size_t m_size = 0;
};

} // namespace sched
