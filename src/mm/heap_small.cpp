// mm::Heap, small objects: the size classes' and typed caches' slabs (their pages, owners, and
// the ObjectCacheHost side). The slab layer itself is mm/slab_cache.
#include "mm/heap.h"

namespace mm {

// ---------------------------------------------------------------------------
// Slab pages and owners
// ---------------------------------------------------------------------------

void* Heap::SlabPages::allocate_pages(unsigned order)
{
    void* pages = m_heap.take_pages(order);
    if (pages != nullptr)
        m_heap.set_tags(reinterpret_cast<uintptr_t>(pages), size_t{1} << order, make_tag(TagKind::Slab, order));
    return pages;
}

void Heap::SlabPages::free_pages(void* p, unsigned order) { m_heap.give_pages(p, order); }

bool Heap::is_size_class(const SlabCache* cache) const
{
    const auto address = reinterpret_cast<uintptr_t>(cache);
    return address >= reinterpret_cast<uintptr_t>(&m_classes[0]) &&
        address < reinterpret_cast<uintptr_t>(&m_classes[kSizeClassCount]);
}

int Heap::object_cache_index(const SlabCache* cache) const
{
    for (size_t i = 0; i < m_object_cache_count; ++i) {
        if (m_object_caches[i] == cache)
            return static_cast<int>(i);
    }
    return -1;
}

lib::Expected<SlabCache*, HeapError> Heap::slab_owner(const void* ptr, uint8_t tag) const
{
    SlabCache* cache = SlabCache::cache_of(ptr, kHeapPageSize << tag_order(tag));
    // Tagged as a live slab but no header of a cache we know: damaged.
    if (cache == nullptr || (!is_size_class(cache) && object_cache_index(cache) < 0))
        return lib::unexpected(HeapError::Corrupted);
    return cache;
}

HeapError Heap::from_slab(SlabError error)
{
    switch (error) {
    case SlabError::ForeignPointer: return HeapError::Corrupted; // the tags said "slab"
    case SlabError::WrongCache: return HeapError::WrongCache;
    case SlabError::NotObjectStart: return HeapError::InteriorPointer;
    case SlabError::DoubleFree: return HeapError::DoubleFree;
    case SlabError::InvalidConfig: return HeapError::InvalidConfig;
    case SlabError::NotEmpty: return HeapError::NotEmpty;
    }
    return HeapError::Corrupted;
}

// ---------------------------------------------------------------------------
// Typed object caches
// ---------------------------------------------------------------------------

lib::Expected<void, HeapError> Heap::attach_cache(SlabCache& cache, const SlabCacheConfig& config)
{
    if (!m_ready)
        return lib::unexpected(HeapError::NotInitialized);
    if (object_cache_index(&cache) >= 0 || is_size_class(&cache))
        return lib::unexpected(HeapError::AlreadyRegistered);
    if (m_object_cache_count == kHeapMaxObjectCaches)
        return lib::unexpected(HeapError::RegistryFull);
    if (auto init = cache.init(config, m_slab_pages); !init)
        return lib::unexpected(from_slab(init.error()));
    cache.set_report_callback(&Heap::on_slab_report, this);
    m_object_caches[m_object_cache_count++] = &cache;
    return {};
}

lib::Expected<void, HeapError> Heap::detach_cache(SlabCache& cache)
{
    const int index = object_cache_index(&cache);
    if (index < 0)
        return lib::unexpected(HeapError::NotRegistered);
    if (auto released = cache.release_all(); !released)
        return lib::unexpected(HeapError::NotEmpty);
    for (size_t i = static_cast<size_t>(index); i + 1 < m_object_cache_count; ++i)
        m_object_caches[i] = m_object_caches[i + 1];
    m_object_caches[--m_object_cache_count] = nullptr;
    return {};
}

void* Heap::cache_allocate(SlabCache& cache)
{
    if (!m_ready || object_cache_index(&cache) < 0) {
        ++m_counters.failed_allocations;
        return nullptr;
    }
    if (inject_failure())
        return nullptr;
    void* p = cache.allocate();
    if (p == nullptr && !m_reclaiming) {
        reclaim(cache.slab_bytes() / kHeapPageSize);
        p = cache.allocate();
    }
    if (p == nullptr) {
        fail_allocation(Request{HeapLayer::Object, 0, cache.object_size(), cache.alignment()}, cache.name());
        return nullptr;
    }
    finish_allocation(p, cache.object_size());
    after_success();
    return p;
}

lib::Expected<void, HeapError> Heap::cache_validate(SlabCache& cache, const void* ptr)
{
    auto live = live_tag(ptr);
    if (!live)
        return lib::unexpected(live.error());
    switch (tag_kind(*live)) {
    case TagKind::Slab: {
        auto owner = slab_owner(ptr, *live);
        if (!owner)
            return lib::unexpected(owner.error());
        if (*owner != &cache)
            return lib::unexpected(HeapError::WrongCache);
        return {};
    }
    default: return lib::unexpected(HeapError::WrongCache); // general-heap memory
    }
}

lib::Expected<void, HeapError> Heap::cache_free(SlabCache& cache, void* ptr)
{
    if (ptr == nullptr)
        return {};
    if (auto valid = cache_validate(cache, ptr); !valid) {
        count_invalid_free();
        return valid;
    }
    if (auto freed = cache.free(ptr); !freed) {
        count_invalid_free();
        return lib::unexpected(from_slab(freed.error()));
    }
    ++m_counters.frees;
    m_counters.bytes_used -= cache.object_size();
    return {};
}

} // namespace mm
