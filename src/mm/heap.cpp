// mm::Heap, the front door: construction, and allocate / free / reallocate, which classify a
// request or read a pointer's page tag and hand it to its layer (heap_small.cpp, heap_medium.cpp,
// heap_pages.cpp). Layers, tags, pressure and debug layout: see heap.h.
#include "mm/heap.h"

#include <bit>

#include "lib/log.h"

namespace mm {

// ---------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------

Heap::Heap(PageSource& source, const HeapConfig& config) : m_source(source), m_config(config), m_slab_pages(*this)
{
    if (auto valid = validate_config(); !valid) {
        m_init_error = valid.error();
        return;
    }
    m_debug = kSlabDebugAvailable &&
        (config.debug == SlabDebug::On || (config.debug == SlabDebug::Default && kSlabDebugDefault));
    __builtin_memset(m_config.tags, kTagNone, m_config.window_bytes / kHeapPageSize);

    m_medium_min_shift = static_cast<unsigned>(std::countr_zero(m_config.medium_min_block));
    m_medium_orders = static_cast<unsigned>(std::countr_zero(m_config.medium_max_block)) - m_medium_min_shift + 1;
    const size_t header = lib::align_up(sizeof(Chunk), size_t{64});
    const size_t meta =
        BuddyAllocator::metadata_bytes_needed(chunk_bytes(), m_config.medium_min_block, m_config.medium_max_block);
    m_chunk_meta_bytes = lib::align_up(header + meta, kHeapPageSize);

    for (unsigned i = 0; i < kSizeClassCount; ++i) {
        SlabCacheConfig cache;
        cache.name = size_class_name(i);
        cache.object_size = size_class_size(i);
        cache.alignment = kHeapSmallAlignment;
        cache.debug = m_debug ? SlabDebug::On : SlabDebug::Off;
        cache.max_empty_slabs = config.max_empty_slabs;
        if (!m_classes[i].init(cache, m_slab_pages)) {
            m_init_error = HeapError::InvalidConfig;
            return;
        }
        m_classes[i].set_report_callback(&Heap::on_slab_report, this);
    }
    m_ready = true;
}

lib::Expected<void, HeapError> Heap::validate_config() const
{
    const HeapConfig& c = m_config;
    const auto invalid = lib::unexpected(HeapError::InvalidConfig);
    if (c.tags == nullptr || c.window_bytes == 0 || (c.window_base & (kHeapPageSize - 1)) != 0 ||
        (c.window_bytes & (kHeapPageSize - 1)) != 0 || c.window_base + (c.window_bytes - 1) < c.window_base)
        return invalid;
    if (c.tag_bytes < c.window_bytes / kHeapPageSize)
        return invalid;
    if (c.chunk_order > kHeapMaxLargeOrder)
        return invalid;
    if (!lib::is_power_of_two(c.medium_min_block) || !lib::is_power_of_two(c.medium_max_block) ||
        c.medium_min_block < BuddyAllocator::kMinBlockSize || c.medium_max_block < c.medium_min_block ||
        c.medium_max_block > (size_t{1} << 31))
        return invalid;
    // (16 B .. 2 GiB is at most 28 orders: within kBuddyMaxOrders.)
    // Debug headers need room for themselves in the smallest block.
    if (c.medium_min_block < sizeof(MediumHeader))
        return invalid;
    const size_t chunk = kHeapPageSize << c.chunk_order;
    const size_t header = lib::align_up(sizeof(Chunk), size_t{64});
    const size_t meta = BuddyAllocator::metadata_bytes_needed(chunk, c.medium_min_block, c.medium_max_block);
    const size_t meta_bytes = lib::align_up(header + meta, kHeapPageSize);
    // At least one whole max-order block after the metadata.
    if (lib::align_up(meta_bytes, c.medium_max_block) + c.medium_max_block > chunk)
        return invalid;
    if (c.min_watermark_pages > c.low_watermark_pages)
        return invalid;
    return {};
}

lib::Expected<void, HeapError> Heap::status() const
{
    if (!m_ready)
        return lib::unexpected(m_init_error);
    return {};
}

// ---------------------------------------------------------------------------
// Allocation
// ---------------------------------------------------------------------------

lib::Expected<Heap::Request, HeapError> Heap::classify(size_t size, size_t requested_alignment) const
{
    // The request keeps the caller's alignment (0: default) for the OOM report.
    const size_t alignment = requested_alignment == 0 ? 1 : requested_alignment;
    if (!lib::is_power_of_two(alignment))
        return lib::unexpected(HeapError::InvalidConfig);
    if (size == 0)
        size = 1;
    if (size <= kLargestSizeClass && alignment <= kHeapSmallAlignment)
        return Request{HeapLayer::Small, size_class_index(size), size, requested_alignment};

    const size_t max_block = m_config.medium_max_block;
    if (size <= max_block && alignment <= max_block) {
        size_t bytes;
        bool fits;
        if (m_debug) {
            const size_t left = lib::max(kMediumLeftZone, alignment);
            bytes = left + size + kMediumRightZone;
            fits = left <= 32768 && bytes <= max_block;
        } else {
            bytes = lib::max(size, alignment);
            fits = true;
        }
        if (fits)
            return Request{HeapLayer::Medium, medium_order_for(bytes), size, requested_alignment};
    }

    const size_t bytes = lib::max(size, alignment);
    if (bytes > (kHeapPageSize << kHeapMaxLargeOrder))
        return lib::unexpected(HeapError::InvalidConfig);
    const size_t pages = (bytes + kHeapPageSize - 1) / kHeapPageSize;
    const unsigned order = pages <= 1 ? 0 : static_cast<unsigned>(std::bit_width(pages - 1));
    return Request{HeapLayer::Large, order, size, requested_alignment};
}

bool Heap::inject_failure()
{
    if (m_fail_countdown == 0 || --m_fail_countdown != 0)
        return false;
    ++m_counters.injected_failures;
    ++m_counters.failed_allocations;
    return true;
}

void* Heap::allocate_request(const Request& request)
{
    switch (request.layer) {
    case HeapLayer::Small: return m_classes[request.index].allocate();
    case HeapLayer::Medium: return allocate_medium(request.index, request.size, request.alignment);
    case HeapLayer::Large: return allocate_large(request.index);
    case HeapLayer::Object: break;
    }
    return nullptr;
}

void Heap::finish_allocation(void*, size_t usable)
{
    ++m_counters.allocations;
    m_counters.bytes_used += usable;
    if (m_counters.bytes_used > m_counters.peak_bytes_used)
        m_counters.peak_bytes_used = m_counters.bytes_used;
}

void Heap::after_success()
{
    if (m_pressure && !m_reclaiming)
        reclaim(0);
}

void Heap::fail_allocation(const Request& request, const char* cache_name)
{
    ++m_counters.failed_allocations;
    ++m_counters.oom_events;
    stats(m_oom_stats);
    HeapOomReport report;
    report.size = request.size;
    report.alignment = request.alignment;
    report.layer = request.layer;
    report.order = request.index;
    report.cache_name = cache_name;
    report.stats = &m_oom_stats;
    if (m_config.on_oom != nullptr)
        m_config.on_oom(m_config.oom_context, report);
    else
        lib::log::error("Mana Pool: out of memory: {} bytes from the {} layer ({} KiB held)", request.size,
                        to_string(request.layer), m_counters.pages_held * 4);
}

void* Heap::allocate(size_t size, size_t alignment)
{
    if (!m_ready) {
        ++m_counters.failed_allocations;
        return nullptr;
    }
    if (inject_failure())
        return nullptr;
    const auto request = classify(size, alignment);
    if (!request) {
        ++m_counters.failed_allocations;
        return nullptr;
    }
    void* p = allocate_request(*request);
    if (p == nullptr && !m_reclaiming) {
        reclaim(request->layer == HeapLayer::Large ? size_t{1} << request->index : size_t{1} << m_config.chunk_order);
        p = allocate_request(*request);
    }
    if (p == nullptr) {
        fail_allocation(*request, nullptr);
        return nullptr;
    }
    size_t usable;
    switch (request->layer) {
    case HeapLayer::Small: usable = size_class_size(request->index); break;
    case HeapLayer::Medium: usable = m_config.medium_min_block << request->index; break;
    default: usable = kHeapPageSize << request->index; break;
    }
    finish_allocation(p, usable);
    after_success();
    return p;
}

void* Heap::allocate_zeroed(size_t count, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(count, size, &total)) {
        ++m_counters.failed_allocations;
        return nullptr;
    }
    void* p = allocate(total);
    if (p != nullptr)
        __builtin_memset(p, 0, total);
    return p;
}

// ---------------------------------------------------------------------------
// Free, realloc, usable size
// ---------------------------------------------------------------------------

lib::Expected<void, HeapError> Heap::free(void* ptr)
{
    if (ptr == nullptr)
        return {};
    auto result = [&]() -> lib::Expected<void, HeapError> {
        auto live = live_tag(ptr);
        if (!live)
            return lib::unexpected(live.error());
        const uint8_t tag = *live;
        switch (tag_kind(tag)) {
        case TagKind::None: break; // turned away by live_tag
        case TagKind::Slab: {
            auto owner = slab_owner(ptr, tag);
            if (!owner)
                return lib::unexpected(owner.error());
            SlabCache* cache = *owner;
            if (!is_size_class(cache))
                return lib::unexpected(HeapError::WrongCache);
            if (auto freed = cache->free(ptr); !freed)
                return lib::unexpected(from_slab(freed.error()));
            ++m_counters.frees;
            m_counters.bytes_used -= cache->object_size();
            return {};
        }
        case TagKind::ChunkMeta: return lib::unexpected(HeapError::InteriorPointer);
        case TagKind::Chunk: return free_medium(ptr);
        case TagKind::LargeHead: return free_large(ptr, tag);
        case TagKind::LargeTail: return lib::unexpected(HeapError::InteriorPointer);
        }
        return lib::unexpected(HeapError::Corrupted);
    }();
    if (!result)
        count_invalid_free();
    return result;
}

lib::Expected<HeapLayer, HeapError> Heap::layer_of(const void* ptr) const
{
    auto live = live_tag(ptr);
    if (!live)
        return lib::unexpected(live.error());
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    const uint8_t tag = *live;
    switch (tag_kind(tag)) {
    case TagKind::None: break; // turned away by live_tag
    case TagKind::Slab: {
        auto owner = slab_owner(ptr, tag);
        if (!owner)
            return lib::unexpected(owner.error());
        return is_size_class(*owner) ? HeapLayer::Small : HeapLayer::Object;
    }
    case TagKind::ChunkMeta: return lib::unexpected(HeapError::InteriorPointer);
    case TagKind::Chunk: {
        auto block = find_medium(ptr);
        if (!block)
            return lib::unexpected(block.error());
        if (m_debug) {
            MediumHeader header;
            __builtin_memcpy(&header, reinterpret_cast<const void*>(block->block), sizeof(header));
            if (!medium_header_ok(*block, header))
                return lib::unexpected(HeapError::Corrupted);
            if (address != block->block + header.left)
                return lib::unexpected(HeapError::InteriorPointer);
        }
        return HeapLayer::Medium;
    }
    case TagKind::LargeHead:
        if ((address & (kHeapPageSize - 1)) != 0)
            return lib::unexpected(HeapError::InteriorPointer);
        return HeapLayer::Large;
    case TagKind::LargeTail: return lib::unexpected(HeapError::InteriorPointer);
    }
    return lib::unexpected(HeapError::Corrupted);
}

lib::Expected<size_t, HeapError> Heap::usable_size(const void* ptr) const
{
    auto layer = layer_of(ptr);
    if (!layer)
        return lib::unexpected(layer.error());
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    switch (*layer) {
    case HeapLayer::Small:
    case HeapLayer::Object: return (*slab_owner(ptr, tag_at(address)))->object_size();
    case HeapLayer::Medium: return medium_requested(*find_medium(ptr));
    case HeapLayer::Large: return kHeapPageSize << tag_order(tag_at(address));
    }
    return lib::unexpected(HeapError::Corrupted);
}

lib::Expected<void*, HeapError> Heap::reallocate(void* ptr, size_t new_size)
{
    if (ptr == nullptr)
        return allocate(new_size);
    if (new_size == 0) {
        if (auto freed = free(ptr); !freed)
            return lib::unexpected(freed.error());
        return static_cast<void*>(nullptr);
    }
    auto layer = layer_of(ptr);
    if (!layer) {
        count_invalid_free();
        return lib::unexpected(layer.error());
    }
    if (*layer == HeapLayer::Object) {
        count_invalid_free();
        return lib::unexpected(HeapError::WrongCache);
    }
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    size_t capacity = 0; // what the block can hold in place
    size_t old_size = 0; // what the caller may have written
    MediumBlock block{};
    switch (*layer) {
    case HeapLayer::Small: {
        // The page tags cannot tell a live object's start from a free object or an
        // interior pointer; free() can, so the same checks come first.
        const SlabCache* cache = *slab_owner(ptr, tag_at(address));
        if (auto valid = cache->validate(ptr); !valid) {
            count_invalid_free();
            return lib::unexpected(from_slab(valid.error()));
        }
        capacity = old_size = cache->object_size();
        break;
    }
    case HeapLayer::Medium:
        block = *find_medium(ptr);
        if (m_debug)
            check_medium_zones(block, ptr, SlabCheckPoint::Free);
        capacity = medium_capacity(block);
        old_size = medium_requested(block);
        break;
    default: capacity = old_size = kHeapPageSize << tag_order(tag_at(address)); break;
    }

    // What a fresh allocation of new_size would occupy.
    size_t fresh = capacity;
    if (auto request = classify(new_size, 0)) {
        switch (request->layer) {
        case HeapLayer::Small: fresh = size_class_size(request->index); break;
        case HeapLayer::Medium: fresh = m_config.medium_min_block << request->index; break;
        default: fresh = kHeapPageSize << request->index; break;
        }
    }
    // Keeps the block, re-zoned for new_size (debug medium blocks record the requested size).
    auto keep_in_place = [&]() -> void* {
        if (*layer == HeapLayer::Medium && m_debug) {
            auto* object = static_cast<uint8_t*>(ptr);
            if (new_size > old_size)
                __builtin_memset(object + old_size, kSlabPoisonByte, new_size - old_size);
            __builtin_memset(object + new_size, kSlabRedZoneByte,
                             block.block + block.block_size - (address + new_size));
            MediumHeader header;
            __builtin_memcpy(&header, reinterpret_cast<const void*>(block.block), sizeof(header));
            header.requested = static_cast<uint32_t>(new_size);
            __builtin_memcpy(reinterpret_cast<void*>(block.block), &header, sizeof(header));
        }
        return ptr;
    };
    if (new_size <= capacity && fresh * 2 >= capacity)
        return keep_in_place();
    void* moved = allocate(new_size);
    if (moved == nullptr)
        return new_size <= capacity ? keep_in_place() : nullptr; // could not move: stays put, re-zoned
    __builtin_memcpy(moved, ptr, lib::min(old_size, new_size));
    if (auto freed = free(ptr); !freed) {
        // ptr passed free()'s checks above, so this means damage the checks
        // could not see: undo the move rather than leak it.
        (void)free(moved);
        return lib::unexpected(freed.error());
    }
    return moved;
}

} // namespace mm
