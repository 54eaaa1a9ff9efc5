#include "sched/run_queue.h"

#include "lib/panic.h"

namespace sched {

void RunQueue::panic_queued_twice(const SchedEntity& entity)
{
    kernel::panic("Loom of Fate: entity {} queued twice (already at level {})", entity.m_id, entity.m_queue_level);
}

void RunQueue::panic_no_level(const SchedEntity& entity)
{
    kernel::panic("Loom of Fate: entity {} has no queue level ({}; the idle thread is never queued)", entity.m_id,
                  entity.m_level);
}

void RunQueue::panic_not_queued(const SchedEntity& entity)
{
    kernel::panic("Loom of Fate: entity {} removed from the run queue but not queued", entity.m_id);
}

const char* RunQueue::check() const
{
    size_t total = 0;
    for (unsigned level = 0; level < kLevelCount; ++level) {
        const Fifo& fifo = m_levels[level];
        const bool bit = (m_mask >> level) & 1;
        if (bit != !fifo.empty())
            return "run queue: non-empty mask disagrees with a level's FIFO";
        size_t count = 0;
        const SchedEntity* prev = nullptr;
        for (const SchedEntity* entity = fifo.front(); entity; entity = Fifo::next(*entity)) {
            if (++count > m_size)
                return "run queue: a FIFO is longer than the queue (cycle or duplicate)";
            if (Fifo::prev(*entity) != prev)
                return "run queue: broken prev link";
            if (entity->m_queue_level != level)
                return "run queue: entity's queued_level is not its FIFO's level";
            if (entity->m_level != level)
                return "run queue: entity queued at a level other than its own level()";
            if (entity->m_state != ThreadState::Ready)
                return "run queue: queued entity is not Ready";
            if (entity->m_idle_thread)
                return "run queue: the idle thread is queued";
            prev = entity;
        }
        if (fifo.back() != prev)
            return "run queue: FIFO tail is not its last entity";
        if (count != fifo.size())
            return "run queue: FIFO size disagrees with its length";
        total += count;
    }
    if (m_mask >> kLevelCount)
        return "run queue: mask bit set above the last level";
    if (total != m_size)
        return "run queue: total size disagrees with the FIFOs";
    return nullptr;
}

} // namespace sched
