// mm::Heap, whole pages: what it takes from its PageSource (under the watermarks) and gives
// back, the page tags, the large layer (blocks of whole pages), and reclaim under pressure.
#include "mm/heap.h"

namespace mm {

// ---------------------------------------------------------------------------
// Pages and tags
// ---------------------------------------------------------------------------

void Heap::set_tags(uintptr_t address, size_t pages, uint8_t tag)
{
    __builtin_memset(m_config.tags + ((address - m_config.window_base) >> 12), tag, pages);
}

// The tag of the heap page under ptr, or why ptr is not live heap memory at all: the first
// check of free, layer_of and cache_validate.
lib::Expected<uint8_t, HeapError> Heap::live_tag(const void* ptr) const
{
    if (!m_ready)
        return lib::unexpected(HeapError::NotInitialized);
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (ptr == nullptr || !in_window(address))
        return lib::unexpected(HeapError::ForeignPointer);
    const uint8_t tag = tag_at(address);
    if (tag_kind(tag) == TagKind::None)
        return lib::unexpected(tag == kTagReleased ? HeapError::DoubleFree : HeapError::ForeignPointer);
    return tag;
}

void* Heap::take_pages(unsigned order)
{
    const uint64_t pages = uint64_t{1} << order;
    if (m_config.source_free_pages != nullptr) {
        const uint64_t free_pages = m_config.source_free_pages(m_config.source_context);
        if (free_pages < pages + m_config.min_watermark_pages) {
            // Not there at all, or only by dipping into the min reserve.
            ++(free_pages < pages ? m_counters.source_failures : m_counters.watermark_refusals);
            m_pressure = true;
            return nullptr;
        }
        if (free_pages - pages < m_config.low_watermark_pages)
            m_pressure = true;
    }
    void* p = m_source.allocate_pages(order);
    if (p == nullptr) {
        ++m_counters.source_failures;
        m_pressure = true;
        return nullptr;
    }
    const uintptr_t address = reinterpret_cast<uintptr_t>(p);
    const uint64_t bytes = kHeapPageSize << order;
    if ((address & (bytes - 1)) != 0 || !in_window(address) ||
        bytes > m_config.window_bytes - (address - m_config.window_base)) {
        // The source broke its contract (alignment, or pages outside the window
        // the tags cover): refuse the pages rather than lose track of them.
        m_source.free_pages(p, order);
        ++m_counters.source_failures;
        return nullptr;
    }
    m_counters.pages_held += pages;
    if (m_counters.pages_held > m_counters.peak_pages_held)
        m_counters.peak_pages_held = m_counters.pages_held;
    return p;
}

void Heap::give_pages(void* pages, unsigned order)
{
    const uint64_t count = uint64_t{1} << order;
    set_tags(reinterpret_cast<uintptr_t>(pages), count, kTagReleased);
    m_counters.pages_held -= count;
    m_source.free_pages(pages, order);
}

// ---------------------------------------------------------------------------
// Large blocks
// ---------------------------------------------------------------------------

void* Heap::allocate_large(unsigned order)
{
    void* pages = take_pages(order);
    if (pages == nullptr)
        return nullptr;
    const auto base = reinterpret_cast<uintptr_t>(pages);
    const size_t count = size_t{1} << order;
    set_tags(base, 1, make_tag(TagKind::LargeHead, order));
    if (count > 1)
        set_tags(base + kHeapPageSize, count - 1, make_tag(TagKind::LargeTail, order));
    ++m_counters.large_blocks;
    m_counters.large_bytes += count * kHeapPageSize;
    return pages;
}

lib::Expected<void, HeapError> Heap::free_large(void* ptr, uint8_t tag)
{
    if ((reinterpret_cast<uintptr_t>(ptr) & (kHeapPageSize - 1)) != 0)
        return lib::unexpected(HeapError::InteriorPointer);
    const unsigned order = tag_order(tag);
    --m_counters.large_blocks;
    m_counters.large_bytes -= kHeapPageSize << order;
    m_counters.bytes_used -= kHeapPageSize << order;
    ++m_counters.frees;
    give_pages(ptr, order);
    return {};
}

// ---------------------------------------------------------------------------
// Pressure
// ---------------------------------------------------------------------------

lib::Expected<void, HeapError> Heap::register_reclaimer(HeapReclaimFn fn, void* context)
{
    if (fn == nullptr)
        return lib::unexpected(HeapError::InvalidConfig);
    for (size_t i = 0; i < m_reclaimer_count; ++i) {
        if (m_reclaimers[i].fn == fn && m_reclaimers[i].context == context)
            return lib::unexpected(HeapError::AlreadyRegistered);
    }
    if (m_reclaimer_count == kHeapMaxReclaimers)
        return lib::unexpected(HeapError::RegistryFull);
    m_reclaimers[m_reclaimer_count++] = Reclaimer{fn, context};
    return {};
}

lib::Expected<void, HeapError> Heap::unregister_reclaimer(HeapReclaimFn fn, void* context)
{
    for (size_t i = 0; i < m_reclaimer_count; ++i) {
        if (m_reclaimers[i].fn == fn && m_reclaimers[i].context == context) {
            for (size_t j = i; j + 1 < m_reclaimer_count; ++j)
                m_reclaimers[j] = m_reclaimers[j + 1];
            m_reclaimers[--m_reclaimer_count] = Reclaimer{};
            return {};
        }
    }
    return lib::unexpected(HeapError::NotRegistered);
}

void Heap::set_watermarks(uint64_t low_pages, uint64_t min_pages)
{
    m_config.low_watermark_pages = low_pages;
    m_config.min_watermark_pages = min_pages < low_pages ? min_pages : low_pages;
}

size_t Heap::reclaim(size_t pages_wanted)
{
    if (m_reclaiming)
        return 0;
    m_reclaiming = true;
    m_pressure = false;
    ++m_counters.pressure_events;
    if (m_config.source_free_pages != nullptr) {
        const uint64_t free_pages = m_config.source_free_pages(m_config.source_context);
        if (free_pages < m_config.low_watermark_pages)
            pages_wanted += m_config.low_watermark_pages - free_pages;
    }
    // A reclaimer may unregister itself: walk a snapshot.
    Reclaimer reclaimers[kHeapMaxReclaimers];
    const size_t count = m_reclaimer_count;
    for (size_t i = 0; i < count; ++i)
        reclaimers[i] = m_reclaimers[i];
    for (size_t i = 0; i < count; ++i) {
        ++m_counters.reclaimer_calls;
        reclaimers[i].fn(reclaimers[i].context, *this, pages_wanted);
    }
    const size_t released = shrink();
    m_reclaiming = false;
    return released;
}

size_t Heap::shrink()
{
    if (!m_ready)
        return 0;
    size_t released = 0;
    for (auto& cache : m_classes)
        released += cache.shrink();
    for (size_t i = 0; i < m_object_cache_count; ++i)
        released += m_object_caches[i]->shrink();
    while (!m_empty.empty()) {
        release_chunk(m_empty.front());
        released += chunk_bytes();
    }
    return released;
}

} // namespace mm
