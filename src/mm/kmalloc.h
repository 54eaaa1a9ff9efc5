#pragma once
// The Heartwood's kernel heap: one global mm::Heap (see heap.h) over
// mm::kernel_page_source(), guarded by an IRQ-saving spinlock, so every
// function here may be called from interrupt handlers.
//
//   mm::init_heap();                      // once, right after mm::init_frames
//   auto* p = static_cast<Foo*>(mm::kmalloc(sizeof(Foo)));
//   if (p == nullptr) { /* out of memory: callers handle it */ }
//   mm::kfree(p);                         // panics on an invalid free
//
// Every operator new/delete of the kernel routes here (mm/operator_new.cpp):
// plain new panics when memory runs out (it may not return nullptr); use
// `new (std::nothrow)` where failure is handled.
//
// Failures and damage:
//   - out of memory: the OOM handler logs a full report (request, totals,
//     buddyinfo, slabinfo, frames) and the call returns nullptr;
//   - an invalid free (foreign, interior, double, wrong cache) panics with the
//     address and the caller's return address;
//   - corruption found by the debug checks (poison, red zones) panics with the
//     report (cache or order, object, offset, bytes found).
//
// Typed caches for kernel objects (the Loom of Fate's threads and wait nodes):
//   constinit mm::ObjectCache<Thread> g_threads;
//   g_threads.init(mm::kernel_object_cache_host(), "thread");
//   Thread* t = g_threads.create(args...);   // nullptr when memory ran out
//   g_threads.destroy(t);                    // panics on an invalid pointer
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "mm/heap.h"

namespace mm {

// Builds the heap over the physmap window of all managed RAM (its page tags
// come from the frame allocator). Requires mm::init_frames; panics on failure.
// Later calls do nothing.
void init_heap();
bool heap_ready();

// nullptr before init_heap, for size 0 (never: served as 1 byte), or when
// memory ran out. 16-byte aligned.
void* kmalloc(size_t size);
// `alignment`: a power of two, any size up to the largest page block.
void* kmalloc_aligned(size_t size, size_t alignment);
// count * size zeroed bytes; nullptr on overflow.
void* kcalloc(size_t count, size_t size);
// C realloc semantics: nullptr ptr allocates, size 0 frees (returns nullptr);
// on OOM returns nullptr and ptr stays valid. Panics on an invalid ptr.
void* krealloc(void* ptr, size_t size);
// nullptr does nothing. Panics on an invalid pointer.
void kfree(void* ptr);
// Usable bytes at ptr (panics on an invalid pointer).
size_t ksize(const void* ptr);

// A snapshot copied under the lock (about 4 KiB: keep it off small stacks).
void heap_stats(HeapStats& out);
HeapCheckReport heap_check_invariants();
// Gives every empty slab and chunk back to the frame allocator.
size_t heap_shrink();
// Writes the statistics to the log.
void heap_log_stats();

// Memory pressure: watermarks in 4 KiB frames (the defaults scale with RAM);
// reclaimers run with the heap lock held and must free through the Heap& they
// get, never through kfree.
void heap_set_watermarks(uint64_t low_pages, uint64_t min_pages);
lib::Expected<void, HeapError> heap_register_reclaimer(HeapReclaimFn fn, void* context);
lib::Expected<void, HeapError> heap_unregister_reclaimer(HeapReclaimFn fn, void* context);

struct HeapOomHandler {
    HeapOomFn fn = nullptr;
    void* context = nullptr;
};
// Replaces the OOM handler (the default logs the full report); returns the
// previous one. The handler runs with the heap lock held: it must not allocate.
HeapOomHandler heap_set_oom_handler(HeapOomHandler handler);

// Fault injection for tests: the n-th kernel heap allocation from now fails.
void heap_fail_nth_allocation(uint64_t n);

// The locked host for kernel ObjectCaches. An invalid free or destroy panics.
ObjectCacheHost& kernel_object_cache_host();

namespace detail {
// kfree with the caller to blame (operator delete passes its own).
void kfree_from(void* ptr, uint64_t caller);
// The same for sized deletes; debug builds panic when `size` exceeds the block.
void kfree_sized_from(void* ptr, size_t size, uint64_t caller);
} // namespace detail

} // namespace mm
