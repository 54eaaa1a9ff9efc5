#include "sched/policy.h"

#include <bit>

#include "lib/math.h"
#include "lib/panic.h"

namespace sched {

// ---- Helpers ------------------------------------------------------------------------------------

void Policy::require_admitted(const SchedEntity& entity, const char* operation) const
{
    if (!entity.m_admitted) [[unlikely]]
        kernel::panic("Loom of Fate: {} on entity {}, which is not part of the Loom (never admitted, or reaped)",
                      operation, entity.m_id);
}

inline void Policy::set_state(SchedEntity& entity, ThreadState state)
{
    if (entity.m_admitted) {
        --m_by_state[index_of(entity.m_state)];
        ++m_by_state[index_of(state)];
    }
    entity.m_state = state;
}

// The one way into the run queue: head keeps the remaining quantum, tail refills it.
inline void Policy::enqueue(SchedEntity& entity, bool at_head)
{
    if (!at_head)
        entity.m_remaining_ticks = entity.m_quantum_ticks;
    set_state(entity, ThreadState::Ready);
    entity.m_ready_since = m_now;
    if (at_head)
        m_queue.push_front(entity);
    else
        m_queue.push_back(entity);
    sync_age_list(entity);
}

// The one way out of the run queue (the caller sets the new state).
inline void Policy::dequeue(SchedEntity& entity)
{
    m_queue.remove(entity);
    age_list_remove(entity);
}

// A queued entity is on the age list exactly when it is eligible for a boost.
inline void Policy::sync_age_list(SchedEntity& entity)
{
    const bool eligible = entity.queued() && eligible_for_boost(entity);
    if (eligible && !entity.m_in_age_list)
        age_list_append(entity);
    else if (!eligible)
        age_list_remove(entity);
}

// Sets need_resched if the run queue holds something more urgent than what runs (or nothing runs).
inline void Policy::update_resched()
{
    const uint8_t top = m_queue.highest_level();
    if (top == RunQueue::kNoLevel)
        return;
    if (m_current == nullptr || m_current->m_state != ThreadState::Running || outranks(top, m_current->m_level))
        m_need_resched = true;
}

void Policy::boost(SchedEntity& entity)
{
    m_age.remove(entity);
    entity.m_in_age_list = false;
    m_queue.remove(entity);
    set_boosted(entity, true);
    entity.m_level = kLevelBoost;
    entity.m_remaining_ticks = entity.m_quantum_ticks; // a full quantum: the boost is one whole turn
    m_queue.push_back(entity);
    ++entity.m_boosts;
    ++m_counters.boosts;
}

// Sorted by wake tick, FIFO among equal ticks; the scan starts at the latest deadline.
void Policy::insert_timer(SchedEntity& entity)
{
    SchedEntity* position = m_timers.back();
    while (position && position->m_wake_tick > entity.m_wake_tick)
        position = TimerList::prev(*position);
    m_timers.insert_before(position ? TimerList::next(*position) : m_timers.front(), entity);
    entity.m_sequence = ++m_sequence;
}

// Block, sleep or exit: `entity` leaves the runnable world for `state`.
void Policy::leave(SchedEntity& entity, ThreadState state, const char* operation)
{
    require_admitted(entity, operation);
    if (entity.m_idle_thread) [[unlikely]]
        kernel::panic("Loom of Fate: {} on the idle thread (it must always be runnable)", operation);
    switch (entity.m_state) {
    case ThreadState::Running:
        if (&entity != m_current) [[unlikely]]
            kernel::panic("Loom of Fate: {}: entity {} is Running but not current", operation, entity.m_id);
        break;
    case ThreadState::Ready: dequeue(entity); break;
    case ThreadState::Sleeping:
        if (state != ThreadState::Exited) [[unlikely]]
            kernel::panic("Loom of Fate: {} on entity {}, which is already {} (sleeping)", operation, entity.m_id,
                          state_name(entity.m_state));
        m_timers.remove(entity);
        break;
    case ThreadState::Blocked:
        if (state != ThreadState::Exited) [[unlikely]]
            kernel::panic("Loom of Fate: {} on entity {}, which is already {} (blocked)", operation, entity.m_id,
                          state_name(entity.m_state));
        break;
    case ThreadState::Exited:
        kernel::panic("Loom of Fate: {} on entity {}, which has already exited", operation, entity.m_id);
    }
    drop_boost(entity);
    set_state(entity, state);
    if (&entity == m_current)
        m_need_resched = true;
}

// ---- Membership -----------------------------------------------------------------------------------

void Policy::admit(SchedEntity& entity)
{
    if (entity.m_admitted) [[unlikely]]
        kernel::panic("Loom of Fate: entity {} admitted twice", entity.m_id);
    if (entity.m_quantum_ticks == 0)
        entity.m_quantum_ticks = m_config.default_quantum_ticks;
    entity.m_admitted = true;
    entity.m_idle_thread = false;
    entity.m_boostable = boostable(entity);
    entity.m_boosted = false;
    entity.m_level = level_of(entity.m_base_priority);
    entity.m_state = ThreadState::Ready;
    ++m_total;
    ++m_by_state[index_of(ThreadState::Ready)];
    ++m_by_priority[index_of(entity.m_base_priority)];
    enqueue(entity, false);
    update_resched();
}

void Policy::set_idle_thread(SchedEntity& entity)
{
    if (m_idle != nullptr) [[unlikely]]
        kernel::panic("Loom of Fate: a second idle thread (entity {}; entity {} already is)", entity.m_id,
                      m_idle->m_id);
    if (entity.m_admitted) [[unlikely]]
        kernel::panic("Loom of Fate: entity {} cannot become the idle thread: already admitted", entity.m_id);
    entity.m_admitted = true;
    entity.m_idle_thread = true;
    entity.m_boostable = false;
    entity.m_boosted = false;
    entity.m_base_priority = Priority::Idle;
    entity.m_level = kIdleThreadLevel;
    if (entity.m_quantum_ticks == 0)
        entity.m_quantum_ticks = m_config.default_quantum_ticks;
    entity.m_remaining_ticks = entity.m_quantum_ticks;
    entity.m_state = ThreadState::Ready;
    ++m_total;
    ++m_by_state[index_of(ThreadState::Ready)];
    ++m_by_priority[index_of(Priority::Idle)];
    m_idle = &entity;
}

void Policy::reap(SchedEntity& entity)
{
    require_admitted(entity, "reap");
    if (entity.m_state != ThreadState::Exited) [[unlikely]]
        kernel::panic("Loom of Fate: reap of entity {}, which is {} ({}), not Fading (exited)", entity.m_id,
                      state_name(entity.m_state), state_meaning(entity.m_state));
    if (&entity == m_current) [[unlikely]]
        kernel::panic("Loom of Fate: reap of entity {} while it is still on the CPU", entity.m_id);
    --m_total;
    --m_by_state[index_of(ThreadState::Exited)];
    --m_by_priority[index_of(entity.m_base_priority)];
    entity.m_admitted = false;
}

// ---- The tick and the switch --------------------------------------------------------------------

bool Policy::on_tick(uint64_t now)
{
    if (now < m_now) [[unlikely]]
        kernel::panic("Loom of Fate: time went backwards (tick {} after tick {})", now, m_now);
    m_now = now;
    ++m_counters.ticks;

    SchedEntity* current = m_current;
    if (current == nullptr || current->m_idle_thread)
        ++m_counters.idle_ticks;
    if (current != nullptr) {
        ++current->m_cpu_ticks;
        if (!current->m_idle_thread && current->m_state == ThreadState::Running && current->m_remaining_ticks > 0 &&
            --current->m_remaining_ticks == 0) {
            ++m_counters.quantum_expiries;
            m_need_resched = true;
        }
    }

    // Sleepers due now. One that slept but has not been switched away from yet just keeps running.
    while (SchedEntity* sleeper = m_timers.front()) {
        if (sleeper->m_wake_tick > now)
            break;
        m_timers.remove(*sleeper);
        if (sleeper == m_current)
            set_state(*sleeper, ThreadState::Running);
        else
            enqueue(*sleeper, false);
        ++m_counters.wakeups;
        ++m_counters.timer_wakeups;
    }

    // Starving entities: the age list is in order of age, so only its front can be due.
    if (const uint64_t bound = m_config.starvation_bound_ticks; bound != 0) {
        while (SchedEntity* oldest = m_age.front()) {
            if (now - oldest->m_age_since < bound)
                break;
            boost(*oldest);
        }
    }

    update_resched();
    return m_need_resched;
}

SchedEntity* Policy::pick_next()
{
    SchedEntity* const previous = m_current;
    const bool was_running = previous != nullptr && previous->m_state == ThreadState::Running;
    bool had_quantum = false;
    if (was_running) {
        if (previous->m_idle_thread) {
            set_state(*previous, ThreadState::Ready); // never queued
        } else {
            had_quantum = previous->m_remaining_ticks > 0;
            if (!had_quantum)
                drop_boost(*previous); // it ran its full turn
            enqueue(*previous, had_quantum);
        }
    }

    SchedEntity* next = m_queue.peek_next();
    if (next != nullptr)
        dequeue(*next);
    else
        next = m_idle;

    m_need_resched = false;
    if (next != nullptr)
        set_state(*next, ThreadState::Running);
    if (next == previous)
        return next; // it keeps the CPU: not a switch

    if (previous != nullptr) {
        if (was_running) {
            ++previous->m_involuntary;
            ++m_counters.involuntary_switches;
            if (had_quantum) {
                ++previous->m_preemptions;
                ++m_counters.preemptions;
            }
        } else {
            ++previous->m_voluntary;
            ++m_counters.voluntary_switches;
        }
    }
    if (next != nullptr) {
        if (!next->m_idle_thread)
            end_wait(*next);
        ++next->m_runs;
    }
    ++m_counters.context_switches;
    m_current = next;
    return next;
}

// ---- Transitions ----------------------------------------------------------------------------------

void Policy::yield()
{
    SchedEntity* const current = m_current;
    if (current == nullptr || current->m_state != ThreadState::Running)
        return;
    m_need_resched = true;
    if (current->m_idle_thread)
        return;
    drop_boost(*current);
    enqueue(*current, false);
}

SchedEntity* Policy::yield_then_pick_next()
{
    yield();
    return pick_next();
}

void Policy::block(SchedEntity& entity)
{
    leave(entity, ThreadState::Blocked, "block");
    update_resched();
}

bool Policy::sleep_until(SchedEntity& entity, uint64_t wake_tick)
{
    require_admitted(entity, "sleep_until");
    if (wake_tick <= m_now)
        return false;
    leave(entity, ThreadState::Sleeping, "sleep_until");
    entity.m_wake_tick = wake_tick;
    insert_timer(entity);
    update_resched();
    return true;
}

bool Policy::wake(SchedEntity& entity)
{
    require_admitted(entity, "wake");
    if (entity.m_state == ThreadState::Sleeping)
        m_timers.remove(entity);
    else if (entity.m_state != ThreadState::Blocked)
        return false;
    if (&entity == m_current)
        set_state(entity, ThreadState::Running); // woken before the switch away: it just goes on
    else
        enqueue(entity, false);
    ++m_counters.wakeups;
    update_resched();
    return true;
}

void Policy::exit(SchedEntity& entity)
{
    leave(entity, ThreadState::Exited, "exit");
    update_resched();
}

void Policy::set_priority(SchedEntity& entity, Priority priority)
{
    require_admitted(entity, "set_priority");
    if (entity.m_idle_thread) [[unlikely]]
        kernel::panic("Loom of Fate: set_priority on the idle thread (its level is fixed)");
    if (entity.m_base_priority == priority)
        return;
    --m_by_priority[index_of(entity.m_base_priority)];
    ++m_by_priority[index_of(priority)];
    entity.m_base_priority = priority;
    entity.m_boostable = boostable(entity);
    if (priority == Priority::Critical)
        set_boosted(entity, false);
    const uint8_t level = entity.m_boosted ? kLevelBoost : level_of(priority);
    if (entity.queued()) {
        if (level != entity.m_level) {
            m_queue.remove(entity);
            entity.m_level = level;
            entity.m_remaining_ticks = entity.m_quantum_ticks; // tail: fresh quantum
            m_queue.push_back(entity);
        }
        sync_age_list(entity);
    } else {
        entity.m_level = level;
    }
    update_resched();
}

void Policy::set_quantum(SchedEntity& entity, uint32_t quantum_ticks)
{
    require_admitted(entity, "set_quantum");
    if (quantum_ticks == 0)
        quantum_ticks = m_config.default_quantum_ticks;
    entity.m_quantum_ticks = quantum_ticks;
    if (entity.m_remaining_ticks > quantum_ticks)
        entity.m_remaining_ticks = quantum_ticks;
}

// ---- Statistics -----------------------------------------------------------------------------------

PolicyCounts Policy::counts() const
{
    PolicyCounts counts;
    counts.total = m_total;
    for (unsigned i = 0; i < kThreadStateCount; ++i)
        counts.by_state[i] = m_by_state[i];
    for (unsigned i = 0; i < kPriorityCount; ++i)
        counts.by_priority[i] = m_by_priority[i];
    for (uint8_t level = 0; level < kLevelCount; ++level)
        counts.queued_by_level[level] = m_queue.size(level);
    counts.queued = m_queue.size();
    counts.sleeping = m_timers.size();
    counts.boosted = m_boosted;
    return counts;
}

uint64_t Policy::next_wake_tick() const
{
    const SchedEntity* first = m_timers.front();
    return first ? first->m_wake_tick : UINT64_MAX;
}

uint64_t Policy::ticks_to_ns(uint64_t ticks) const
{
    return lib::mul_div(ticks, m_config.tick_period_numerator_ns, m_config.tick_period_denominator);
}

uint64_t Policy::cpu_time_ns(const SchedEntity& entity) const { return ticks_to_ns(entity.m_cpu_ticks); }

const char* Policy::check_invariants() const
{
    if (const char* problem = m_queue.check())
        return problem;

    // Every queued entity: on the age list exactly when eligible; level Boost exactly when boosted.
    size_t eligible = 0;
    for (uint8_t level = 0; level < kLevelCount; ++level) {
        for (const SchedEntity* entity = m_queue.front(level); entity; entity = RunQueue::next(*entity)) {
            if (entity->m_boostable != boostable(*entity))
                return "boost: an entity's cached eligibility disagrees with its priority";
            if (entity->m_in_age_list != eligible_for_boost(*entity))
                return "age list: a queued entity's membership disagrees with its eligibility";
            if ((level == kLevelBoost) != entity->m_boosted)
                return "boost: level Boost holds a non-boosted entity, "
                       "or a boosted entity sits elsewhere";
            if (!entity->m_admitted)
                return "run queue: holds an entity that is not admitted";
            if (!entity->m_boosted && entity->m_level != level_of(entity->m_base_priority))
                return "run queue: an unboosted entity is not at its priority's level";
            if (entity->m_remaining_ticks == 0 || entity->m_remaining_ticks > entity->m_quantum_ticks)
                return "run queue: a queued entity's remaining quantum is outside 1..quantum";
            eligible += entity->m_in_age_list ? 1 : 0;
        }
    }

    size_t age_count = 0;
    const SchedEntity* previous = nullptr;
    for (const SchedEntity* entity = m_age.front(); entity; entity = m_age.next(*entity)) {
        if (++age_count > eligible)
            return "age list: longer than the eligible entities (cycle, or not queued)";
        if (m_age.prev(*entity) != previous)
            return "age list: broken prev link";
        if (!entity->m_in_age_list || !entity->queued())
            return "age list: holds an entity that is not queued";
        if (previous && (entity->m_age_since < previous->m_age_since || entity->m_sequence <= previous->m_sequence))
            return "age list: not in order of entry";
        if (m_config.starvation_bound_ticks != 0 && m_now - entity->m_age_since >= m_config.starvation_bound_ticks)
            return "age list: an entity past the starvation bound was not boosted";
        previous = entity;
    }
    if (m_age.back() != previous)
        return "age list: tail is not its last entity";
    if (age_count != eligible || m_age.size() != eligible)
        return "age list: size disagrees with the eligible entities";

    size_t sleepers = 0;
    previous = nullptr;
    for (const SchedEntity* entity = m_timers.front(); entity; entity = TimerList::next(*entity)) {
        if (++sleepers > m_timers.size())
            return "timer queue: longer than its size (cycle or duplicate)";
        if (TimerList::prev(*entity) != previous)
            return "timer queue: broken prev link";
        if (entity->m_state != ThreadState::Sleeping)
            return "timer queue: holds an entity that is not Sleeping";
        if (entity->queued())
            return "timer queue: a sleeper is also in the run queue";
        if (entity->m_wake_tick <= m_now)
            return "timer queue: a sleeper is past its wake tick";
        if (previous &&
            (entity->m_wake_tick < previous->m_wake_tick ||
             (entity->m_wake_tick == previous->m_wake_tick && entity->m_sequence <= previous->m_sequence)))
            return "timer queue: not sorted by wake tick (FIFO among equal ticks)";
        previous = entity;
    }
    if (m_timers.back() != previous)
        return "timer queue: tail is not its last entity";
    if (sleepers != m_timers.size())
        return "timer queue: size disagrees with its length";
    if (sleepers != m_by_state[index_of(ThreadState::Sleeping)])
        return "counts: Sleeping disagrees with the timer queue";

    const bool current_running = m_current != nullptr && m_current->m_state == ThreadState::Running;
    if (m_current != nullptr) {
        if (!m_current->m_admitted)
            return "current: not admitted";
        if (current_running && m_current->queued())
            return "current: Running but queued";
        if (!current_running && !m_need_resched)
            return "current: on its way out but no switch requested";
    }
    if (m_idle != nullptr) {
        if (m_idle->queued())
            return "idle thread: queued";
        if (m_idle->m_state != (m_idle == m_current ? ThreadState::Running : ThreadState::Ready))
            return "idle thread: neither running as current nor Ready";
    }
    const size_t idle_ready = (m_idle != nullptr && m_idle->m_state == ThreadState::Ready) ? 1 : 0;
    if (m_by_state[index_of(ThreadState::Ready)] != m_queue.size() + idle_ready)
        return "counts: Ready disagrees with the run queue";
    if (m_by_state[index_of(ThreadState::Running)] != (current_running ? 1u : 0u))
        return "counts: Running is not exactly the running current entity";
    const size_t boosted_running = (current_running && m_current->m_boosted) ? 1 : 0;
    if (m_boosted != m_queue.size(kLevelBoost) + boosted_running)
        return "counts: boosted disagrees with level Boost plus the running entity";

    uint64_t state_sum = 0;
    uint64_t priority_sum = 0;
    for (unsigned i = 0; i < kThreadStateCount; ++i)
        state_sum += m_by_state[i];
    for (unsigned i = 0; i < kPriorityCount; ++i)
        priority_sum += m_by_priority[i];
    if (state_sum != m_total || priority_sum != m_total)
        return "counts: per-state or per-priority sums != total";

    // A switch is due whenever something queued outranks what runs.
    const uint8_t top = m_queue.highest_level();
    if (top != RunQueue::kNoLevel && !m_need_resched &&
        (m_current == nullptr || !current_running || outranks(top, m_current->m_level)))
        return "need_resched: clear although a queued entity outranks the running one";
    return nullptr;
}

// ---- Fairness -------------------------------------------------------------------------------------

uint32_t jain_index_ppm(lib::Span<const uint64_t> values)
{
    const size_t n = values.size();
    uint64_t largest = 0;
    for (const uint64_t value : values)
        if (value > largest)
            largest = value;
    if (n == 0 || largest == 0)
        return kJainPerfectPpm;

    // With n < 2^lg and every value below 2^(64 - lg): sum < 2^64, sum^2 < 2^128 and
    // n * sum of squares < 2^128. Shift the values right until they fit.
    const unsigned lg = static_cast<unsigned>(std::bit_width(static_cast<uint64_t>(n)));
    const unsigned value_bits = 64 - lg;
    const unsigned width = static_cast<unsigned>(std::bit_width(largest));
    const unsigned shift = width > value_bits ? width - value_bits : 0;

    uint64_t sum = 0;
    unsigned __int128 sum_squares = 0;
    for (const uint64_t value : values) {
        const uint64_t scaled = value >> shift;
        sum += scaled;
        sum_squares += static_cast<unsigned __int128>(scaled) * scaled;
    }
    unsigned __int128 numerator = static_cast<unsigned __int128>(sum) * sum;
    unsigned __int128 denominator = sum_squares * n;
    if (denominator == 0)
        return kJainPerfectPpm; // every value shifted to 0 cannot happen; be safe

    // Cauchy-Schwarz: numerator <= denominator. Drop low bits until both fit 64 bits, then
    // numerator * 10^6 / denominator with lib::mul_div (no 128-bit division call).
    const uint64_t high = static_cast<uint64_t>(denominator >> 64);
    if (high != 0) {
        const unsigned drop = static_cast<unsigned>(std::bit_width(high));
        numerator >>= drop;
        denominator >>= drop;
    }
    const uint64_t num = static_cast<uint64_t>(numerator);
    const uint64_t den = static_cast<uint64_t>(denominator);
    uint64_t remainder = 0;
    uint64_t ppm = lib::mul_div(num, kJainPerfectPpm, den, &remainder);
    if (remainder >= den - remainder)
        ++ppm; // round half up
    return ppm > kJainPerfectPpm ? kJainPerfectPpm : static_cast<uint32_t>(ppm);
}

} // namespace sched
