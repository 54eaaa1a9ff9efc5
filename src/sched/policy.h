#pragma once
// sched::Policy: the Loom of Fate's decision logic for one CPU. It decides who runs, when a switch
// is due and what each thread is charged; it never switches a stack. The kernel owns one instance
// (under its scheduler IrqSpinLock, which serialises every call, the tick included) and does the
// context switch; the host tests own private instances and play the kernel.
//
// Generic code: no globals, no locks, no arch headers, no allocation (entities carry their links).
//
// ## The kernel's side of the contract
//   timer tick (interrupts off):   policy.on_tick(ticks())          -> mirror need_resched()
//   safe point (interrupt exit with preempt count 0, or preempt_enable(), or right after a
//   voluntary call below):          prev = current(); next = pick_next(); switch prev -> next
//   voluntary:                      yield() / block(e) / sleep_until(e, tick) / exit(e), then the switch
//   events:                         wake(e), set_priority(e, p), set_quantum(e, q)
// After any call, need_resched() says whether a switch is due; the kernel copies it into
// kernel::sync::set_need_resched(). It is sticky until pick_next() clears it, so a switch
// deferred by a PreemptGuard is not forgotten. (A request can turn out to be unnecessary by the
// time pick_next() runs; pick_next() then keeps the current entity, which is not a switch.)
//
// ## Time
// Time is the tick count. on_tick(now) is called once per timer tick with the new tick count;
// every other call is stamped with the `now` of the last on_tick (now()). CPU time is sampled:
// each tick is charged in full to whoever is on the CPU when it fires (cpu_time_ns converts).
//
// ## Quanta (each entity has its own; 0 at construction means config.default_quantum_ticks)
// - Each tick decrements the running entity's remaining quantum; reaching 0 requests a switch.
// - Leaving the CPU while runnable:
//     quantum left (outranked by a more urgent entity): back to the HEAD of its level with the
//       remaining quantum, so it resumes first among its equals (a preemption);
//     quantum expired: to the TAIL of its level with a fresh quantum (round robin among equals).
// - Every other (re)entry into the run queue is at the TAIL with a fresh quantum: admit, wake,
//   yield, set_priority moving a queued entity, a starvation boost. In short: head <=> quantum
//   kept, tail <=> quantum refilled.
//
// ## Priority preemption
// Whenever a queued entity's level outranks the running one's (a wake-up, a boost, a priority
// change, admit), need_resched is set at once, so the kernel switches at the next safe point,
// i.e. within the current tick unless preemption is disabled there. Equal levels never preempt.
//
// ## Starvation bound (config.starvation_bound_ticks, default 500 = 500 ms at 1000 Hz; 0 = off)
// Eligible: a Ready entity whose base priority is not Critical (and not Idle when
// config.boost_idle_priority is false), not already boosted. On the first tick at which such an
// entity has been continuously Ready and eligible for `bound` ticks (now - since >= bound, where
// `since` is the tick it last entered the run queue, or became eligible through set_priority
// while queued), it is boosted: moved to the TAIL of level Boost (above High, below Critical)
// with a fresh full quantum. Boosted entities queue FIFO at that level. The boost lasts exactly
// one turn: it is dropped when the entity's quantum expires (it ran a full quantum) or when it
// leaves the CPU voluntarily (yield, block, sleep, exit); a preemption by a Critical entity
// keeps it (back to the head of Boost, quantum kept). Raising the base priority to Critical
// drops it; other priority changes keep it.
// Resulting guarantee, for any Ready eligible entity E (switches taken when requested): E runs
// within
//   bound + (B + 1) * Qmax ticks + the CPU time Critical entities take meanwhile
// of becoming eligible, where B is the number of boosted entities ahead of E when it is boosted
// (queued at Boost, or running boosted; B < number of entities) and Qmax the largest quantum:
// each of those runs at most one quantum at Boost before dropping back. Critical entities are
// not bounded: nothing preempts them, so Critical work must block regularly. (The randomized
// host test checks this bound at every dispatch.)
// Eligible entities are also kept on an "age list" in order of entry into the run queue, so
// finding the starving ones costs O(1) per tick plus O(1) per boost (no scan of the queue).
//
// ## Sleeping
// sleep_until(e, tick) parks e in the timer queue until on_tick(now) with now >= tick: never
// before its tick, and at that very tick since on_tick runs every tick. (So a sleep_for(d ticks)
// as sleep_until(now() + d) ends between d - 1 and d tick periods later, the current tick being
// partly over; use now() + d + 1 where at least d full periods are required.) The timer queue is a
// doubly linked list sorted by wake tick, FIFO among equal ticks. Costs: insertion O(k) in the
// number k of sleepers due after the new one (the scan starts at the latest deadline, so sleeps
// of equal length insert in O(1)); waking O(1) each; cancelling (wake, exit) O(1).
//
// ## The idle thread
// set_idle_thread(e) registers the entity that runs when the run queue is empty. It is never
// queued (its level is kIdleThreadLevel, below every queue level, so anything ready preempts it),
// has no quantum, never blocks, sleeps or exits. pick_next() returns it when nothing is ready.
// Without one (host tests), pick_next() returns nullptr: the CPU is idle.
//
// ## Counting switches
// pick_next() returning an entity other than the previous one is a context switch. The previous
// entity's departure is voluntary if it yielded, blocked, slept or exited; involuntary if it was
// still Running (a preemption if it had quantum left, else a quantum expiry). The idle thread
// never leaves by itself: its departures count as involuntary, never as preemptions.
#include <stddef.h>
#include <stdint.h>

#include "lib/span.h"
#include "sched/run_queue.h"
#include "sched/sched_entity.h"
#include "sched/thread_state.h"

namespace sched {

struct PolicyConfig {
    // Quantum for entities constructed with quantum 0 (10 ms at 1000 Hz).
    uint32_t default_quantum_ticks = 10;
    // Ticks a Ready entity may wait before it is boosted (500 ms at 1000 Hz); 0 disables boosts.
    uint64_t starvation_bound_ticks = 500;
    // Whether Priority::Idle entities are boosted too. Default yes: every thread makes progress.
    bool boost_idle_priority = true;
    // The tick period as an exact fraction of a nanosecond (the kernel passes the clock's
    // period_numerator()/period_denominator()); only cpu_time_ns() uses it.
    uint64_t tick_period_numerator_ns = 1'000'000;
    uint64_t tick_period_denominator = 1;
};

// How many admitted entities (not yet reaped; the idle thread included) are in each state and
// at each base priority.
struct PolicyCounts {
    uint64_t total = 0;
    uint64_t by_state[kThreadStateCount] = {};
    uint64_t by_priority[kPriorityCount] = {};
    uint64_t queued_by_level[kLevelCount] = {};
    uint64_t queued = 0;   // in the run queue (by_state[Ready] minus an idle thread that is not running)
    uint64_t sleeping = 0; // in the timer queue (== by_state[Sleeping])
    uint64_t boosted = 0;  // holding a starvation boost (queued at level Boost, or running)

    uint64_t in_state(ThreadState state) const { return by_state[index_of(state)]; }
    uint64_t at_priority(Priority priority) const { return by_priority[index_of(priority)]; }
};

// Event counters since construction.
struct PolicyCounters {
    uint64_t ticks = 0;            // on_tick calls
    uint64_t idle_ticks = 0;       // ticks charged to the idle thread, or to nobody
    uint64_t context_switches = 0; // pick_next() changed the running entity
    uint64_t voluntary_switches = 0;
    uint64_t involuntary_switches = 0;
    uint64_t preemptions = 0;      // involuntary with quantum left
    uint64_t quantum_expiries = 0; // a running entity's quantum reached 0
    uint64_t wakeups = 0;          // wake() that woke something, and timer wake-ups
    uint64_t timer_wakeups = 0;    // ...of which by the timer queue
    uint64_t boosts = 0;           // starvation boosts given
};

class Policy {
public:
    // constexpr, so the kernel's single instance can be constinit (no constructor ordering).
    constexpr explicit Policy(const PolicyConfig& config = {})
        : m_config(sanitized(config)), m_boostable_priorities(boostable_priorities(m_config))
    { }
    Policy(const Policy&) = delete;
    Policy& operator=(const Policy&) = delete;

    const PolicyConfig& config() const { return m_config; }
    // The tick of the last on_tick (0 before the first).
    uint64_t now() const { return m_now; }

    // ---- Membership -------------------------------------------------------------------------
    // A new entity joins the Loom: Ready, at the tail of its level with a fresh quantum.
    // Panics if it was already admitted.
    void admit(SchedEntity& entity);
    // Registers the idle thread (once; it must not have been admitted). It starts Ready.
    void set_idle_thread(SchedEntity& entity);
    SchedEntity* idle_thread() const { return m_idle; }
    // Forgets an Exited entity that is no longer on the CPU (its memory may then be freed).
    // Panics otherwise.
    void reap(SchedEntity& entity);

    // ---- The tick and the switch ------------------------------------------------------------
    // One timer tick at tick count `now` (>= now(), else panic): charges the tick to the running
    // entity and decrements its quantum, wakes sleepers due at `now`, boosts starving entities.
    // Returns need_resched().
    bool on_tick(uint64_t now);

    // Decides who runs next and makes it current (Running): handles the outgoing entity by the
    // quantum rules above, takes the most urgent ready entity (the idle thread, else nullptr,
    // when none), counts the switch and clears need_resched. Returns the new current entity,
    // which may be the previous one (no switch).
    SchedEntity* pick_next();

    // The entity on the CPU: Running, or on its way out (after yield/block/sleep/exit, until
    // pick_next). nullptr before the first pick_next and whenever nothing runs.
    SchedEntity* current() const { return m_current; }
    bool need_resched() const { return m_need_resched; }

    // ---- Transitions ------------------------------------------------------------------------
    // The current entity offers the CPU: tail of its level, fresh quantum, boost dropped. A
    // switch is requested; pick_next() gives the CPU back to it if nothing else of its level
    // or above is ready. No-op without a running current entity.
    void yield();
    // Exactly yield() followed by pick_next() (same result, same counts and statistics, same
    // run-queue and age-list order), in one step: the kernel's sched::yield(). The common case
    // (a running entity other than the idle thread) never queues and dequeues the same entity
    // and leaves the per-state counts alone, since one entity goes Running -> Ready and another
    // Ready -> Running.
    // (Inline, below the class: sched::yield() is its one kernel caller.)
    [[gnu::always_inline]] inline SchedEntity* yield_and_pick_next();
    // Running (the current entity) or Ready -> Blocked, until wake(). Panics from other states
    // and for the idle thread. Blocking the current entity requests a switch.
    void block(SchedEntity& entity);
    // Like block(), but -> Sleeping until on_tick(now >= wake_tick). Returns false, changing
    // nothing, when wake_tick <= now() (the deadline has passed: do not sleep).
    bool sleep_until(SchedEntity& entity, uint64_t wake_tick);
    // Sleeping or Blocked -> Ready (tail, fresh quantum), cancelling a pending sleep; requests
    // a switch if it outranks the running entity. If the entity is still the current one (it
    // blocked but the switch has not happened yet), it simply stays Running. Returns false,
    // changing nothing, from Ready, Running or Exited (a double wake is harmless).
    bool wake(SchedEntity& entity);
    // Any state but Exited -> Exited: leaves the run queue or the timer queue. Exiting the
    // current entity requests a switch. Panics for the idle thread and when already Exited.
    void exit(SchedEntity& entity);
    // Changes the base priority. A queued entity moves to the tail of its new level (fresh
    // quantum); a boost survives unless the new priority is Critical. Requests a switch if the
    // change lets a queued entity outrank the running one. Panics for the idle thread.
    void set_priority(SchedEntity& entity, Priority priority);
    // Sets the quantum (0 = the default). The remaining quantum is clamped to it; otherwise it
    // takes effect at the next refill.
    void set_quantum(SchedEntity& entity, uint32_t quantum_ticks);

    // ---- Statistics -------------------------------------------------------------------------
    PolicyCounts counts() const;
    const PolicyCounters& counters() const { return m_counters; }
    const RunQueue& run_queue() const { return m_queue; }
    // The earliest wake tick in the timer queue (UINT64_MAX when nobody sleeps).
    uint64_t next_wake_tick() const;
    size_t sleeper_count() const { return m_timers.size(); }
    // CPU time in nanoseconds: cpu_ticks() times the configured tick period, exactly (floor).
    uint64_t cpu_time_ns(const SchedEntity& entity) const;
    uint64_t ticks_to_ns(uint64_t ticks) const;

    // Full consistency check, O(n): the run queue, the age list (order, eligibility), the
    // timer queue (order, states), the current entity and the counts. nullptr when consistent,
    // else a description of the first problem found.
    const char* check_invariants() const;

private:
    // A ready entity takes the CPU: its time waiting since it became ready is added to its figures.
    void end_wait(SchedEntity& entity);
    using AgeList = AgeRing;
    using TimerList = lib::IntrusiveList<SchedEntity, &SchedEntity::m_timer_link>;

    // A zero quantum or period denominator would make no sense: replace them with 1.
    static constexpr PolicyConfig sanitized(PolicyConfig config)
    {
        if (config.default_quantum_ticks == 0)
            config.default_quantum_ticks = 1;
        if (config.tick_period_denominator == 0)
            config.tick_period_denominator = 1;
        return config;
    }

    // Bit index_of(p) set <=> an unboosted, queued entity of base priority p is eligible for a
    // boost (the config part of eligible_for_boost, computed once).
    static constexpr uint8_t boostable_priorities(const PolicyConfig& config)
    {
        if (config.starvation_bound_ticks == 0)
            return 0;
        uint8_t mask = 0;
        for (unsigned p = 0; p < kPriorityCount; ++p) {
            const auto priority = static_cast<Priority>(p);
            if (priority == Priority::Critical)
                continue;
            if (priority == Priority::Idle && !config.boost_idle_priority)
                continue;
            mask = static_cast<uint8_t>(mask | (1u << p));
        }
        return mask;
    }

    // The small helpers sit on every switch and tick, and the kernel is built without LTO: always
    // inlined. Those yield_and_pick_next() needs are defined below the class, the rest (inline)
    // in policy.cpp, their only user.
    void require_admitted(const SchedEntity& entity, const char* operation) const;
    [[gnu::always_inline]] inline bool boostable(const SchedEntity& entity) const;
    [[gnu::always_inline]] inline bool eligible_for_boost(const SchedEntity& entity) const;
    [[gnu::always_inline]] inline void set_state(SchedEntity& entity, ThreadState state);
    [[gnu::always_inline]] inline void set_boosted(SchedEntity& entity, bool boosted);
    [[gnu::always_inline]] inline void drop_boost(SchedEntity& entity);
    [[gnu::always_inline]] inline void enqueue(SchedEntity& entity, bool at_head);
    [[gnu::always_inline]] inline void dequeue(SchedEntity& entity);
    [[gnu::always_inline]] inline void age_list_append(SchedEntity& entity);
    [[gnu::always_inline]] inline void age_list_remove(SchedEntity& entity);
    [[gnu::always_inline]] inline void sync_age_list(SchedEntity& entity);
    void boost(SchedEntity& entity);
    void insert_timer(SchedEntity& entity);
    void leave(SchedEntity& entity, ThreadState state, const char* operation);
    [[gnu::always_inline]] inline void update_resched();
    // yield_and_pick_next()'s rare cases, literally yield() then pick_next() (out of line).
    SchedEntity* yield_then_pick_next();

    PolicyConfig m_config;
    uint8_t m_boostable_priorities;
    RunQueue m_queue;
    AgeList m_age;
    TimerList m_timers;
    SchedEntity* m_current = nullptr;
    SchedEntity* m_idle = nullptr;
    uint64_t m_now = 0;
    uint64_t m_sequence = 0;
    bool m_need_resched = false;

    uint64_t m_total = 0;
    uint64_t m_by_state[kThreadStateCount] = {};
    uint64_t m_by_priority[kPriorityCount] = {};
    uint64_t m_boosted = 0;
    PolicyCounters m_counters;
};

// ---- Inline: the kernel's yield path (sched::yield() inlines all of it) ----------------------

inline bool Policy::boostable(const SchedEntity& entity) const
{
    return !entity.m_idle_thread && ((m_boostable_priorities >> index_of(entity.m_base_priority)) & 1) != 0;
}

// m_boostable caches boostable(): set wherever the idle flag or the base priority changes.
inline bool Policy::eligible_for_boost(const SchedEntity& entity) const
{
    return !entity.m_boosted && entity.m_boostable;
}

inline void Policy::set_boosted(SchedEntity& entity, bool boosted)
{
    if (entity.m_boosted == boosted)
        return;
    entity.m_boosted = boosted;
    if (boosted)
        ++m_boosted;
    else
        --m_boosted;
}

// Only for entities that are not queued (the level is the queue index).
inline void Policy::drop_boost(SchedEntity& entity)
{
    if (entity.m_boosted) [[unlikely]] {
        set_boosted(entity, false);
        entity.m_level = level_of(entity.m_base_priority);
    }
}

// Appending stamps the time with now(), which keeps the list sorted by that stamp.
inline void Policy::age_list_append(SchedEntity& entity)
{
    entity.m_age_since = m_now;
    entity.m_sequence = ++m_sequence;
    m_age.push_back(entity);
    entity.m_in_age_list = true;
}

inline void Policy::end_wait(SchedEntity& entity)
{
    const uint64_t waited = m_now - entity.m_ready_since;
    entity.m_total_wait += waited;
    if (waited > entity.m_max_wait)
        entity.m_max_wait = waited;
}

inline void Policy::age_list_remove(SchedEntity& entity)
{
    if (!entity.m_in_age_list)
        return;
    m_age.remove(entity);
    entity.m_in_age_list = false;
}

inline SchedEntity* Policy::yield_and_pick_next()
{
    SchedEntity* const current = m_current;
    if (current == nullptr || current->m_state != ThreadState::Running || current->m_idle_thread) [[unlikely]] {
        return yield_then_pick_next();
    }

    // yield(): boost dropped, then enqueue() at the tail: fresh quantum, Ready since now, and on
    // the age list if eligible. pick_next(): it is not running any more, so nothing to requeue;
    // the most urgent head wins (`current` itself if nothing queued is at its level or above).
    drop_boost(*current);
    current->m_remaining_ticks = current->m_quantum_ticks;
    current->m_ready_since = m_now;
    const bool eligible = eligible_for_boost(*current);
    SchedEntity* const next = m_queue.push_back_pop_next(*current);
    m_need_resched = false; // set by yield(), cleared by pick_next()

    if (next == current) {
        // Appended to the age list and taken off again: only the stamps remain. Running -> Ready
        // -> Running leaves the per-state counts as they were. Not a switch.
        if (eligible) {
            current->m_age_since = m_now;
            current->m_sequence = ++m_sequence;
        }
        return current;
    }

    // The same age-list order as appending `current` first and then taking `next` off.
    age_list_remove(*next);
    if (eligible) [[likely]] // every priority but Critical, by default
        age_list_append(*current);
    // One Running -> Ready and one Ready -> Running: the per-state counts stay as they are.
    current->m_state = ThreadState::Ready;
    next->m_state = ThreadState::Running;

    ++current->m_voluntary;
    ++m_counters.voluntary_switches;
    // `next` was queued, so it is not the idle thread.
    end_wait(*next);
    ++next->m_runs;
    ++m_counters.context_switches;
    m_current = next;
    return next;
}

// ---- Fairness ("Harmony") -------------------------------------------------------------------
// Jain's fairness index of a set of CPU times x_1..x_n:
//     J = (sum x_i)^2 / (n * sum x_i^2)
// J is 1 when every x_i is equal and 1/n when one entity got everything; in general J = k/n when
// k entities share equally and the rest get nothing. The kernel has no FPU, so the result is in
// parts per million, rounded to nearest: 1'000'000 = perfectly fair. The empty set and an
// all-zero set count as perfectly fair (nobody got more than anybody else).
// Integer math only: the values are scaled down (right shift) just enough that the sums fit
// 128 bits, which only costs precision when values exceed ~2^(63 - log2 n): negligible.
inline constexpr uint32_t kJainPerfectPpm = 1'000'000;
uint32_t jain_index_ppm(lib::Span<const uint64_t> values);

} // namespace sched
