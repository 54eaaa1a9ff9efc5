// The Loom of Fate's policy core (sched::RunQueue, sched::Policy) on the host: FIFO order, bitmap
// pick-next, quantum accounting, head/tail requeue rules, priority preemption, sleepers, the
// starvation boost, Jain's index, and a randomized simulation checked step by step against a naive
// reference model of the documented rules.
#include <catch2/catch.hpp>

#include <algorithm>
#include <deque>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "sched/policy.h"
#include "support/host_panic.h"

using namespace sched;

namespace {

// Plays the kernel for directed tests: owns the entities (stable addresses) and drives the ticks.
struct Harness {
    Policy policy;
    std::deque<SchedEntity> entities;
    uint64_t now = 0;

    explicit Harness(const PolicyConfig& config = {}) : policy(config) { }

    SchedEntity& make(Priority priority = Priority::Normal, uint32_t quantum = 0)
    {
        return entities.emplace_back(entities.size(), priority, quantum);
    }
    SchedEntity& add(Priority priority = Priority::Normal, uint32_t quantum = 0)
    {
        SchedEntity& entity = make(priority, quantum);
        policy.admit(entity);
        return entity;
    }

    // One tick; switches at once if asked to (as the interrupt-exit path does). Returns the
    // entity the tick was charged to.
    SchedEntity* tick()
    {
        SchedEntity* charged = policy.current();
        policy.on_tick(++now);
        if (policy.need_resched())
            policy.pick_next();
        return charged;
    }
    void run(int ticks)
    {
        for (int i = 0; i < ticks; ++i)
            tick();
    }
    // Switch if a switch is due (the safe point after a voluntary call or an event).
    SchedEntity* settle()
    {
        if (policy.need_resched())
            policy.pick_next();
        return policy.current();
    }

    std::vector<uint64_t> queue_ids(uint8_t level) const
    {
        std::vector<uint64_t> ids;
        for (const SchedEntity* e = policy.run_queue().front(level); e; e = RunQueue::next(*e))
            ids.push_back(e->id());
        return ids;
    }

    void check() const
    {
        const char* problem = policy.check_invariants();
        INFO((problem ? problem : "consistent"));
        REQUIRE(problem == nullptr);
    }
};

using Ids = std::vector<uint64_t>;

// The kernel's instances can be constant-initialised (no global constructor needed).
[[maybe_unused]] constinit Policy g_constinit_policy;
[[maybe_unused]] constinit SchedEntity g_constinit_entity{7, Priority::High, 3};

PolicyConfig config(uint32_t quantum, uint64_t bound, bool boost_idle = true)
{
    PolicyConfig c;
    c.default_quantum_ticks = quantum;
    c.starvation_bound_ticks = bound;
    c.boost_idle_priority = boost_idle;
    return c;
}

} // namespace

// ---- Names and levels -------------------------------------------------------------------------------

TEST_CASE("sched: state and priority names, level mapping", "[sched]")
{
    CHECK(std::string(state_name(ThreadState::Running)) == "Weaving");
    CHECK(std::string(state_name(ThreadState::Ready)) == "Poised");
    CHECK(std::string(state_name(ThreadState::Sleeping)) == "Resting");
    CHECK(std::string(state_name(ThreadState::Blocked)) == "Tangled");
    CHECK(std::string(state_name(ThreadState::Exited)) == "Fading");
    CHECK(std::string(state_meaning(ThreadState::Blocked)) == "blocked");
    CHECK(std::string(priority_name(Priority::Critical)) == "Critical");
    CHECK(std::string(priority_name(Priority::Idle)) == "Idle");
    CHECK(std::string(level_name(kLevelBoost)) == "boost");

    CHECK(level_of(Priority::Critical) == kLevelCritical);
    CHECK(level_of(Priority::High) == kLevelHigh);
    CHECK(level_of(Priority::Normal) == kLevelNormal);
    CHECK(level_of(Priority::Low) == kLevelLow);
    CHECK(level_of(Priority::Idle) == kLevelIdle);
    // Boost sits strictly between Critical and High; the idle thread below everything.
    CHECK(outranks(kLevelCritical, kLevelBoost));
    CHECK(outranks(kLevelBoost, kLevelHigh));
    CHECK(outranks(kLevelIdle, kIdleThreadLevel));
    CHECK_FALSE(outranks(kLevelNormal, kLevelNormal));
}

// ---- RunQueue -----------------------------------------------------------------------------------------

TEST_CASE("sched: run queue keeps FIFO order per level, head and tail", "[sched]")
{
    std::deque<SchedEntity> e;
    for (uint64_t i = 0; i < 6; ++i)
        e.emplace_back(i, Priority::Normal, 1);
    // Entities in a queue must be Ready for check(); a Policy does that, here we cheat via admit.
    Policy scratch;
    for (auto& entity : e)
        scratch.admit(entity); // queues them all at Normal, in order
    const RunQueue& q = scratch.run_queue();
    REQUIRE(q.check() == nullptr);
    REQUIRE(q.size() == 6);
    REQUIRE(q.size(kLevelNormal) == 6);

    std::vector<uint64_t> order;
    for (const SchedEntity* p = q.front(kLevelNormal); p; p = RunQueue::next(*p))
        order.push_back(p->id());
    CHECK(order == Ids{0, 1, 2, 3, 4, 5});

    // A private queue: push_back/push_front/remove/pop keep FIFO semantics.
    RunQueue rq;
    std::deque<SchedEntity> f;
    for (uint64_t i = 0; i < 5; ++i)
        f.emplace_back(100 + i, Priority::Low, 1);
    rq.push_back(f[0]);
    rq.push_back(f[1]);
    rq.push_back(f[2]);
    rq.push_front(f[3]); // head: 103 100 101 102
    rq.push_back(f[4]);  //       103 100 101 102 104
    rq.remove(f[1]);     //       103 100 102 104
    CHECK(rq.size() == 4);
    CHECK(f[1].queued_level() == SchedEntity::kNotQueued);
    CHECK(f[0].queued_level() == kLevelLow);
    std::vector<uint64_t> popped;
    while (SchedEntity* p = rq.pop_next())
        popped.push_back(p->id());
    CHECK(popped == Ids{103, 100, 102, 104});
    CHECK(rq.empty());
    CHECK(rq.highest_level() == RunQueue::kNoLevel);
    CHECK(rq.peek_next() == nullptr);
}

TEST_CASE("sched: run queue bitmap picks the most urgent non-empty level", "[sched]")
{
    RunQueue rq;
    SchedEntity idle_prio(1, Priority::Idle, 1), low(2, Priority::Low, 1), normal(3, Priority::Normal, 1),
        high(4, Priority::High, 1), critical(5, Priority::Critical, 1);
    CHECK(rq.non_empty_mask() == 0);
    rq.push_back(low);
    rq.push_back(idle_prio);
    CHECK(rq.non_empty_mask() == ((1u << kLevelLow) | (1u << kLevelIdle)));
    CHECK(rq.peek_next() == &low);
    rq.push_back(normal);
    rq.push_back(high);
    CHECK(rq.peek_next() == &high);
    CHECK(rq.highest_level() == kLevelHigh);
    rq.push_back(critical);
    CHECK(rq.highest_level() == kLevelCritical);
    CHECK(rq.pop_next() == &critical);
    CHECK(rq.pop_next() == &high);
    CHECK(rq.pop_next() == &normal);
    CHECK(rq.pop_next() == &low);
    CHECK(rq.non_empty_mask() == (1u << kLevelIdle));
    CHECK(rq.pop_next() == &idle_prio);
    CHECK(rq.pop_next() == nullptr);
    CHECK(rq.non_empty_mask() == 0);
}

TEST_CASE("sched: run queue rejects double enqueue and removing what is not queued", "[sched]")
{
    RunQueue rq;
    SchedEntity a(1, Priority::Normal, 1);
    rq.push_back(a);
    REQUIRE_THROWS_AS(rq.push_back(a), kernel::HostPanic);
    REQUIRE_THROWS_AS(rq.push_front(a), kernel::HostPanic);
    rq.remove(a);
    REQUIRE_THROWS_AS(rq.remove(a), kernel::HostPanic);
    CHECK(rq.empty());
}

// ---- Quanta -----------------------------------------------------------------------------------------

TEST_CASE("sched: quantum accounting; an expired quantum goes to the tail with a fresh one", "[sched]")
{
    Harness h(config(3, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    CHECK(h.policy.need_resched()); // nothing runs yet, something is ready
    REQUIRE(h.policy.pick_next() == &a);
    CHECK(a.state() == ThreadState::Running);
    CHECK(a.remaining_ticks() == 3);

    CHECK_FALSE(h.policy.on_tick(++h.now));
    CHECK(a.remaining_ticks() == 2);
    CHECK_FALSE(h.policy.on_tick(++h.now));
    CHECK(a.remaining_ticks() == 1);
    CHECK(h.policy.on_tick(++h.now)); // expired: a switch is requested
    CHECK(a.remaining_ticks() == 0);
    CHECK(h.policy.counters().quantum_expiries == 1);
    h.check();

    REQUIRE(h.policy.pick_next() == &b);
    CHECK(a.state() == ThreadState::Ready);
    CHECK(a.remaining_ticks() == 3); // fresh
    CHECK(h.queue_ids(kLevelNormal) == Ids{a.id()});
    CHECK(a.cpu_ticks() == 3);
    CHECK(a.involuntary_switches() == 1);
    CHECK(a.preemptions() == 0);
    CHECK(h.policy.counters().context_switches == 2); // nothing -> a, a -> b
    CHECK(h.policy.cpu_time_ns(a) == 3'000'000);      // 1000 Hz default period
    h.check();
}

TEST_CASE("sched: a lone entity whose quantum expires keeps the CPU without a switch", "[sched]")
{
    Harness h(config(2, 0));
    SchedEntity& a = h.add();
    h.settle();
    const uint64_t switches = h.policy.counters().context_switches;
    h.run(10);
    CHECK(h.policy.current() == &a);
    CHECK(a.cpu_ticks() == 10);
    CHECK(h.policy.counters().context_switches == switches);
    CHECK(h.policy.counters().quantum_expiries == 5);
    CHECK(a.involuntary_switches() == 0);
}

TEST_CASE("sched: equal priorities round robin", "[sched]")
{
    Harness h(config(2, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    SchedEntity& c = h.add();
    h.settle();
    std::vector<uint64_t> charged;
    for (int i = 0; i < 12; ++i)
        charged.push_back(h.tick()->id());
    CHECK(charged == Ids{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2});
    CHECK(a.cpu_ticks() == 4);
    CHECK(b.cpu_ticks() == 4);
    CHECK(c.cpu_ticks() == 4);
    const uint64_t times[] = {a.cpu_ticks(), b.cpu_ticks(), c.cpu_ticks()};
    CHECK(jain_index_ppm(times) == kJainPerfectPpm);
    h.check();
}

TEST_CASE("sched: a preempted entity with quantum left resumes first, from the head", "[sched]")
{
    Harness h(config(5, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    REQUIRE(h.settle() == &a);
    h.run(2);
    CHECK(a.remaining_ticks() == 3);

    SchedEntity& hi = h.add(Priority::High); // admitting a more urgent entity preempts at once
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &hi);
    CHECK(a.state() == ThreadState::Ready);
    CHECK(a.remaining_ticks() == 3); // kept
    CHECK(h.queue_ids(kLevelNormal) == Ids{a.id(), b.id()});
    CHECK(a.preemptions() == 1);
    CHECK(a.involuntary_switches() == 1);
    CHECK(h.policy.counters().preemptions == 1);
    h.check();

    h.run(1);
    h.policy.block(hi);
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &a); // head of Normal, not b
    CHECK(hi.voluntary_switches() == 1);
    CHECK(a.remaining_ticks() == 3);
    std::vector<uint64_t> charged;
    for (int i = 0; i < 4; ++i)
        charged.push_back(h.tick()->id());
    CHECK(charged == Ids{a.id(), a.id(), a.id(), b.id()}); // a used its 3, then b
    CHECK(a.cpu_ticks() == 5);                             // exactly one quantum in total
    h.check();
}

TEST_CASE("sched: set_quantum clamps the remaining quantum and applies at the next refill", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& a = h.add();
    h.add();
    h.settle();
    h.run(2);
    CHECK(a.remaining_ticks() == 8);
    h.policy.set_quantum(a, 4);
    CHECK(a.remaining_ticks() == 4);
    h.policy.set_quantum(a, 6);
    CHECK(a.remaining_ticks() == 4); // not raised mid-quantum
    h.run(4);
    CHECK(h.policy.current() != &a);
    CHECK(a.remaining_ticks() == 6); // refilled with the new quantum
    h.policy.set_quantum(a, 0);
    CHECK(a.quantum_ticks() == 10); // 0 = the default
}

// ---- Priority preemption ---------------------------------------------------------------------------

TEST_CASE("sched: waking a more urgent entity requests a switch immediately; equals do not", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& running = h.add(Priority::Normal);
    SchedEntity& peer = h.add(Priority::Normal);
    SchedEntity& low = h.add(Priority::Low);
    SchedEntity& hi = h.add(Priority::High);
    SchedEntity& crit = h.add(Priority::Critical);
    REQUIRE(h.policy.pick_next() == &crit);
    h.policy.block(crit);
    REQUIRE(h.policy.pick_next() == &hi);
    h.policy.block(hi);
    REQUIRE(h.policy.pick_next() == &running);
    h.policy.block(peer); // Ready -> Blocked is allowed (suspend)
    h.policy.block(low);
    CHECK(h.policy.run_queue().empty());
    h.run(3);
    CHECK_FALSE(h.policy.need_resched());

    CHECK(h.policy.wake(low));
    CHECK_FALSE(h.policy.need_resched());
    CHECK(h.policy.wake(peer));
    CHECK_FALSE(h.policy.need_resched()); // equal priority: round robin, no preemption
    CHECK_FALSE(h.policy.wake(peer));     // double wake is harmless

    CHECK(h.policy.wake(hi));
    CHECK(h.policy.need_resched()); // within the same tick: no on_tick needed
    const uint64_t tick_before = h.now;
    REQUIRE(h.policy.pick_next() == &hi);
    CHECK(h.now == tick_before);
    CHECK(running.preemptions() == 1);
    CHECK(h.queue_ids(kLevelNormal) == Ids{running.id(), peer.id()});

    CHECK(h.policy.wake(crit));
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &crit);
    CHECK(hi.preemptions() == 1);
    h.check();
}

TEST_CASE("sched: set_priority moves a queued entity and re-evaluates preemption", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    SchedEntity& c = h.add();
    SchedEntity& d = h.add();
    REQUIRE(h.settle() == &a);
    h.run(1);

    h.policy.set_priority(d, Priority::High);
    CHECK(d.level() == kLevelHigh);
    CHECK(h.queue_ids(kLevelHigh) == Ids{d.id()});
    CHECK(h.queue_ids(kLevelNormal) == Ids{b.id(), c.id()});
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &d);
    CHECK(h.queue_ids(kLevelNormal) == Ids{a.id(), b.id(), c.id()});

    h.policy.set_priority(c, Priority::Low);
    CHECK(h.queue_ids(kLevelNormal) == Ids{a.id(), b.id()});
    CHECK(h.queue_ids(kLevelLow) == Ids{c.id()});
    CHECK_FALSE(h.policy.need_resched());

    h.run(2);
    h.policy.set_priority(d, Priority::Low); // the running one drops below queued ones
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &a);
    CHECK(h.queue_ids(kLevelLow) == Ids{d.id(), c.id()}); // d had quantum left: head
    CHECK(d.remaining_ticks() == 8);

    const PolicyCounts counts = h.policy.counts();
    CHECK(counts.at_priority(Priority::Normal) == 2);
    CHECK(counts.at_priority(Priority::Low) == 2);
    CHECK(counts.at_priority(Priority::High) == 0);
    CHECK(counts.total == 4);
    h.check();
}

// ---- Sleeping ------------------------------------------------------------------------------------

TEST_CASE("sched: sleepers wake exactly at their tick, FIFO among equal ticks", "[sched]")
{
    Harness h(config(100, 0));
    SchedEntity& hog = h.add();
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    SchedEntity& c = h.add();
    SchedEntity& d = h.add();
    SchedEntity& e = h.add();
    REQUIRE(h.settle() == &hog);

    CHECK_FALSE(h.policy.sleep_until(a, 0)); // deadline passed: nothing happens
    CHECK(a.state() == ThreadState::Ready);
    REQUIRE(h.policy.sleep_until(a, 5));
    REQUIRE(h.policy.sleep_until(d, 10));
    REQUIRE(h.policy.sleep_until(c, 10));
    REQUIRE(h.policy.sleep_until(b, 7));
    REQUIRE(h.policy.sleep_until(e, 100));
    CHECK(a.state() == ThreadState::Sleeping);
    CHECK(a.wake_tick() == 5);
    CHECK(h.policy.sleeper_count() == 5);
    CHECK(h.policy.next_wake_tick() == 5);
    CHECK(h.policy.counts().in_state(ThreadState::Sleeping) == 5);
    h.check();

    h.run(4); // ticks 1..4
    CHECK(a.state() == ThreadState::Sleeping);
    h.tick(); // tick 5
    CHECK(a.state() == ThreadState::Ready);
    CHECK(a.remaining_ticks() == 100);
    CHECK(h.policy.next_wake_tick() == 7);
    h.tick(); // 6
    CHECK(b.state() == ThreadState::Sleeping);
    h.tick(); // 7
    CHECK(b.state() == ThreadState::Ready);
    h.run(2); // 8, 9
    CHECK(c.state() == ThreadState::Sleeping);
    CHECK(d.state() == ThreadState::Sleeping);
    h.tick(); // 10: d slept first, so it queues first
    CHECK(h.queue_ids(kLevelNormal) == Ids{a.id(), b.id(), d.id(), c.id()});
    CHECK(h.policy.counters().timer_wakeups == 4);

    CHECK(h.policy.wake(e)); // an early wake cancels the sleep
    CHECK(e.state() == ThreadState::Ready);
    CHECK(h.policy.sleeper_count() == 0);
    CHECK(h.policy.next_wake_tick() == UINT64_MAX);
    h.check();

    // The running entity goes to sleep: a voluntary switch.
    REQUIRE(h.policy.sleep_until(hog, h.now + 3));
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &a);
    CHECK(hog.voluntary_switches() == 1);
    CHECK_THROWS_AS(h.policy.sleep_until(hog, h.now + 5), kernel::HostPanic); // already sleeping
    CHECK_THROWS_AS(h.policy.block(hog), kernel::HostPanic);
    h.check();
}

TEST_CASE("sched: a wake before the switch away keeps the entity running (no lost wake-up)", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    REQUIRE(h.settle() == &a);
    h.run(2);
    const uint64_t switches = h.policy.counters().context_switches;

    h.policy.block(a);
    CHECK(a.state() == ThreadState::Blocked);
    CHECK(h.policy.current() == &a); // still on the CPU until the switch
    CHECK(h.policy.wake(a));
    CHECK(a.state() == ThreadState::Running);
    REQUIRE(h.policy.pick_next() == &a); // keeps the CPU
    CHECK(h.policy.counters().context_switches == switches);
    CHECK(b.state() == ThreadState::Ready);

    // Same with a sleep whose tick comes before the switch.
    REQUIRE(h.policy.sleep_until(a, h.now + 1));
    h.policy.on_tick(++h.now);
    CHECK(a.state() == ThreadState::Running);
    REQUIRE(h.policy.pick_next() == &a);
    CHECK(h.policy.counters().context_switches == switches);
    h.check();
}

// ---- Starvation bound ----------------------------------------------------------------------------

TEST_CASE("sched: a starving entity is boosted after the bound and loses the boost after one quantum", "[sched]")
{
    Harness h(config(5, 52));
    SchedEntity& hog = h.add(Priority::High);
    SchedEntity& low = h.add(Priority::Low);
    REQUIRE(h.settle() == &hog);

    h.run(51);
    CHECK(low.state() == ThreadState::Ready);
    CHECK_FALSE(low.boosted());
    CHECK(low.cpu_ticks() == 0);
    CHECK(hog.remaining_ticks() == 4); // 51 = 10 quanta + 1

    h.policy.on_tick(++h.now); // tick 52: low has waited 52 ticks
    CHECK(low.boosted());
    CHECK(low.level() == kLevelBoost);
    CHECK(low.boosts() == 1);
    CHECK(low.remaining_ticks() == 5);
    CHECK(h.policy.counts().boosted == 1);
    CHECK(h.policy.need_resched()); // Boost outranks High
    REQUIRE(h.policy.pick_next() == &low);
    CHECK(low.max_wait_ticks() == 52);
    CHECK(hog.preemptions() == 1);
    CHECK(h.queue_ids(kLevelHigh) == Ids{hog.id()});
    CHECK(hog.remaining_ticks() == 3);
    h.check();

    // One full quantum at the boost level, then back to Low at the tail with a fresh quantum.
    std::vector<uint64_t> charged;
    for (int i = 0; i < 8; ++i)
        charged.push_back(h.tick()->id());
    CHECK(charged == Ids{1, 1, 1, 1, 1, 0, 0, 0});
    CHECK_FALSE(low.boosted());
    CHECK(low.level() == kLevelLow);
    CHECK(low.state() == ThreadState::Ready);
    CHECK(low.remaining_ticks() == 5);
    CHECK(low.cpu_ticks() == 5);
    CHECK(h.policy.counts().boosted == 0);
    CHECK(h.policy.counters().boosts == 1);
    h.check();

    // It starves again from the moment it re-entered the queue (tick 57): boosted at 57 + 52.
    while (h.now < 108)
        h.tick();
    CHECK_FALSE(low.boosted());
    h.tick();
    CHECK(low.boosts() == 2);
    CHECK(h.policy.current() == &low);
    h.check();
}

TEST_CASE("sched: a boost ends when the entity leaves the CPU voluntarily", "[sched]")
{
    Harness h(config(5, 10));
    SchedEntity& hog = h.add(Priority::High);
    SchedEntity& low = h.add(Priority::Low);
    h.settle();
    h.run(10);
    REQUIRE(h.policy.current() == &low);
    REQUIRE(low.boosted());
    h.run(2);
    h.policy.block(low);
    CHECK_FALSE(low.boosted());
    CHECK(low.level() == kLevelLow);
    CHECK(h.settle() == &hog);
    CHECK(h.policy.wake(low));
    CHECK(low.level() == kLevelLow);
    CHECK(h.queue_ids(kLevelLow) == Ids{low.id()});
    CHECK_FALSE(h.policy.need_resched());
    h.check();

    // Yield drops it too.
    h.run(10);
    REQUIRE(h.policy.current() == &low);
    REQUIRE(low.boosted());
    h.policy.yield();
    CHECK_FALSE(low.boosted());
    CHECK(h.settle() == &hog);
    CHECK(low.voluntary_switches() == 2);
    h.check();
}

TEST_CASE("sched: a boost survives a Critical preemption and a priority change", "[sched]")
{
    Harness h(config(5, 10));
    SchedEntity& hog = h.add(Priority::High);
    SchedEntity& low = h.add(Priority::Low);
    SchedEntity& crit = h.make(Priority::Critical);
    h.settle();
    h.run(10);
    REQUIRE(h.policy.current() == &low);
    REQUIRE(low.boosted());
    h.run(2); // 3 ticks of its boosted quantum left

    h.policy.admit(crit);
    REQUIRE(h.settle() == &crit);
    CHECK(low.boosted());
    CHECK(h.queue_ids(kLevelBoost) == Ids{low.id()}); // head of Boost, quantum kept
    CHECK(low.remaining_ticks() == 3);
    h.policy.set_priority(low, Priority::Normal);
    CHECK(low.boosted());
    CHECK(low.level() == kLevelBoost);
    h.policy.exit(crit);
    REQUIRE(h.settle() == &low);
    h.run(3);
    CHECK_FALSE(low.boosted());
    CHECK(low.level() == kLevelNormal);
    CHECK(h.policy.current() == &hog);
    h.check();

    // Becoming Critical ends a boost.
    h.run(10);
    REQUIRE(low.boosted());
    h.policy.set_priority(low, Priority::Critical);
    CHECK_FALSE(low.boosted());
    CHECK(low.level() == kLevelCritical);
    CHECK(h.policy.counts().boosted == 0);
    h.check();
}

TEST_CASE("sched: Critical entities are never boosted; Idle priority only if configured", "[sched]")
{
    for (const bool boost_idle : {false, true}) {
        Harness h(config(1000, 20, boost_idle));
        SchedEntity& crit_hog = h.add(Priority::Critical);
        SchedEntity& crit_waiter = h.add(Priority::Critical);
        REQUIRE(h.settle() == &crit_hog);
        h.run(100);
        CHECK(crit_waiter.boosts() == 0); // nothing outranks Critical: no boost for it
        h.policy.exit(crit_hog);
        h.policy.exit(crit_waiter);
        h.settle();

        SchedEntity& hog = h.add(Priority::Low);
        SchedEntity& background = h.add(Priority::Idle);
        REQUIRE(h.settle() == &hog);
        h.run(25);
        CHECK(background.boosts() == (boost_idle ? 1u : 0u));
        h.check();
    }
}

TEST_CASE("sched: the bound is measured per entity and boosted entities queue FIFO", "[sched]")
{
    Harness h(config(4, 30));
    SchedEntity& hog = h.add(Priority::High);
    SchedEntity& l1 = h.add(Priority::Low);
    h.settle();
    std::vector<uint64_t> charged;
    while (h.now < 5)
        charged.push_back(h.tick()->id());
    SchedEntity& l2 = h.add(Priority::Low);
    SchedEntity& l3 = h.add(Priority::Idle);
    while (h.now < 50)
        charged.push_back(h.tick()->id());
    // Ticks 31..50: l1's boosted quantum (31-34), the hog's leftover tick (35), then l2 and l3,
    // boosted together at tick 35 in order of entry, one quantum each, then the hog again.
    const Ids expected_tail{1, 1, 1, 1, 0, 2, 2, 2, 2, 3, 3, 3, 3, 0, 0, 0, 0, 0, 0, 0};
    REQUIRE(charged.size() == 50);
    CHECK(Ids(charged.begin(), charged.begin() + 30) == Ids(30, 0));
    CHECK(Ids(charged.end() - 20, charged.end()) == expected_tail);
    CHECK(l1.max_wait_ticks() == 30);
    CHECK(l2.max_wait_ticks() == 30);
    CHECK(l3.max_wait_ticks() == 34); // behind l2 for one quantum
    CHECK(hog.cpu_ticks() + l1.cpu_ticks() + l2.cpu_ticks() + l3.cpu_ticks() == 50);
    h.check();
}

// ---- Membership, idle thread, counts ---------------------------------------------------------------

TEST_CASE("sched: exit and reap keep the counts per state and priority exact", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& a = h.add(Priority::High);
    SchedEntity& b = h.add(Priority::Normal);
    SchedEntity& c = h.add(Priority::Low);
    REQUIRE(h.settle() == &a);
    h.policy.block(b);
    REQUIRE(h.policy.sleep_until(c, 10));
    PolicyCounts counts = h.policy.counts();
    CHECK(counts.total == 3);
    CHECK(counts.in_state(ThreadState::Running) == 1);
    CHECK(counts.in_state(ThreadState::Ready) == 0);
    CHECK(counts.in_state(ThreadState::Blocked) == 1);
    CHECK(counts.in_state(ThreadState::Sleeping) == 1);
    CHECK(counts.at_priority(Priority::High) == 1);

    h.policy.exit(c); // a sleeper can be killed
    CHECK(h.policy.sleeper_count() == 0);
    h.policy.exit(a); // the running one: a switch is due
    CHECK(h.policy.need_resched());
    CHECK(h.policy.current() == &a);
    REQUIRE_THROWS_AS(h.policy.reap(a), kernel::HostPanic); // still on the CPU
    CHECK(h.policy.pick_next() == nullptr);                 // nothing ready, no idle thread
    CHECK(a.voluntary_switches() == 1);
    counts = h.policy.counts();
    CHECK(counts.in_state(ThreadState::Exited) == 2);
    h.check();

    h.policy.reap(a);
    h.policy.reap(c);
    counts = h.policy.counts();
    CHECK(counts.total == 1);
    CHECK(counts.in_state(ThreadState::Exited) == 0);
    CHECK(counts.at_priority(Priority::High) == 0);
    CHECK(counts.at_priority(Priority::Normal) == 1);
    REQUIRE_THROWS_AS(h.policy.reap(b), kernel::HostPanic); // not exited
    REQUIRE_THROWS_AS(h.policy.exit(a), kernel::HostPanic); // reaped: not part of the Loom
    REQUIRE_THROWS_AS(h.policy.admit(b), kernel::HostPanic);
    h.policy.exit(b);
    REQUIRE_THROWS_AS(h.policy.exit(b), kernel::HostPanic);
    h.check();
}

TEST_CASE("sched: the idle thread runs when nothing is ready and anything ready preempts it", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& idle = h.make(Priority::Normal);
    h.policy.set_idle_thread(idle);
    CHECK(idle.base_priority() == Priority::Idle);
    CHECK(idle.level() == kIdleThreadLevel);
    REQUIRE(h.policy.pick_next() == &idle);
    h.run(3);
    CHECK(h.policy.counters().idle_ticks == 3);
    CHECK(idle.cpu_ticks() == 3);
    CHECK(h.policy.counts().in_state(ThreadState::Running) == 1);

    SchedEntity& bg = h.add(Priority::Idle); // even an Idle-priority entity outranks the idle thread
    CHECK(h.policy.need_resched());
    REQUIRE(h.policy.pick_next() == &bg);
    CHECK(idle.state() == ThreadState::Ready);
    CHECK_FALSE(idle.queued());
    CHECK(idle.involuntary_switches() == 1);
    CHECK(idle.preemptions() == 0);
    h.check();

    h.policy.block(bg);
    REQUIRE(h.policy.pick_next() == &idle);
    h.policy.yield(); // the idle thread may yield: it just gets picked again
    REQUIRE(h.policy.pick_next() == &idle);
    REQUIRE_THROWS_AS(h.policy.block(idle), kernel::HostPanic);
    REQUIRE_THROWS_AS(h.policy.exit(idle), kernel::HostPanic);
    REQUIRE_THROWS_AS(h.policy.set_priority(idle, Priority::High), kernel::HostPanic);
    SchedEntity& other = h.make();
    REQUIRE_THROWS_AS(h.policy.set_idle_thread(other), kernel::HostPanic);
    h.check();
}

TEST_CASE("sched: yield goes to the tail, and keeps the CPU when alone at its level", "[sched]")
{
    Harness h(config(10, 0));
    SchedEntity& a = h.add();
    SchedEntity& b = h.add();
    SchedEntity& low = h.add(Priority::Low);
    REQUIRE(h.settle() == &a);
    h.run(3);
    h.policy.yield();
    REQUIRE(h.policy.pick_next() == &b);
    CHECK(a.remaining_ticks() == 10);
    CHECK(a.voluntary_switches() == 1);
    h.policy.exit(a);
    h.policy.yield(); // b alone at Normal; low below
    const uint64_t switches = h.policy.counters().context_switches;
    REQUIRE(h.policy.pick_next() == &b);
    CHECK(h.policy.counters().context_switches == switches);
    CHECK(low.state() == ThreadState::Ready);
    h.check();
}

TEST_CASE("sched: time may not run backwards", "[sched]")
{
    Harness h;
    h.policy.on_tick(10);
    CHECK_NOTHROW(h.policy.on_tick(10));
    REQUIRE_THROWS_AS(h.policy.on_tick(9), kernel::HostPanic);
}

// ---- Jain's fairness index -------------------------------------------------------------------------

TEST_CASE("sched: Jain's fairness index on known vectors (parts per million)", "[sched]")
{
    auto jain = [](std::vector<uint64_t> v) { return jain_index_ppm(lib::Span<const uint64_t>(v.data(), v.size())); };
    CHECK(jain({}) == 1'000'000);
    CHECK(jain({0, 0, 0}) == 1'000'000);
    CHECK(jain({7}) == 1'000'000);
    CHECK(jain({5, 5, 5, 5}) == 1'000'000);
    CHECK(jain({100, 0, 0, 0}) == 250'000); // one hog among 4: 1/n
    CHECK(jain({9, 0, 0, 0, 0, 0, 0, 0, 0, 0}) == 100'000);
    CHECK(jain({5, 5, 0, 0, 0}) == 400'000); // k equal of n: k/n
    CHECK(jain({1, 2, 3, 4}) == 833'333);    // 100 / 120
    CHECK(jain({1, 2}) == 900'000);          // 9 / 10
    CHECK(jain({2, 1, 1}) == 888'889);       // 16 / 18, rounded
    // Huge values scale down without overflow.
    CHECK(jain({UINT64_MAX, UINT64_MAX, UINT64_MAX}) == 1'000'000);
    CHECK(jain({UINT64_MAX, 0}) == 500'000);
    CHECK(jain({UINT64_MAX, UINT64_MAX / 2}) == 900'000);
    std::vector<uint64_t> many(10'000, uint64_t{1} << 62);
    CHECK(jain(many) == 1'000'000);
    many[0] = 0;
    CHECK(jain(many) == 999'900);
    std::vector<uint64_t> hog(1000, 0);
    hog[17] = 123456789;
    CHECK(jain(hog) == 1000);
}

// ---- Pick-next cost ----------------------------------------------------------------------------------

TEST_CASE("sched: pick-next answers from the bitmap and FIFO heads at every queue size", "[sched]")
{
    // Complexity-independent properties only: whatever the number of ready entities, pick_next
    // returns the head of the most urgent non-empty level, leaves every other FIFO untouched, and
    // the run queue's footprint does not grow with it.
    for (const size_t n : {size_t{1}, size_t{10}, size_t{100}, size_t{1000}, size_t{10000}}) {
        Harness h(config(1, 0));
        for (size_t i = 0; i < n; ++i)
            h.add(static_cast<Priority>(1 + i % 4)); // High, Normal, Low, Idle in turn
        SchedEntity& urgent = h.add(Priority::Critical);
        CHECK(h.policy.run_queue().size() == n + 1);
        CHECK(h.policy.run_queue().peek_next() == &urgent);
        REQUIRE(h.policy.pick_next() == &urgent);
        h.policy.block(urgent);
        // Next: the first High one (id 0), then round robin over High only.
        REQUIRE(h.policy.pick_next()->id() == 0);
        const SchedEntity* low_head = h.policy.run_queue().front(kLevelLow);
        const size_t low_size = h.policy.run_queue().size(kLevelLow);
        h.run(8);
        CHECK(h.policy.current()->base_priority() == Priority::High);
        CHECK(h.policy.run_queue().front(kLevelLow) == low_head);
        CHECK(h.policy.run_queue().size(kLevelLow) == low_size);
        if (n <= 1000)
            h.check(); // O(n) walk
    }
}

// ---- Randomized model-based simulation --------------------------------------------------------------
//
// The simulator plays the kernel and the workload: entities of several kinds (hogs that never give
// up the CPU, sleepers, blockers woken by random "interrupts", yielders, short-lived ones that
// exit and are reaped and replaced), random priority and quantum changes, random kills, and
// optionally deferred switches (preemption disabled for a few ticks). Every call goes to the real
// Policy and to RefModel, a deliberately naive implementation of the rules documented in
// policy.h (std::deque per level with linear search, linear scans for sleepers and starving
// entities). After every step the two must agree on everything observable: who runs,
// need_resched, each level's FIFO order, every entity's state/level/quantum/statistics and all
// counts; and check_invariants() must pass. In the runs without deferral, every entity that gets
// the CPU must have waited at most bound + (B + 1) * Qmax ticks plus the ticks Critical entities
// ran meanwhile (B = boosted entities ahead of it), i.e. within the starvation bound + N quanta.

namespace {

struct RefEntity {
    bool admitted = false;
    ThreadState state = ThreadState::Blocked;
    Priority base = Priority::Normal;
    bool boosted = false;
    bool queued = false;
    bool in_age = false;
    uint8_t level = kLevelNormal;
    uint32_t quantum = 0;
    uint32_t remaining = 0;
    uint64_t ready_since = 0;
    uint64_t age_since = 0;
    uint64_t age_seq = 0;
    uint64_t wake = 0;
    uint64_t sleep_seq = 0;
    uint64_t boosted_at = 0;
    uint64_t boost_ahead = 0; // boosted entities ahead of it (including a running one) when boosted
    uint64_t cpu = 0, runs = 0, vol = 0, invol = 0, preempt = 0, boosts = 0, max_wait = 0;
};

class RefModel {
public:
    explicit RefModel(const PolicyConfig& config) : m_config(config) { }

    std::vector<RefEntity> e;
    std::deque<size_t> q[kLevelCount];
    std::vector<size_t> sleepers;
    long current = -1;
    bool resched = false;
    uint64_t now = 0;
    PolicyCounters counters;
    // Hook for the bound check: called with (entity, now) when an entity is given the CPU.
    std::function<void(size_t)> on_dispatch;

    void admit(size_t id, Priority priority, uint32_t quantum)
    {
        if (e.size() <= id)
            e.resize(id + 1);
        RefEntity& x = e[id];
        x = RefEntity{};
        x.admitted = true;
        x.base = priority;
        x.level = level_of(priority);
        x.quantum = quantum ? quantum : m_config.default_quantum_ticks;
        enqueue(id, false);
        update();
    }

    void tick(uint64_t t)
    {
        now = t;
        ++counters.ticks;
        if (current < 0)
            ++counters.idle_ticks;
        if (current >= 0) {
            RefEntity& c = e[current];
            ++c.cpu;
            if (c.state == ThreadState::Running && c.remaining > 0 && --c.remaining == 0) {
                ++counters.quantum_expiries;
                resched = true;
            }
        }
        std::vector<size_t> due;
        for (size_t id : sleepers)
            if (e[id].wake <= now)
                due.push_back(id);
        std::sort(due.begin(), due.end(), [&](size_t a, size_t b) {
            return e[a].wake != e[b].wake ? e[a].wake < e[b].wake : e[a].sleep_seq < e[b].sleep_seq;
        });
        for (size_t id : due) {
            erase(sleepers, id);
            make_runnable(id);
            ++counters.wakeups;
            ++counters.timer_wakeups;
        }
        if (m_config.starvation_bound_ticks) {
            std::vector<size_t> starving;
            for (size_t id = 0; id < e.size(); ++id)
                if (e[id].in_age && now - e[id].age_since >= m_config.starvation_bound_ticks)
                    starving.push_back(id);
            std::sort(starving.begin(), starving.end(),
                      [&](size_t a, size_t b) { return e[a].age_seq < e[b].age_seq; });
            for (size_t id : starving) {
                RefEntity& x = e[id];
                x.boost_ahead = q[kLevelBoost].size() +
                    ((current >= 0 && e[current].state == ThreadState::Running && e[current].boosted) ? 1 : 0);
                x.boosted_at = now;
                erase(q[x.level], id);
                x.in_age = false;
                x.boosted = true;
                x.level = kLevelBoost;
                x.remaining = x.quantum;
                q[kLevelBoost].push_back(id);
                ++x.boosts;
                ++counters.boosts;
            }
        }
        update();
    }

    long pick()
    {
        const long prev = current;
        const bool was_running = prev >= 0 && e[prev].state == ThreadState::Running;
        bool had = false;
        if (was_running) {
            had = e[prev].remaining > 0;
            if (!had)
                unboost(prev);
            enqueue(prev, had);
        }
        long next = -1;
        for (unsigned level = 0; level < kLevelCount; ++level)
            if (!q[level].empty()) {
                next = static_cast<long>(q[level].front());
                break;
            }
        if (next >= 0)
            dequeue(next);
        resched = false;
        if (next >= 0)
            e[next].state = ThreadState::Running;
        if (next == prev)
            return next;
        if (prev >= 0) {
            if (was_running) {
                ++e[prev].invol;
                ++counters.involuntary_switches;
                if (had) {
                    ++e[prev].preempt;
                    ++counters.preemptions;
                }
            } else {
                ++e[prev].vol;
                ++counters.voluntary_switches;
            }
        }
        if (next >= 0) {
            RefEntity& x = e[next];
            x.max_wait = std::max(x.max_wait, now - x.ready_since);
            ++x.runs;
            if (on_dispatch)
                on_dispatch(static_cast<size_t>(next));
        }
        ++counters.context_switches;
        current = next;
        return next;
    }

    void yield()
    {
        if (current < 0 || e[current].state != ThreadState::Running)
            return;
        resched = true;
        unboost(current);
        enqueue(current, false);
    }
    void block(size_t id) { leave(id, ThreadState::Blocked); }
    bool sleep_until(size_t id, uint64_t tick)
    {
        if (tick <= now)
            return false;
        leave(id, ThreadState::Sleeping);
        e[id].wake = tick;
        e[id].sleep_seq = ++m_seq;
        sleepers.push_back(id);
        return true;
    }
    void exit(size_t id) { leave(id, ThreadState::Exited); }
    bool wake(size_t id)
    {
        RefEntity& x = e[id];
        if (x.state == ThreadState::Sleeping)
            erase(sleepers, id);
        else if (x.state != ThreadState::Blocked)
            return false;
        make_runnable(id);
        ++counters.wakeups;
        update();
        return true;
    }
    void set_priority(size_t id, Priority p)
    {
        RefEntity& x = e[id];
        if (x.base == p)
            return;
        x.base = p;
        if (p == Priority::Critical)
            x.boosted = false;
        const uint8_t level = x.boosted ? kLevelBoost : level_of(p);
        if (x.queued) {
            if (level != x.level) {
                erase(q[x.level], id);
                x.level = level;
                x.remaining = x.quantum;
                q[level].push_back(id);
            }
            sync_age(id);
        } else {
            x.level = level;
        }
        update();
    }
    void set_quantum(size_t id, uint32_t quantum)
    {
        RefEntity& x = e[id];
        x.quantum = quantum ? quantum : m_config.default_quantum_ticks;
        x.remaining = std::min(x.remaining, x.quantum);
    }
    void reap(size_t id) { e[id].admitted = false; }

    bool eligible(const RefEntity& x) const
    {
        return m_config.starvation_bound_ticks && !x.boosted && x.base != Priority::Critical &&
            (x.base != Priority::Idle || m_config.boost_idle_priority);
    }

private:
    static void erase(std::deque<size_t>& d, size_t id) { d.erase(std::find(d.begin(), d.end(), id)); }
    static void erase(std::vector<size_t>& v, size_t id) { v.erase(std::find(v.begin(), v.end(), id)); }

    void unboost(size_t id)
    {
        if (!e[id].boosted)
            return;
        e[id].boosted = false;
        e[id].level = level_of(e[id].base);
    }
    void sync_age(size_t id)
    {
        RefEntity& x = e[id];
        const bool should = x.queued && eligible(x);
        if (should && !x.in_age) {
            x.in_age = true;
            x.age_since = now;
            x.age_seq = ++m_seq;
        } else if (!should) {
            x.in_age = false;
        }
    }
    void enqueue(size_t id, bool head)
    {
        RefEntity& x = e[id];
        if (!head)
            x.remaining = x.quantum;
        x.state = ThreadState::Ready;
        x.ready_since = now;
        if (head)
            q[x.level].push_front(id);
        else
            q[x.level].push_back(id);
        x.queued = true;
        sync_age(id);
    }
    void dequeue(size_t id)
    {
        erase(q[e[id].level], id);
        e[id].queued = false;
        e[id].in_age = false;
    }
    void make_runnable(size_t id)
    {
        if (static_cast<long>(id) == current)
            e[id].state = ThreadState::Running;
        else
            enqueue(id, false);
    }
    void leave(size_t id, ThreadState state)
    {
        RefEntity& x = e[id];
        if (x.state == ThreadState::Ready)
            dequeue(id);
        if (x.state == ThreadState::Sleeping)
            erase(sleepers, id);
        unboost(id);
        x.state = state;
        if (static_cast<long>(id) == current)
            resched = true;
        update();
    }
    void update()
    {
        long top = -1;
        for (unsigned level = 0; level < kLevelCount; ++level)
            if (!q[level].empty()) {
                top = level;
                break;
            }
        if (top < 0)
            return;
        if (current < 0 || e[current].state != ThreadState::Running || top < e[current].level)
            resched = true;
    }

    PolicyConfig m_config;
    uint64_t m_seq = 0;
};

enum class Kind { Hog, Sleeper, Blocker, Yielder, ShortLived };

struct SimParams {
    uint64_t seed = 1;
    size_t initial = 50;
    size_t cap = 200;
    uint64_t ticks = 5000;
    uint32_t max_quantum = 8;
    uint64_t bound = 60;
    bool boost_idle = true;
    bool defer = false;          // sometimes keep need_resched pending for a few ticks
    uint64_t compare_every = 1;  // full comparison period (ticks)
    bool one_step_yield = false; // yielders use yield_and_pick_next(), the kernel's fast path
};

struct SimResult {
    uint64_t dispatch_checks = 0;
    uint64_t boosts = 0;
    uint64_t max_wait_seen = 0;
    uint64_t switches = 0;
};

std::string compare(const Policy& p, const RefModel& r, const std::deque<SchedEntity>& ents)
{
    if (const char* problem = p.check_invariants())
        return std::string("invariant: ") + problem;
    const long cur = p.current() ? static_cast<long>(p.current()->id()) : -1;
    if (cur != r.current)
        return "current differs: " + std::to_string(cur) + " vs " + std::to_string(r.current);
    if (p.need_resched() != r.resched)
        return "need_resched differs";
    for (uint8_t level = 0; level < kLevelCount; ++level) {
        auto it = r.q[level].begin();
        for (const SchedEntity* x = p.run_queue().front(level); x; x = RunQueue::next(*x), ++it) {
            if (it == r.q[level].end() || *it != x->id())
                return "queue order differs at level " + std::string(level_name(level));
        }
        if (it != r.q[level].end())
            return "queue shorter than the model at level " + std::string(level_name(level));
    }
    PolicyCounts expected;
    for (size_t id = 0; id < ents.size(); ++id) {
        const SchedEntity& x = ents[id];
        const RefEntity& m = r.e[id];
        if (x.admitted() != m.admitted)
            return "admitted differs for " + std::to_string(id);
        if (!m.admitted)
            continue;
        ++expected.total;
        ++expected.by_state[index_of(m.state)];
        ++expected.by_priority[index_of(m.base)];
        expected.boosted += m.boosted ? 1 : 0;
        const std::string who = " of entity " + std::to_string(id);
        if (x.state() != m.state)
            return "state" + who;
        if (x.base_priority() != m.base)
            return "base priority" + who;
        if (x.level() != m.level)
            return "level" + who;
        if (x.boosted() != m.boosted)
            return "boosted" + who;
        if (x.queued() != m.queued)
            return "queued" + who;
        if (x.quantum_ticks() != m.quantum)
            return "quantum" + who;
        if (x.remaining_ticks() != m.remaining)
            return "remaining quantum" + who;
        if (x.state() == ThreadState::Sleeping && x.wake_tick() != m.wake)
            return "wake tick" + who;
        if (x.state() == ThreadState::Ready && x.ready_since() != m.ready_since)
            return "ready_since" + who;
        if (x.cpu_ticks() != m.cpu)
            return "cpu ticks" + who;
        if (x.runs() != m.runs)
            return "runs" + who;
        if (x.voluntary_switches() != m.vol)
            return "voluntary switches" + who;
        if (x.involuntary_switches() != m.invol)
            return "involuntary switches" + who;
        if (x.preemptions() != m.preempt)
            return "preemptions" + who;
        if (x.boosts() != m.boosts)
            return "boosts" + who;
        if (x.max_wait_ticks() != m.max_wait)
            return "max wait" + who;
    }
    const PolicyCounts counts = p.counts();
    if (counts.total != expected.total)
        return "total count";
    for (unsigned i = 0; i < kThreadStateCount; ++i)
        if (counts.by_state[i] != expected.by_state[i])
            return std::string("count in state ") + state_meaning(static_cast<ThreadState>(i));
    for (unsigned i = 0; i < kPriorityCount; ++i)
        if (counts.by_priority[i] != expected.by_priority[i])
            return std::string("count at priority ") + priority_name(static_cast<Priority>(i));
    if (counts.boosted != expected.boosted)
        return "boosted count";
    if (counts.sleeping != r.sleepers.size())
        return "sleeper count";
    const PolicyCounters& a = p.counters();
    const PolicyCounters& b = r.counters;
    if (a.ticks != b.ticks || a.idle_ticks != b.idle_ticks || a.context_switches != b.context_switches ||
        a.voluntary_switches != b.voluntary_switches || a.involuntary_switches != b.involuntary_switches ||
        a.preemptions != b.preemptions || a.quantum_expiries != b.quantum_expiries || a.wakeups != b.wakeups ||
        a.timer_wakeups != b.timer_wakeups || a.boosts != b.boosts)
        return "policy counters";
    return {};
}

SimResult simulate(const SimParams& params)
{
    PolicyConfig cfg;
    cfg.default_quantum_ticks = 5;
    cfg.starvation_bound_ticks = params.bound;
    cfg.boost_idle_priority = params.boost_idle;
    Policy policy(cfg);
    RefModel ref(cfg);
    std::deque<SchedEntity> ents;
    std::vector<Kind> kind;
    std::vector<uint64_t> burst; // CPU ticks left before the entity's next voluntary action
    std::mt19937_64 rng(params.seed);
    auto chance = [&](unsigned per_mille) { return rng() % 1000 < per_mille; };
    auto uniform = [&](uint64_t lo, uint64_t hi) { return lo + rng() % (hi - lo + 1); };
    SimResult result;
    // crit_prefix[t]: ticks 1..t charged to an entity running at level Critical.
    std::vector<uint64_t> crit_prefix(1, 0);
    uint64_t defer_until = 0;
    size_t live = 0;

    auto new_burst = [&](size_t id) -> uint64_t {
        if (id < ref.e.size() && ref.e[id].admitted && ref.e[id].base == Priority::Critical &&
            kind[id] != Kind::ShortLived)
            return uniform(1, 2); // Critical work is short
        switch (kind[id]) {
        case Kind::Hog: return UINT64_MAX;
        case Kind::Sleeper: return uniform(1, 6);
        case Kind::Blocker: return uniform(1, 12);
        case Kind::Yielder: return uniform(1, 10);
        case Kind::ShortLived: return uniform(1, 40);
        }
        return 1;
    };
    // Critical entities are few (nothing preempts them, so a crowd of them saturates the CPU and
    // nothing else is left to check).
    constexpr size_t kMaxCritical = 2;
    auto critical_alive = [&]() {
        size_t n = 0;
        for (const RefEntity& x : ref.e)
            n += (x.admitted && x.state != ThreadState::Exited && x.base == Priority::Critical) ? 1 : 0;
        return n;
    };
    auto spawn = [&]() {
        const size_t id = ents.size();
        Kind k = static_cast<Kind>(rng() % 5);
        Priority prio = static_cast<Priority>(1 + rng() % 4); // High..Idle
        // A few Critical entities, always short bursts that end in a sleep or a block.
        if (chance(20) && critical_alive() < kMaxCritical) {
            prio = Priority::Critical;
            k = chance(500) ? Kind::Sleeper : Kind::Blocker;
        }
        const uint32_t quantum = chance(200) ? 0 : static_cast<uint32_t>(uniform(1, params.max_quantum));
        ents.emplace_back(id, prio, quantum);
        kind.push_back(k);
        burst.push_back(0);
        policy.admit(ents[id]);
        ref.admit(id, prio, quantum);
        burst[id] = new_burst(id);
        ++live;
    };
    // Bound check at every dispatch (only meaningful when switches are never deferred).
    const uint64_t qmax = std::max<uint64_t>(params.max_quantum, cfg.default_quantum_ticks);
    std::string bound_failure;
    ref.on_dispatch = [&](size_t id) {
        if (params.defer || !params.bound || !bound_failure.empty())
            return;
        const RefEntity& x = ref.e[id];
        const uint64_t waited = ref.now - x.age_since;
        if (!x.boosted) {
            // Unboosted and eligible: it cannot have been waiting for `bound` ticks.
            if (ref.eligible(x) && waited >= params.bound)
                bound_failure = "entity " + std::to_string(id) + " waited " + std::to_string(waited) + " unboosted";
            return;
        }
        ++result.dispatch_checks;
        const uint64_t critical = crit_prefix[ref.now] - crit_prefix[x.age_since];
        const uint64_t limit = params.bound + (x.boost_ahead + 1) * qmax + critical;
        result.max_wait_seen = std::max(result.max_wait_seen, waited);
        if (waited > limit)
            bound_failure = "entity " + std::to_string(id) + " waited " + std::to_string(waited) + " ticks > " +
                std::to_string(limit);
    };
    auto random_entity = [&](auto predicate) -> long {
        for (int attempt = 0; attempt < 8; ++attempt) {
            const size_t id = rng() % ents.size();
            if (ref.e[id].admitted && predicate(id))
                return static_cast<long>(id);
        }
        return -1;
    };
    auto pick_both = [&]() -> std::string {
        SchedEntity* a = policy.pick_next();
        const long b = ref.pick();
        const long ai = a ? static_cast<long>(a->id()) : -1;
        if (ai != b)
            return "pick_next chose " + std::to_string(ai) + ", the model " + std::to_string(b);
        return {};
    };

    for (size_t i = 0; i < params.initial; ++i)
        spawn();

    for (uint64_t t = 1; t <= params.ticks; ++t) {
        const bool deferring = params.defer && t <= defer_until;
        std::string failure;
        const std::string at = " at tick " + std::to_string(t) + " (seed " + std::to_string(params.seed) + ")";

        bool picked = false; // the one-step yield already picked
        // 1. The running entity finished its burst: it sleeps, blocks, yields or exits.
        if (!deferring && ref.current >= 0 && ref.e[ref.current].state == ThreadState::Running &&
            burst[ref.current] == 0) {
            const size_t id = static_cast<size_t>(ref.current);
            SchedEntity& x = ents[id];
            switch (kind[id]) {
            case Kind::Hog: break;
            case Kind::Sleeper: {
                const uint64_t until = policy.now() + uniform(1, 40);
                policy.sleep_until(x, until);
                ref.sleep_until(id, until);
                break;
            }
            case Kind::Blocker:
                policy.block(x);
                ref.block(id);
                break;
            case Kind::Yielder:
                if (params.one_step_yield) {
                    // Must be exactly yield() followed by pick_next().
                    SchedEntity* a = policy.yield_and_pick_next();
                    ref.yield();
                    const long b = ref.pick();
                    const long ai = a ? static_cast<long>(a->id()) : -1;
                    picked = true;
                    if (ai != b)
                        failure =
                            "yield_and_pick_next chose " + std::to_string(ai) + ", the model " + std::to_string(b);
                } else {
                    policy.yield();
                    ref.yield();
                }
                break;
            case Kind::ShortLived:
                policy.exit(x);
                ref.exit(id);
                --live;
                break;
            }
            burst[id] = new_burst(id);
            if (!picked)
                failure = pick_both();
        }

        // 2. Events from "interrupts" and other CPUs' worth of activity.
        if (failure.empty()) {
            for (int n = 0; n < 3; ++n)
                if (chance(600))
                    if (long id = random_entity([&](size_t i) { return ref.e[i].state == ThreadState::Blocked; });
                        id >= 0) {
                        const bool a = policy.wake(ents[id]);
                        const bool b = ref.wake(id);
                        if (a != b)
                            failure = "wake result differs";
                    }
            if (chance(20))
                if (long id = random_entity([&](size_t i) { return ref.e[i].state == ThreadState::Sleeping; });
                    id >= 0) {
                    policy.wake(ents[id]);
                    ref.wake(id);
                }
            if (chance(40))
                if (long id = random_entity([&](size_t) { return true; }); id >= 0) {
                    Priority prio = chance(100) ? Priority::Critical : static_cast<Priority>(1 + rng() % 4);
                    // Hogs and yielders never become Critical: nothing could run past them.
                    if (prio == Priority::Critical &&
                        (kind[id] == Kind::Hog || kind[id] == Kind::Yielder || critical_alive() >= kMaxCritical))
                        prio = Priority::High;
                    policy.set_priority(ents[id], prio);
                    ref.set_priority(id, prio);
                }
            if (chance(30))
                if (long id = random_entity([&](size_t) { return true; }); id >= 0) {
                    const uint32_t q = static_cast<uint32_t>(uniform(0, params.max_quantum));
                    policy.set_quantum(ents[id], q);
                    ref.set_quantum(id, q);
                }
            if (chance(15))
                if (long id = random_entity([&](size_t i) {
                        return ref.e[i].state != ThreadState::Exited && static_cast<long>(i) != ref.current;
                    });
                    id >= 0) {
                    policy.exit(ents[id]);
                    ref.exit(id);
                    --live;
                }
            for (int n = 0; n < 2; ++n)
                if (long id = random_entity([&](size_t i) {
                        return ref.e[i].state == ThreadState::Exited && static_cast<long>(i) != ref.current;
                    });
                    id >= 0) {
                    policy.reap(ents[id]);
                    ref.reap(id);
                }
            while (live < params.cap && chance(live < params.initial ? 500 : 50))
                spawn();
            if (params.defer && !deferring && chance(50))
                defer_until = t + uniform(1, 4);
            if (!deferring && policy.need_resched())
                failure = pick_both();
        }

        // 3. The timer tick, charged to whoever is on the CPU; switch at interrupt exit.
        if (failure.empty()) {
            const bool critical_running = ref.current >= 0 && ref.e[ref.current].level == kLevelCritical;
            crit_prefix.push_back(crit_prefix.back() + (critical_running ? 1 : 0));
            if (ref.current >= 0 && burst[ref.current] != UINT64_MAX && burst[ref.current] > 0 &&
                ref.e[ref.current].state == ThreadState::Running)
                --burst[ref.current];
            const bool a = policy.on_tick(t);
            ref.tick(t);
            if (a != ref.resched)
                failure = "on_tick's need_resched differs";
            const bool still_deferring = params.defer && t <= defer_until;
            if (failure.empty() && a && !still_deferring)
                failure = pick_both();
        }

        if (failure.empty() && (t % params.compare_every == 0 || t == params.ticks))
            failure = compare(policy, ref, ents);
        if (failure.empty() && !bound_failure.empty())
            failure = "starvation bound: " + bound_failure;
        if (!failure.empty()) {
            FAIL_CHECK(failure + at);
            return result;
        }
    }

    // Whoever is still waiting at the end has not waited beyond the bound either.
    if (!params.defer && params.bound) {
        for (size_t id = 0; id < ents.size(); ++id) {
            const RefEntity& x = ref.e[id];
            if (!x.admitted || x.state != ThreadState::Ready || !(x.boosted || x.in_age))
                continue;
            const uint64_t waited = ref.now - x.age_since;
            const uint64_t critical = crit_prefix[ref.now] - crit_prefix[x.age_since];
            const uint64_t limit = params.bound + (x.boost_ahead + 1) * qmax + critical;
            INFO("entity " << id << " still waiting after " << waited << " ticks");
            CHECK(waited <= limit);
        }
    }
    result.boosts = policy.counters().boosts;
    result.switches = policy.counters().context_switches;
    return result;
}

} // namespace

TEST_CASE("sched: randomized simulation agrees with the reference model, every step", "[sched][model]")
{
    for (uint64_t seed = 1; seed <= 6; ++seed) {
        SimParams params;
        params.seed = seed;
        params.initial = 40;
        params.cap = 120;
        params.ticks = 6000;
        params.bound = 40 + seed * 10;
        params.boost_idle = seed % 3 != 0;
        const SimResult result = simulate(params);
        CHECK(result.boosts > 0);          // the workload really starves someone
        CHECK(result.dispatch_checks > 0); // and the bound was checked on boosted dispatches
        CHECK(result.switches > 1000);
    }
}

TEST_CASE("sched: the one-step yield agrees with the reference model, every step", "[sched][model]")
{
    for (uint64_t seed = 21; seed <= 24; ++seed) {
        SimParams params;
        params.seed = seed;
        params.one_step_yield = true;
        params.ticks = 5000;
        params.bound = seed % 2 ? 50 : 0;
        const SimResult result = simulate(params);
        CHECK(result.switches > 500);
    }
}

TEST_CASE("sched: randomized simulation with deferred switches agrees with the reference model", "[sched][model]")
{
    for (uint64_t seed = 11; seed <= 14; ++seed) {
        SimParams params;
        params.seed = seed;
        params.defer = true;
        params.ticks = 5000;
        params.bound = seed % 2 ? 30 : 0; // also with boosts disabled
        const SimResult result = simulate(params);
        CHECK(result.switches > 500);
    }
}

TEST_CASE("sched: randomized simulation with thousands of entities", "[sched][model]")
{
    SimParams params;
    params.seed = 99;
    params.initial = 1500;
    params.cap = 2500;
    params.ticks = 20000;
    params.bound = 500; // the default: 500 ms at 1000 Hz
    params.max_quantum = 10;
    params.compare_every = 97;
    const SimResult result = simulate(params);
    CHECK(result.boosts > 0);
    CHECK(result.dispatch_checks > 0);
}
