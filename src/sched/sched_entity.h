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
//               (a ring with a sentinel, AgeRing: it is private to the policy and sits on every
//               yield, so it trades null-terminated walks for branch-free insert and remove)
//   timer link  the policy's timer queue          while Sleeping
#include <stddef.h>
#include <stdint.h>

#include "lib/intrusive_list.h"
#include "sched/thread_state.h"

namespace sched {

class SchedEntity;

// A link of a ring with a sentinel (AgeRing): insert and remove need no null checks.
struct RingLink {
    RingLink* next = nullptr;
    RingLink* prev = nullptr;
};

class SchedEntity {
public:
    static constexpr uint8_t kNotQueued = 0xff;

    // `quantum_ticks` 0 means "the policy's default", filled in by Policy::admit(). The entity is
    // not part of the Loom until admitted (its state reads Blocked until then).
    constexpr explicit SchedEntity(uint64_t id = 0, Priority priority = Priority::Normal, uint32_t quantum_ticks = 0)
        : m_id(id), m_quantum_ticks(quantum_ticks), m_base_priority(priority), m_level(level_of(priority))
    { }
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
    uint64_t runs() const { return m_runs; }                        // times it was given the CPU
    uint64_t voluntary_switches() const { return m_voluntary; }     // left the CPU by yield/block/sleep/exit
    uint64_t involuntary_switches() const { return m_involuntary; } // taken off the CPU while runnable
    uint64_t preemptions() const { return m_preemptions; }          // ...of those, with quantum left (outranked)
    uint64_t boosts() const { return m_boosts; }                    // starvation boosts received
    uint64_t max_wait_ticks() const { return m_max_wait; }          // longest stretch Ready before running
    uint64_t total_wait_ticks() const { return m_total_wait; }

private:
    friend class RunQueue;
    friend class Policy;
    friend class AgeRing;

    lib::IntrusiveListNode<SchedEntity> m_run_link;
    RingLink m_age_link;
    lib::IntrusiveListNode<SchedEntity> m_timer_link;

    uint64_t m_id = 0;
    uint64_t m_ready_since = 0;
    uint64_t m_wake_tick = 0;
    uint64_t m_age_since = 0; // when it joined the age list (the starvation clock)
    uint64_t m_sequence = 0;  // order of entry into the age list / timer queue (tie-breaks in checks)

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
    bool m_boostable = false; // the policy's cache: not the idle thread, and boosts apply to its base priority
    bool m_idle_thread = false;
    bool m_admitted = false;
};

// The policy's age list: a doubly linked ring through m_age_link around a sentinel, so that
// push_back and remove are straight-line code. Same interface as lib::IntrusiveList where the
// policy uses it (front/back/next/prev give nullptr past the ends), but next/prev need the list. Not
// copyable or movable (the sentinel points at itself).
class AgeRing {
public:
    constexpr AgeRing() : m_anchor{&m_anchor, &m_anchor} { }
    AgeRing(const AgeRing&) = delete;
    AgeRing& operator=(const AgeRing&) = delete;

    SchedEntity* front() const { return entity_of(m_anchor.next); }
    SchedEntity* back() const { return entity_of(m_anchor.prev); }
    SchedEntity* next(const SchedEntity& entity) const { return entity_of(entity.m_age_link.next); }
    SchedEntity* prev(const SchedEntity& entity) const { return entity_of(entity.m_age_link.prev); }
    size_t size() const { return m_size; }
    bool empty() const { return m_anchor.next == &m_anchor; }

    void push_back(SchedEntity& entity)
    {
        RingLink& link = entity.m_age_link;
        RingLink* const last = m_anchor.prev;
        link.next = &m_anchor;
        link.prev = last;
        last->next = &link;
        m_anchor.prev = &link;
        ++m_size;
    }
    // `entity` must be on this ring. Its links are left stale: membership is tracked by the
    // user (the policy's m_in_age_list), and push_back rewrites both.
    void remove(SchedEntity& entity)
    {
        RingLink& link = entity.m_age_link;
        link.prev->next = link.next;
        link.next->prev = link.prev;
        --m_size;
    }

private:
    SchedEntity* entity_of(const RingLink* link) const
    {
        if (link == &m_anchor || link == nullptr)
            return nullptr;
        return reinterpret_cast<SchedEntity*>(reinterpret_cast<uintptr_t>(link) - offsetof(SchedEntity, m_age_link));
    }

    RingLink m_anchor;
    size_t m_size = 0;
};

} // namespace sched
