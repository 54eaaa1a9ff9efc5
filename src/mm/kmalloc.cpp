// The Heartwood's kernel heap: the global mm::Heap, its lock, its page tags,
// and the panics and logs around it. See kmalloc.h.
//
// Kernel only (the host tests exercise mm::Heap directly).
#if defined(__AETHELOS_KERNEL__)

#include "mm/kmalloc.h"

#include <bit>
#include <new>

#include "arch/x86_64/memory_layout.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/panic.h"
#include "lib/thread_safety.h"
#include "lib/utility.h"
#include "mm/frames.h"
#include "sync/irq_spinlock.h"

namespace mm {

namespace {

using kernel::sync::IrqSpinLock;
using kernel::sync::LockRank;

constinit IrqSpinLock g_lock{"heap", LockRank::kHeap};
// The heap lives here from init_heap on: it cannot come from itself, and a
// global constructor would run before the frames exist.
alignas(Heap) unsigned char g_storage[sizeof(Heap)];
// Set once by init_heap, then read lock-free (a null check); the heap itself is used under g_lock.
Heap* g_heap AETHELOS_PT_GUARDED_BY(g_lock) = nullptr;
HeapOomHandler g_oom AETHELOS_GUARDED_BY(g_lock);

// Writes formatted text straight to every console (no line prefix).
struct LogSink final : lib::FormatSink {
    void write(const char* s, size_t n) override { lib::log::write_raw(s, n); }
};

void log_oom(void*, const HeapOomReport& report)
{
    lib::log::error("Mana Pool: an allocation of {} bytes cannot be met; the full report follows", report.size);
    LogSink sink;
    format_oom_report(sink, report);
}

// Called with the heap lock held: the OOM handler may be swapped at any time.
void on_oom(void*, const HeapOomReport& report) AETHELOS_REQUIRES(g_lock)
{
    g_lock.assert_held();
    if (g_oom.fn != nullptr)
        g_oom.fn(g_oom.context, report);
}

[[noreturn]] void on_corruption(void*, const HeapCorruption& corruption)
{
    static char text[kernel::detail::kPanicBufferSize];
    format_corruption(corruption, text, sizeof(text));
    kernel::panic_message(text);
}

uint64_t source_free_pages(void*) { return frames_stats().bytes_free / kFrameSize; }

void source_stats(void*, HeapSourceStats& out)
{
    const FrameStats s = frames_stats();
    out.available = true;
    out.total_pages = s.bytes_total / kFrameSize;
    out.free_pages = s.bytes_free / kFrameSize;
    out.order_count = kFrameOrders;
    for (unsigned k = 0; k < kFrameOrders; ++k) {
        out.free_blocks[k] = s.free_blocks[k];
        out.fragmentation_index[k] = s.fragmentation_index[k];
    }
}

[[noreturn, gnu::cold]] void bad_pointer(const char* what, const void* ptr, HeapError error, uint64_t caller)
{
    static char message[256];
    lib::format(message, sizeof(message), "Mana Pool: {}({:p}) from {:p}: {}", what, ptr,
                reinterpret_cast<const void*>(caller), to_string(error));
    kernel::panic_message(message, nullptr, caller);
}

// One physically contiguous, physmap-reachable buffer of `bytes` for the page
// tags. Up to 4 MiB (16 GiB of RAM) it is one frame block; beyond, a run of
// 4 MiB blocks that the frame allocator hands out back to back at boot
// (highest addresses first, so each next block sits right below the last).
uint8_t* allocate_tag_buffer(size_t bytes)
{
    const size_t pages = (bytes + kFrameSize - 1) / kFrameSize;
    if (pages <= (size_t{1} << kFrameMaxOrder)) {
        const unsigned order = pages <= 1 ? 0 : static_cast<unsigned>(std::bit_width(pages - 1));
        auto frame = frames_allocate(order);
        if (!frame)
            kernel::panic("Mana Pool: no {} KiB block for the heap's page tags: {}", (kFrameSize << order) >> 10,
                          to_string(frame.error()));
        return static_cast<uint8_t*>(frame_to_virt(*frame));
    }
    const size_t blocks = (bytes + kFrameMaxBlock - 1) / kFrameMaxBlock;
    PhysicalAddress lowest;
    for (size_t i = 0; i < blocks; ++i) {
        auto frame = frames_allocate(kFrameMaxOrder);
        if (!frame || (i > 0 && frame->get() + kFrameMaxBlock != lowest.get()))
            kernel::panic("Mana Pool: no contiguous {} MiB for the heap's page tags (block {} of {})", bytes >> 20, i,
                          blocks);
        lowest = *frame;
    }
    return static_cast<uint8_t*>(frame_to_virt(lowest));
}

class KernelCacheHost final : public ObjectCacheHost {
public:
    lib::Expected<void, HeapError> attach_cache(SlabCache& cache, const SlabCacheConfig& config) override
    {
        IrqSpinLock::Guard guard{g_lock};
        if (g_heap == nullptr)
            return lib::unexpected(HeapError::NotInitialized);
        return g_heap->attach_cache(cache, config);
    }
    lib::Expected<void, HeapError> detach_cache(SlabCache& cache) override
    {
        IrqSpinLock::Guard guard{g_lock};
        if (g_heap == nullptr)
            return lib::unexpected(HeapError::NotInitialized);
        return g_heap->detach_cache(cache);
    }
    void* cache_allocate(SlabCache& cache) override
    {
        IrqSpinLock::Guard guard{g_lock};
        return g_heap != nullptr ? g_heap->cache_allocate(cache) : nullptr;
    }
    [[gnu::noinline]] lib::Expected<void, HeapError> cache_free(SlabCache& cache, void* ptr) override
    {
        const auto caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
        lib::Expected<void, HeapError> result = lib::unexpected(HeapError::NotInitialized);
        {
            IrqSpinLock::Guard guard{g_lock};
            if (g_heap != nullptr)
                result = g_heap->cache_free(cache, ptr);
        }
        if (!result) [[unlikely]]
            bad_pointer(cache.name(), ptr, result.error(), caller);
        return result;
    }
    [[gnu::noinline]] lib::Expected<void, HeapError> cache_validate(SlabCache& cache, const void* ptr) override
    {
        const auto caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
        lib::Expected<void, HeapError> result = lib::unexpected(HeapError::NotInitialized);
        {
            IrqSpinLock::Guard guard{g_lock};
            if (g_heap != nullptr)
                result = g_heap->cache_validate(cache, ptr);
        }
        if (!result) [[unlikely]]
            bad_pointer(cache.name(), ptr, result.error(), caller);
        return result;
    }
};

constinit KernelCacheHost g_cache_host;

} // namespace

void init_heap()
{
    if (g_heap != nullptr)
        return;
    if (!frames_ready())
        kernel::panic("Mana Pool: init_heap before init_frames");

    // The window: the physmap from physical 0 to the end of the highest zone.
    const uint64_t window_bytes = lib::align_up(frames_managed_end().get(), kFrameSize);
    const size_t tag_bytes = window_bytes / kFrameSize;
    uint8_t* tags = allocate_tag_buffer(tag_bytes);

    // Watermarks scale with RAM: min = 1/128 of it (at least 128 KiB, at most
    // 32 MiB), low = twice that.
    const uint64_t total_pages = frames_stats().bytes_total / kFrameSize;
    const uint64_t min_pages = lib::clamp<uint64_t>(total_pages / 128, 32, 8192);

    HeapConfig config;
    config.window_base = arch::kPhysMapBase;
    config.window_bytes = window_bytes;
    config.tags = tags;
    config.tag_bytes = tag_bytes;
    config.low_watermark_pages = 2 * min_pages;
    config.min_watermark_pages = min_pages;
    config.source_free_pages = &source_free_pages;
    config.source_stats = &source_stats;
    config.on_oom = &on_oom;
    config.on_corruption = &on_corruption;

    IrqSpinLock::Guard guard{g_lock};
    if (g_oom.fn == nullptr) // keep one installed before the heap existed
        g_oom = HeapOomHandler{&log_oom, nullptr};
    auto* heap = new (g_storage) Heap(kernel_page_source(), config);
    if (auto status = heap->status(); !status)
        kernel::panic("Mana Pool: the kernel heap cannot start: {}", to_string(status.error()));
    g_heap = heap;
    guard.unlock();

    lib::log::info("Mana Pool: kernel heap over {} MiB of physmap ({} KiB of page tags), {} KiB chunks, "
                   "watermarks low {} / min {} frames, debug checks {}",
                   window_bytes >> 20, tag_bytes >> 10, heap->chunk_bytes() >> 10, config.low_watermark_pages,
                   config.min_watermark_pages, heap->debug_enabled() ? "on" : "off");
}

bool heap_ready() { return g_heap != nullptr; }

void* kmalloc(size_t size)
{
    if (g_heap == nullptr) [[unlikely]]
        return nullptr;
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->allocate(size);
}

void* kmalloc_aligned(size_t size, size_t alignment)
{
    if (g_heap == nullptr) [[unlikely]]
        return nullptr;
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->allocate(size, alignment);
}

void* kcalloc(size_t count, size_t size)
{
    if (g_heap == nullptr) [[unlikely]]
        return nullptr;
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        IrqSpinLock::Guard guard{g_lock};
        return g_heap->allocate_zeroed(count, size); // counts the failure, returns nullptr
    }
    void* p = kmalloc(total);
    if (p != nullptr)
        __builtin_memset(p, 0, total); // outside the lock: interrupts stay on meanwhile
    return p;
}

[[gnu::noinline]] void* krealloc(void* ptr, size_t size)
{
    const auto caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
    if (g_heap == nullptr) [[unlikely]]
        return nullptr;
    lib::Expected<void*, HeapError> result;
    {
        IrqSpinLock::Guard guard{g_lock};
        result = g_heap->reallocate(ptr, size);
    }
    if (!result) [[unlikely]]
        bad_pointer("krealloc", ptr, result.error(), caller);
    return *result;
}

void detail::kfree_from(void* ptr, uint64_t caller)
{
    if (ptr == nullptr)
        return;
    lib::Expected<void, HeapError> result = lib::unexpected(HeapError::NotInitialized);
    if (g_heap != nullptr) {
        IrqSpinLock::Guard guard{g_lock};
        result = g_heap->free(ptr);
    }
    if (!result) [[unlikely]]
        bad_pointer("kfree", ptr, result.error(), caller);
}

void detail::kfree_sized_from(void* ptr, size_t size, uint64_t caller)
{
#if defined(AETHELOS_DEBUG_CHECKS) && AETHELOS_DEBUG_CHECKS
    // Debug builds cross-check the size the compiler passes against the block.
    if (ptr == nullptr)
        return;
    lib::Expected<void, HeapError> result = lib::unexpected(HeapError::NotInitialized);
    size_t usable = 0;
    if (g_heap != nullptr) {
        IrqSpinLock::Guard guard{g_lock};
        auto found = g_heap->usable_size(ptr);
        if (found && *found < size)
            usable = *found;
        else
            result = g_heap->free(ptr);
    }
    if (usable != 0) [[unlikely]] {
        static char message[192];
        lib::format(message, sizeof(message),
                    "Mana Pool: sized delete of {} bytes at {:p} from {:p}, but the block "
                    "holds {} bytes",
                    size, ptr, reinterpret_cast<const void*>(caller), usable);
        kernel::panic_message(message, nullptr, caller);
    }
    if (!result) [[unlikely]]
        bad_pointer("operator delete", ptr, result.error(), caller);
#else
    (void)size;
    kfree_from(ptr, caller);
#endif
}

[[gnu::noinline]] void kfree(void* ptr)
{
    detail::kfree_from(ptr, reinterpret_cast<uint64_t>(__builtin_return_address(0)));
}

[[gnu::noinline]] size_t ksize(const void* ptr)
{
    const auto caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
    lib::Expected<size_t, HeapError> result = lib::unexpected(HeapError::NotInitialized);
    if (g_heap != nullptr) {
        IrqSpinLock::Guard guard{g_lock};
        result = g_heap->usable_size(ptr);
    }
    if (!result) [[unlikely]]
        bad_pointer("ksize", ptr, result.error(), caller);
    return *result;
}

void heap_stats(HeapStats& out)
{
    if (g_heap == nullptr) {
        out = HeapStats{};
        return;
    }
    {
        IrqSpinLock::Guard guard{g_lock};
        g_heap->stats_without_source(out);
    }
    // The frame allocator's figures under its own lock, after the heap's is dropped: the
    // statistics snapshot (kernel/stats.h) holds one inner lock at a time.
    source_stats(nullptr, out.source);
}

HeapCheckReport heap_check_invariants()
{
    if (g_heap == nullptr)
        return {};
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->check_invariants();
}

size_t heap_shrink()
{
    if (g_heap == nullptr)
        return 0;
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->shrink();
}

void heap_log_stats()
{
    // 4 KiB: from the heap itself rather than the stack, and formatted with
    // no lock held (the consoles are slow).
    auto* stats = static_cast<HeapStats*>(kmalloc(sizeof(HeapStats)));
    if (stats == nullptr) {
        lib::log::warn("Mana Pool: no memory for a heap statistics snapshot");
        return;
    }
    new (stats) HeapStats();
    heap_stats(*stats);
    LogSink sink;
    format_heap_stats(sink, *stats);
    kfree(stats);
}

void heap_set_watermarks(uint64_t low_pages, uint64_t min_pages)
{
    if (g_heap == nullptr)
        return;
    IrqSpinLock::Guard guard{g_lock};
    g_heap->set_watermarks(low_pages, min_pages);
}

lib::Expected<void, HeapError> heap_register_reclaimer(HeapReclaimFn fn, void* context)
{
    if (g_heap == nullptr)
        return lib::unexpected(HeapError::NotInitialized);
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->register_reclaimer(fn, context);
}

lib::Expected<void, HeapError> heap_unregister_reclaimer(HeapReclaimFn fn, void* context)
{
    if (g_heap == nullptr)
        return lib::unexpected(HeapError::NotInitialized);
    IrqSpinLock::Guard guard{g_lock};
    return g_heap->unregister_reclaimer(fn, context);
}

HeapOomHandler heap_set_oom_handler(HeapOomHandler handler)
{
    IrqSpinLock::Guard guard{g_lock};
    return lib::exchange(g_oom, handler);
}

void heap_fail_nth_allocation(uint64_t n)
{
    if (g_heap == nullptr)
        return;
    IrqSpinLock::Guard guard{g_lock};
    g_heap->fail_nth_allocation(n);
}

ObjectCacheHost& kernel_object_cache_host() { return g_cache_host; }

} // namespace mm

#endif // __AETHELOS_KERNEL__
