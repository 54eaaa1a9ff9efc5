#pragma once
// sched::RunQueue: the Loom of Fate's ready threads. One intrusive FIFO per level (thread_state.h)
// plus a 64-bit mask with bit L set exactly when level L's FIFO is non-empty, so the most urgent
// ready entity is the head of FIFO countr_zero(mask): pick-next costs the same with 1 or 10,000
// ready entities.
//
// Costs: push_front/push_back, remove, pop_next, peek_next, push_back_pop_next, highest_level: O(1),
// no loops; all inline (they sit on every switch), their panics out of line.
// check() walks everything: O(n), for tests and debug checks.
//
// The idle thread is never queued: when the queue is empty, the policy hands out the idle
// thread instead (see policy.h). Level kLevelIdle holds threads that asked for Priority::Idle;
// they run before the idle thread.
//
// No locking: the owner (the Policy, under the scheduler's IrqSpinLock) serialises access.
#include <stddef.h>
#include <stdint.h>

#include <bit>

#include "sched/sched_entity.h"

namespace sched {

class RunQueue {
public:
    static constexpr uint8_t kNoLevel = 0xff; // highest_level() of an empty queue (outranks nothing)

    RunQueue() = default;
    RunQueue(const RunQueue&) = delete;
    RunQueue& operator=(const RunQueue&) = delete;

    // Queue `entity` at its current level(), at the tail / the head of that level's FIFO.
    // Panics if it is already queued or its level is not a queue level (the idle thread).
    void push_back(SchedEntity& entity) { insert(entity, false); }
    void push_front(SchedEntity& entity) { insert(entity, true); }
    // Take a queued entity out, wherever it is. Panics if it is not queued here.
    void remove(SchedEntity& entity)
    {
        const uint8_t level = entity.m_queue_level;
        if (level >= kLevelCount) [[unlikely]]
            panic_not_queued(entity);
        Fifo& fifo = m_levels[level];
        fifo.remove(entity);
        if (fifo.empty())
            m_mask &= ~(uint64_t{1} << level);
        entity.m_queue_level = SchedEntity::kNotQueued;
        --m_size;
    }

    // The head of the most urgent non-empty level (nullptr when empty), and taking it out.
    SchedEntity* peek_next() const { return m_mask ? m_levels[lowest_set_bit()].front() : nullptr; }
    SchedEntity* pop_next() { return m_mask ? pop_front(lowest_set_bit()) : nullptr; }
    // Exactly push_back(entity) followed by pop_next(), in one step (a yield's requeue and
    // pick): returns the entity taken out. That is `entity` itself, left unqueued and the queue
    // unchanged, when nothing queued is at its level or more urgent. Panics like push_back().
    SchedEntity* push_back_pop_next(SchedEntity& entity)
    {
        const unsigned level = check_insertable(entity);
        if (m_mask == 0)
            return &entity;
        const auto top = static_cast<unsigned>(__builtin_ctzll(m_mask)); // m_mask != 0
        if (level < top)
            return &entity; // everything queued is less urgent (outranked)
        SchedEntity* next;
        if (top == level) [[likely]] {
            // Round robin among equals: the head leaves, `entity` joins the tail; the level's
            // size and the mask stay as they are.
            next = m_levels[level].rotate_front_to(entity);
        } else {
            Fifo& from = m_levels[top];
            next = from.pop_front(); // non-null: level `top` is non-empty
            if (from.empty())
                m_mask &= ~(uint64_t{1} << top);
            m_levels[level].push_back(entity);
            m_mask |= uint64_t{1} << level;
        }
        next->m_queue_level = SchedEntity::kNotQueued;
        entity.m_queue_level = static_cast<uint8_t>(level);
        return next; // one in, one out: m_size unchanged
    }
    // The head of one level's FIFO, and taking it out (nullptr when that level is empty).
    SchedEntity* front(uint8_t level) const { return level < kLevelCount ? m_levels[level].front() : nullptr; }
    SchedEntity* pop_front(uint8_t level)
    {
        SchedEntity* entity = front(level);
        if (entity)
            remove(*entity);
        return entity;
    }
    // The entity queued behind `entity` on the same level (for walks).
    static SchedEntity* next(const SchedEntity& entity) { return Fifo::next(entity); }

    // The most urgent non-empty level, kNoLevel when empty.
    uint8_t highest_level() const { return m_mask ? lowest_set_bit() : kNoLevel; }
    // Bit L set <=> level L non-empty.
    uint64_t non_empty_mask() const { return m_mask; }
    bool empty() const { return m_mask == 0; }
    size_t size() const { return m_size; }
    size_t size(uint8_t level) const { return level < kLevelCount ? m_levels[level].size() : 0; }

    // Full consistency check (links, per-level sizes, mask, each entity's state and
    // queued_level). nullptr when consistent, else a description of the first problem.
    const char* check() const;

private:
    using Fifo = lib::IntrusiveList<SchedEntity, &SchedEntity::m_run_link>;

    uint8_t lowest_set_bit() const { return static_cast<uint8_t>(std::countr_zero(m_mask)); }

    // The entity's level, after checking that it may be queued (panics otherwise).
    static uint8_t check_insertable(const SchedEntity& entity)
    {
        if (entity.m_queue_level != SchedEntity::kNotQueued) [[unlikely]]
            panic_queued_twice(entity);
        if (entity.m_level >= kLevelCount) [[unlikely]]
            panic_no_level(entity);
        return entity.m_level;
    }
    void insert(SchedEntity& entity, bool at_head)
    {
        const uint8_t level = check_insertable(entity);
        if (at_head)
            m_levels[level].push_front(entity);
        else
            m_levels[level].push_back(entity);
        entity.m_queue_level = level;
        m_mask |= uint64_t{1} << level;
        ++m_size;
    }
    // The reports, out of line and off the hot paths (run_queue.cpp).
    [[noreturn, gnu::cold, gnu::noinline]] static void panic_queued_twice(const SchedEntity& entity);
    [[noreturn, gnu::cold, gnu::noinline]] static void panic_no_level(const SchedEntity& entity);
    [[noreturn, gnu::cold, gnu::noinline]] static void panic_not_queued(const SchedEntity& entity);

    Fifo m_levels[kLevelCount];
    uint64_t m_mask = 0;
    size_t m_size = 0;
};

} // namespace sched
