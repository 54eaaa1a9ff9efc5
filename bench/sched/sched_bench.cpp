// Host benchmarks for the Loom of Fate (issue 4, "Benchmark").
//
// 1. Pick-next against the number of ready entities (1 .. 10,000), steady state: the current
//    entity goes back to the run queue and the next one is picked, round robin through all of
//    them. Two layers:
//      BM_PolicyYieldPickNext  Policy::yield() + Policy::pick_next(): what sched::yield() asks of
//                              the policy (tail of its level, fresh quantum, age list, counters).
//      BM_RunQueuePopPush      RunQueue::pop_next() + push_back(): the bare bitmap-of-FIFOs queue.
//    Entities are admitted in a shuffled order, so the round robin walks memory out of order, as
//    threads allocated over time would; the time stays flat while they fit the caches and rises
//    only by the cache misses of touching a cold entity (the work per pick is constant).
//
// 2. The switch routine, as a ping-pong between two contexts (one iteration = two switches;
//    the "switch" counter is the time per switch):
//      BM_SwitchAethelOS         host_switch.S: the kernel's arch_context_switch instruction for
//                                instruction (6 pushes, fxsave64, rsp swap, fxrstor64, 6 pops).
//      BM_SwitchAethelOSNoFpu    the same without fxsave64/fxrstor64: the eager FPU policy's price.
//      BM_SwitchBoostFcontext    boost::context::detail::jump_fcontext, Boost's raw switch (saves
//                                the callee-saved GPRs plus only MXCSR and the x87 control word).
//      BM_SwitchBoostFiber       boost::context::fiber ping-pong (the modern API over fcontext).
//      BM_SwitchBoostContinuation boost::context::continuation ping-pong (callcc).
#include <benchmark/benchmark.h>

#include <boost/context/continuation.hpp>
#include <boost/context/detail/fcontext.hpp>
#include <boost/context/fiber.hpp>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "sched/policy.h"
#include "sched/run_queue.h"
#include "sched/sched_entity.h"

extern "C" {
void host_context_switch(uint64_t* save_sp, uint64_t load_sp, void* save_fpu, const void* load_fpu);
void host_context_switch_nofpu(uint64_t* save_sp, uint64_t load_sp, void* save_fpu, const void* load_fpu);
void host_thread_trampoline();
}

namespace {

// ---- 1. Pick-next ---------------------------------------------------------------------------

std::vector<size_t> shuffled_indices(size_t n)
{
    std::vector<size_t> order(n);
    std::iota(order.begin(), order.end(), size_t{0});
    std::mt19937_64 rng(0x100f'0f'fa7e);
    std::shuffle(order.begin(), order.end(), rng);
    return order;
}

void BM_PolicyYieldPickNext(benchmark::State& state)
{
    const auto n = static_cast<size_t>(state.range(0));
    sched::Policy policy;
    auto entities = std::make_unique<sched::SchedEntity[]>(n);
    for (size_t i : shuffled_indices(n))
        policy.admit(entities[i]);
    benchmark::DoNotOptimize(policy.pick_next());
    for (auto _ : state) {
        policy.yield();
        benchmark::DoNotOptimize(policy.pick_next());
    }
    if (policy.check_invariants() != nullptr)
        state.SkipWithError(policy.check_invariants());
    state.SetItemsProcessed(state.iterations());
    state.counters["ready"] = static_cast<double>(n);
}

void BM_RunQueuePopPush(benchmark::State& state)
{
    const auto n = static_cast<size_t>(state.range(0));
    sched::RunQueue queue;
    auto entities = std::make_unique<sched::SchedEntity[]>(n);
    for (size_t i : shuffled_indices(n))
        queue.push_back(entities[i]);
    for (auto _ : state) {
        sched::SchedEntity* next = queue.pop_next();
        benchmark::DoNotOptimize(next);
        queue.push_back(*next);
    }
    state.SetItemsProcessed(state.iterations());
    state.counters["ready"] = static_cast<double>(n);
}

BENCHMARK(BM_PolicyYieldPickNext)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);
BENCHMARK(BM_RunQueuePopPush)->Arg(1)->Arg(10)->Arg(100)->Arg(1000)->Arg(10000);

// ---- 2. The switch routine --------------------------------------------------------------------

using SwitchFn = void (*)(uint64_t*, uint64_t, void*, const void*);

// arch::ThreadContext's layout: the saved rsp and a 16-aligned 512-byte FXSAVE image.
struct HostContext {
    uint64_t sp = 0;
    alignas(16) uint8_t fpu[512] = {};
};

constexpr size_t kStackBytes = 64 * 1024;

struct PingPong {
    HostContext main;
    HostContext partner;
    SwitchFn fn = nullptr;
    alignas(16) uint8_t stack[kStackBytes];
};

// The partner context: switches straight back, forever (abandoned when the benchmark ends).
[[noreturn]] void partner_main(void* arg)
{
    auto* pp = static_cast<PingPong*>(arg);
    for (;;)
        pp->fn(&pp->partner.sp, pp->main.sp, pp->partner.fpu, pp->main.fpu);
}

// As the kernel's thread_context_init: r15 r14 r13 r12 rbx rbp, then the trampoline's address,
// then 16 zero bytes; the FPU image is the current one (the kernel uses a fninit'ed image).
void init_partner(PingPong& pp, SwitchFn fn)
{
    pp.fn = fn;
    asm volatile("fxsave64 %0" : "=m"(pp.partner.fpu));
    auto* sp = reinterpret_cast<uint64_t*>((reinterpret_cast<uintptr_t>(pp.stack + kStackBytes) & ~uintptr_t{15}) - 16);
    sp[0] = 0;
    sp[1] = 0;
    *--sp = reinterpret_cast<uint64_t>(&host_thread_trampoline);
    *--sp = 0;                                         // rbp
    *--sp = 0;                                         // rbx
    *--sp = reinterpret_cast<uint64_t>(&partner_main); // r12
    *--sp = reinterpret_cast<uint64_t>(&pp);           // r13
    *--sp = 0;                                         // r14
    *--sp = 0;                                         // r15
    pp.partner.sp = reinterpret_cast<uint64_t>(sp);
}

void report_switches(benchmark::State& state)
{
    const auto switches = static_cast<double>(state.iterations()) * 2;
    state.SetItemsProcessed(static_cast<int64_t>(switches));
    state.counters["switch"] = benchmark::Counter(switches, benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
}

template <SwitchFn Fn>
void BM_SwitchAethelOSImpl(benchmark::State& state)
{
    auto pp = std::make_unique<PingPong>();
    init_partner(*pp, Fn);
    Fn(&pp->main.sp, pp->partner.sp, pp->main.fpu, pp->partner.fpu); // first entry
    for (auto _ : state)
        Fn(&pp->main.sp, pp->partner.sp, pp->main.fpu, pp->partner.fpu);
    report_switches(state);
}

void BM_SwitchAethelOS(benchmark::State& state) { BM_SwitchAethelOSImpl<&host_context_switch>(state); }
void BM_SwitchAethelOSNoFpu(benchmark::State& state) { BM_SwitchAethelOSImpl<&host_context_switch_nofpu>(state); }

namespace bctx = boost::context;

void fcontext_partner(bctx::detail::transfer_t t)
{
    for (;;)
        t = bctx::detail::jump_fcontext(t.fctx, nullptr);
}

void BM_SwitchBoostFcontext(benchmark::State& state)
{
    auto stack = std::make_unique<PingPong>(); // only its stack is used
    bctx::detail::fcontext_t partner =
        bctx::detail::make_fcontext(stack->stack + kStackBytes, kStackBytes, &fcontext_partner);
    bctx::detail::transfer_t t = bctx::detail::jump_fcontext(partner, nullptr); // first entry
    for (auto _ : state)
        t = bctx::detail::jump_fcontext(t.fctx, nullptr);
    report_switches(state);
}

void BM_SwitchBoostFiber(benchmark::State& state)
{
    bctx::fiber partner{[](bctx::fiber&& main) {
        for (;;)
            main = std::move(main).resume();
        return std::move(main);
    }};
    partner = std::move(partner).resume(); // first entry
    for (auto _ : state)
        partner = std::move(partner).resume();
    report_switches(state);
}

void BM_SwitchBoostContinuation(benchmark::State& state)
{
    bctx::continuation partner = bctx::callcc([](bctx::continuation&& main) {
        for (;;)
            main = main.resume();
        return std::move(main);
    });
    for (auto _ : state)
        partner = partner.resume();
    report_switches(state);
}

BENCHMARK(BM_SwitchAethelOS);
BENCHMARK(BM_SwitchAethelOSNoFpu);
BENCHMARK(BM_SwitchBoostFcontext);
BENCHMARK(BM_SwitchBoostFiber);
BENCHMARK(BM_SwitchBoostContinuation);

} // namespace

BENCHMARK_MAIN();
