// mm::Heap. Layers, tags, pressure and debug layout: see heap.h.
#include "mm/heap.h"

#include <bit>
#include <new>

#include "lib/log.h"
#include "lib/string.h"
#include "mm/fragmentation.h"

namespace mm {

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

const char* to_string(HeapError error)
{
    switch (error) {
    case HeapError::ForeignPointer: return "pointer is not heap memory";
    case HeapError::InteriorPointer: return "pointer into the middle of a heap block or into heap metadata";
    case HeapError::DoubleFree: return "heap memory is not allocated (double free)";
    case HeapError::WrongCache: return "object belongs to another cache";
    case HeapError::Corrupted: return "heap metadata is damaged";
    case HeapError::InvalidConfig: return "invalid heap configuration";
    case HeapError::NotInitialized: return "heap not initialised";
    case HeapError::RegistryFull: return "registry full";
    case HeapError::AlreadyRegistered: return "already registered";
    case HeapError::NotRegistered: return "not registered";
    case HeapError::NotEmpty: return "cache still has objects";
    }
    return "unknown heap error";
}

const char* to_string(HeapLayer layer)
{
    switch (layer) {
    case HeapLayer::Small: return "small";
    case HeapLayer::Medium: return "medium";
    case HeapLayer::Large: return "large";
    case HeapLayer::Object: return "object cache";
    }
    return "unknown";
}

const char* to_string(MediumCorruption kind)
{
    switch (kind) {
    case MediumCorruption::Poison: return "poison overwritten (use after free)";
    case MediumCorruption::RedZoneBefore: return "red zone before the object overwritten (underflow)";
    case MediumCorruption::RedZoneAfter: return "red zone after the object overwritten (overflow)";
    case MediumCorruption::Header: return "block header overwritten";
    }
    return "unknown corruption";
}

const char* to_string(HeapViolation violation)
{
    switch (violation) {
    case HeapViolation::None: return "none";
    case HeapViolation::SlabCache: return "slab cache inconsistent";
    case HeapViolation::ChunkHeader: return "chunk header damaged";
    case HeapViolation::ChunkList: return "chunk lists inconsistent";
    case HeapViolation::Buddy: return "chunk buddy allocator inconsistent";
    case HeapViolation::MediumHeader: return "medium block header damaged";
    case HeapViolation::MediumRedZone: return "medium block red zone damaged";
    case HeapViolation::MediumPoison: return "free medium memory not poisoned";
    case HeapViolation::Tags: return "page tags inconsistent";
    case HeapViolation::Accounting: return "page or byte counters wrong";
    }
    return "unknown violation";
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

void format_corruption(lib::FormatSink& sink, const HeapCorruption& corruption)
{
    if (corruption.slab != nullptr) {
        format_report(sink, *corruption.slab);
        return;
    }
    if (corruption.medium == nullptr) {
        lib::format_to(sink, "Mana Pool: corruption (no details)");
        return;
    }
    const MediumCorruptionReport& r = *corruption.medium;
    lib::format_to(sink,
                   "Mana Pool: {} in medium block {:p} (order {}, {} bytes, chunk {:p}), object {:p} of {} bytes, "
                   "detected at {}: offset {}",
                   to_string(r.kind), r.block, r.order, r.block_size, r.chunk, r.object, r.requested,
                   to_string(r.detected_at), r.offset);
    if (r.kind != MediumCorruption::Header)
        lib::format_to(sink, ", expected {:#04x}", r.expected);
    lib::format_to(sink, ", found");
    for (unsigned i = 0; i < r.found_count; ++i)
        lib::format_to(sink, " {:02x}", static_cast<unsigned>(r.found[i]));
}

size_t format_corruption(const HeapCorruption& corruption, char* buf, size_t cap)
{
    lib::BufferSink sink(buf, cap);
    format_corruption(sink, corruption);
    sink.terminate();
    return sink.length();
}

void format_heap_stats(lib::FormatSink& sink, const HeapStats& s)
{
    lib::format_to(sink, "Mana Pool heap: {} KiB held ({} pages, peak {}), {} KiB used (peak {} KiB), {} KiB free\n",
                   s.bytes_total >> 10, s.pages_held, s.peak_pages_held, s.bytes_used >> 10,
                   s.peak_bytes_used >> 10, s.bytes_free >> 10);
    lib::format_to(sink, "  small: {} KiB in slabs, {} KiB used; object caches: {} KiB in slabs, {} KiB used\n",
                   s.small_bytes_total >> 10, s.small_bytes_used >> 10, s.object_bytes_total >> 10,
                   s.object_bytes_used >> 10);
    lib::format_to(sink,
                   "  medium: {} chunks ({} empty), {} KiB, {} KiB used, {} KiB free, {} KiB metadata; "
                   "large: {} blocks, {} KiB\n",
                   s.chunks, s.chunks_empty, s.medium_bytes_total >> 10, s.medium_bytes_used >> 10,
                   s.medium_bytes_free >> 10, s.medium_metadata_bytes >> 10, s.large_blocks, s.large_bytes >> 10);
    lib::format_to(sink,
                   "  counters: {} allocations, {} frees, {} failed, {} invalid frees, {} corruptions, "
                   "{} pressure passes, {} reclaimer calls, {} OOM, {} injected, {} watermark refusals, "
                   "{} source failures\n",
                   s.allocations, s.frees, s.failed_allocations, s.invalid_frees, s.corruptions, s.pressure_events,
                   s.reclaimer_calls, s.oom_events, s.injected_failures, s.watermark_refusals, s.source_failures);
    lib::format_to(sink, "  watermarks: low {} pages, min {} pages\n", s.low_watermark_pages, s.min_watermark_pages);
    lib::format_to(sink, "  medium buddyinfo ({} B << order):", s.medium_min_block);
    for (unsigned k = 0; k < s.medium_order_count; ++k)
        lib::format_to(sink, " {}", s.medium_free_blocks[k]);
    lib::format_to(sink, "\n  medium fragmentation index (1/1000):");
    for (unsigned k = 0; k < s.medium_order_count; ++k)
        lib::format_to(sink, " {}", s.medium_fragmentation_index[k]);
    lib::format_to(sink, "\n");
    if (s.source.available) {
        lib::format_to(sink, "  pages: {} total, {} free; buddyinfo (4 KiB << order):", s.source.total_pages,
                       s.source.free_pages);
        for (unsigned k = 0; k < s.source.order_count && k < kBuddyMaxOrders; ++k)
            lib::format_to(sink, " {}", s.source.free_blocks[k]);
        lib::format_to(sink, "\n  pages fragmentation index (1/1000):");
        for (unsigned k = 0; k < s.source.order_count && k < kBuddyMaxOrders; ++k)
            lib::format_to(sink, " {}", s.source.fragmentation_index[k]);
        lib::format_to(sink, "\n");
    }
    lib::format_to(sink, "  {:<20} {:>8} {:>8} {:>6} {:>6} {:>4} {:>3} {:>6} {:>10} {:>10} {:>6}\n", "cache", "active",
                   "total", "size", "slot", "objs", "pgs", "slabs", "allocs", "frees", "fails");
    for (unsigned i = 0; i < s.cache_count && i < kHeapMaxCacheRows; ++i) {
        const HeapCacheRow& row = s.caches[i];
        lib::format_to(sink, "  {:<20} {:>8} {:>8} {:>6} {:>6} {:>4} {:>3} {:>6} {:>10} {:>10} {:>6}\n", row.name,
                       row.active_objects, row.total_objects, row.object_size, row.slot_size, row.objects_per_slab,
                       row.pages_per_slab, row.slabs, row.allocations, row.frees, row.failed_allocations);
    }
}

void format_oom_report(lib::FormatSink& sink, const HeapOomReport& report)
{
    lib::format_to(sink, "Mana Pool: out of memory: {} bytes", report.size);
    if (report.alignment > 1)
        lib::format_to(sink, " aligned to {}", report.alignment);
    lib::format_to(sink, " from the {} layer", to_string(report.layer));
    switch (report.layer) {
    case HeapLayer::Small: lib::format_to(sink, " (size class {})", size_class_name(report.order)); break;
    case HeapLayer::Medium: lib::format_to(sink, " (buddy order {})", report.order); break;
    case HeapLayer::Large: lib::format_to(sink, " (page order {})", report.order); break;
    case HeapLayer::Object: lib::format_to(sink, " (cache {})", report.cache_name); break;
    }
    lib::format_to(sink, "\n");
    if (report.stats != nullptr)
        format_heap_stats(sink, *report.stats);
}

// ---------------------------------------------------------------------------
// Construction
// ---------------------------------------------------------------------------

void* Heap::SlabPages::allocate_pages(unsigned order)
{
    void* pages = m_heap.take_pages(order);
    if (pages != nullptr)
        m_heap.set_tags(reinterpret_cast<uintptr_t>(pages), size_t{1} << order, make_tag(TagKind::Slab, order));
    return pages;
}

void Heap::SlabPages::free_pages(void* p, unsigned order)
{
    m_heap.give_pages(p, order);
}

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
    m_medium_orders =
        static_cast<unsigned>(std::countr_zero(m_config.medium_max_block)) - m_medium_min_shift + 1;
    const size_t header = lib::align_up(sizeof(Chunk), size_t{64});
    const size_t meta = BuddyAllocator::metadata_bytes_needed(chunk_bytes(), m_config.medium_min_block,
                                                              m_config.medium_max_block);
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
// Pages and tags
// ---------------------------------------------------------------------------

void Heap::set_tags(uintptr_t address, size_t pages, uint8_t tag)
{
    __builtin_memset(m_config.tags + ((address - m_config.window_base) >> 12), tag, pages);
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

unsigned Heap::medium_order_for(size_t bytes) const
{
    if (bytes <= m_config.medium_min_block)
        return 0;
    return static_cast<unsigned>(std::bit_width(bytes - 1)) - m_medium_min_shift;
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
// Small objects
// ---------------------------------------------------------------------------

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

void Heap::on_slab_report(void* context, const SlabCorruptionReport& report)
{
    auto* heap = static_cast<Heap*>(context);
    HeapCorruption corruption;
    corruption.layer = HeapLayer::Small;
    const auto slab = reinterpret_cast<uintptr_t>(report.slab);
    if (report.slab != nullptr && heap->in_window(slab)) {
        const uint8_t tag = heap->tag_at(slab);
        if (tag_kind(tag) == TagKind::Slab) {
            const SlabCache* cache = SlabCache::cache_of(report.slab, kHeapPageSize << tag_order(tag));
            if (cache != nullptr && !heap->is_size_class(cache))
                corruption.layer = HeapLayer::Object;
        }
    }
    corruption.slab = &report;
    heap->deliver(corruption);
}

void Heap::deliver(const HeapCorruption& corruption)
{
    ++m_counters.corruptions;
    if (m_config.on_corruption != nullptr) {
        m_config.on_corruption(m_config.corruption_context, corruption);
        return;
    }
    char text[320];
    format_corruption(corruption, text, sizeof(text));
    lib::log::error("{}", text);
}

// ---------------------------------------------------------------------------
// Medium blocks
// ---------------------------------------------------------------------------

Heap::ChunkList& Heap::list_for(uint8_t list)
{
    if (list == kListEmpty)
        return m_empty;
    if (list == kListFull)
        return m_full;
    return m_buckets[list];
}

void Heap::list_push(Chunk* chunk, uint8_t list)
{
    ChunkList& l = list_for(list);
    chunk->list = list;
    l.push_front(*chunk);
    if (list < kBuddyMaxOrders)
        m_bucket_mask |= uint64_t{1} << list;
}

void Heap::list_remove(Chunk* chunk)
{
    ChunkList& l = list_for(chunk->list);
    l.remove(*chunk);
    if (chunk->list < kBuddyMaxOrders && l.empty())
        m_bucket_mask &= ~(uint64_t{1} << chunk->list);
}

void Heap::rebucket(Chunk* chunk)
{
    uint8_t target;
    if (chunk->buddy.bytes_used() == 0) {
        target = kListEmpty;
    } else {
        target = kListFull;
        for (unsigned k = m_medium_orders; k-- > 0;) {
            if (chunk->buddy.free_blocks(k) != 0) {
                target = static_cast<uint8_t>(k);
                break;
            }
        }
    }
    if (target != chunk->list) {
        list_remove(chunk);
        list_push(chunk, target);
    }
    if (target == kListEmpty && m_empty.size() > m_config.max_empty_chunks)
        release_chunk(chunk);
}

Heap::Chunk* Heap::create_chunk()
{
    void* pages = take_pages(m_config.chunk_order);
    if (pages == nullptr)
        return nullptr;
    const auto base = reinterpret_cast<uintptr_t>(pages);
    const size_t meta_pages = m_chunk_meta_bytes / kHeapPageSize;
    const size_t chunk_pages = size_t{1} << m_config.chunk_order;
    set_tags(base, meta_pages, make_tag(TagKind::ChunkMeta, m_config.chunk_order));
    set_tags(base + m_chunk_meta_bytes, chunk_pages - meta_pages, make_tag(TagKind::Chunk, m_config.chunk_order));

    auto* chunk = new (pages) Chunk();
    chunk->magic = kChunkMagic;
    chunk->owner = this;
    const size_t header = lib::align_up(sizeof(Chunk), size_t{64});
    auto* region = reinterpret_cast<void*>(base + m_chunk_meta_bytes);
    const size_t region_bytes = chunk_bytes() - m_chunk_meta_bytes;
    if (m_debug)
        __builtin_memset(region, kSlabPoisonByte, region_bytes); // before init writes its free-list links
    auto init = chunk->buddy.init(region, region_bytes, m_config.medium_min_block, m_config.medium_max_block,
                                  reinterpret_cast<void*>(base + header), m_chunk_meta_bytes - header);
    if (!init) {
        chunk->magic = 0;
        give_pages(pages, m_config.chunk_order);
        return nullptr;
    }
    ++m_counters.chunks_created;
    list_push(chunk, kListEmpty);
    return chunk;
}

void Heap::release_chunk(Chunk* chunk)
{
    list_remove(chunk);
    chunk->magic = 0; // stale pointers into the released chunk now read as freed
    chunk->owner = nullptr;
    chunk->buddy.~BuddyAllocator();
    ++m_counters.chunks_released;
    give_pages(chunk, m_config.chunk_order);
}

Heap::Chunk* Heap::chunk_of(const void* ptr) const
{
    auto* chunk = reinterpret_cast<Chunk*>(reinterpret_cast<uintptr_t>(ptr) & ~(chunk_bytes() - 1));
    if (chunk->magic != kChunkMagic || chunk->owner != this)
        return nullptr;
    return chunk;
}

void Heap::fill_medium_debug(uintptr_t block, size_t block_size, size_t left, size_t requested)
{
    auto* bytes = reinterpret_cast<uint8_t*>(block);
    const MediumHeader header{kMediumMagic, static_cast<uint16_t>(left), static_cast<uint32_t>(requested)};
    __builtin_memcpy(bytes, &header, sizeof(header));
    __builtin_memset(bytes + sizeof(header), kSlabRedZoneByte, left - sizeof(header));
    __builtin_memset(bytes + left, kSlabPoisonByte, requested);
    __builtin_memset(bytes + left + requested, kSlabRedZoneByte, block_size - left - requested);
}

// Free medium memory must be all poison, except the buddy's 16-byte free-list
// links at min-block boundaries (live, or stale after a merge or split), which
// may hold null, poison, or a pointer into this chunk's region.
bool Heap::check_medium_poison(const Chunk* chunk, uintptr_t begin, uintptr_t end, uintptr_t block, unsigned order,
                               MediumCorruptionReport* report) const
{
    const uintptr_t region_begin = chunk->buddy.region_begin();
    const uintptr_t region_end = chunk->buddy.region_end();
    const size_t min_mask = m_config.medium_min_block - 1;
    for (uintptr_t p = begin; p < end; p += 8) {
        // Runs of poison are skipped a few words at a time; only the words that differ
        // (links, or damage) are judged one by one.
        const auto* next = lib::find_mismatch(reinterpret_cast<const uint8_t*>(p), reinterpret_cast<const uint8_t*>(end),
                                              kSlabPoisonByte);
        if (next == reinterpret_cast<const uint8_t*>(end))
            return true;
        p = reinterpret_cast<uintptr_t>(next) & ~uintptr_t{7};
        const uint64_t word = *reinterpret_cast<const uint64_t*>(p);
        const size_t in_block = p & min_mask;
        if (in_block < BuddyAllocator::kFreeNodeBytes &&
            (word == 0 || (word >= region_begin && word < region_end && (word & min_mask) == 0)))
            continue;
        if (report != nullptr) {
            const auto* bad = reinterpret_cast<const uint8_t*>(p);
            while (*bad == kSlabPoisonByte)
                ++bad;
            report->chunk = chunk;
            report->block = reinterpret_cast<const void*>(block);
            report->order = order;
            report->block_size = m_config.medium_min_block << order;
            report->object = reinterpret_cast<const void*>(block);
            report->requested = 0;
            report->kind = MediumCorruption::Poison;
            report->offset = static_cast<int64_t>(reinterpret_cast<uintptr_t>(bad) - block);
            report->expected = kSlabPoisonByte;
            const size_t available = end - reinterpret_cast<uintptr_t>(bad);
            report->found_count = static_cast<uint8_t>(lib::min(available, MediumCorruptionReport::kMaxFoundBytes));
            __builtin_memcpy(report->found, bad, report->found_count);
        }
        return false;
    }
    return true;
}

void* Heap::allocate_medium(unsigned order, size_t size, size_t alignment)
{
    Chunk* chunk;
    const uint64_t candidates = m_bucket_mask & (~uint64_t{0} << order);
    if (candidates != 0)
        chunk = m_buckets[std::countr_zero(candidates)].front(); // the tightest fit
    else if (!m_empty.empty())
        chunk = m_empty.front();
    else if ((chunk = create_chunk()) == nullptr)
        return nullptr;

    auto result = chunk->buddy.allocate_order(order);
    if (!result) // cannot happen: the bucket promised a block of this order
        return nullptr;
    rebucket(chunk);
    const auto block = reinterpret_cast<uintptr_t>(*result);
    if (!m_debug)
        return *result;

    const size_t block_size = m_config.medium_min_block << order;
    const size_t left = lib::max(kMediumLeftZone, alignment);
    MediumCorruptionReport report;
    report.detected_at = SlabCheckPoint::Allocate;
    const bool clean = check_medium_poison(chunk, block, block + block_size, block, order, &report);
    fill_medium_debug(block, block_size, left, size);
    if (!clean) {
        // Repaired above; the report comes last so a callback that unwinds
        // finds the chunk consistent.
        HeapCorruption corruption;
        corruption.layer = HeapLayer::Medium;
        corruption.medium = &report;
        deliver(corruption);
    }
    return reinterpret_cast<void*>(block + left);
}

// Debug layout: the allocated block containing ptr (objects never start at
// their block's start, so the containing block is searched, order by order).
lib::Expected<Heap::MediumBlock, HeapError> Heap::find_medium(const void* ptr) const
{
    Chunk* chunk = chunk_of(ptr);
    if (chunk == nullptr)
        return lib::unexpected(HeapError::Corrupted);
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    const BuddyAllocator& buddy = chunk->buddy;
    if (!m_debug) {
        auto order = buddy.order_of(ptr);
        if (!order) {
            switch (order.error()) {
            case BuddyError::InteriorPointer: return lib::unexpected(HeapError::InteriorPointer);
            case BuddyError::ForeignPointer: return lib::unexpected(HeapError::InteriorPointer);
            default: return lib::unexpected(HeapError::DoubleFree); // free memory, aligned or not
            }
        }
        return MediumBlock{chunk, address, *order, buddy.block_size(*order)};
    }
    for (unsigned k = 0; k < m_medium_orders; ++k) {
        const uintptr_t base = address & ~static_cast<uintptr_t>(buddy.block_size(k) - 1);
        if (base < buddy.region_begin())
            break;
        auto order = buddy.order_of(reinterpret_cast<const void*>(base));
        if (order && address < base + buddy.block_size(*order))
            return MediumBlock{chunk, base, *order, buddy.block_size(*order)};
    }
    if (address < buddy.region_begin())
        return lib::unexpected(HeapError::InteriorPointer);
    return lib::unexpected(HeapError::DoubleFree);
}

bool Heap::medium_header_ok(const MediumBlock& block, const MediumHeader& header) const
{
    return header.magic == kMediumMagic && header.left >= kMediumLeftZone && lib::is_power_of_two(header.left) &&
           size_t{header.left} + header.requested + kMediumRightZone <= block.block_size;
}

size_t Heap::medium_capacity(const MediumBlock& block) const
{
    if (!m_debug)
        return block.block_size;
    MediumHeader header;
    __builtin_memcpy(&header, reinterpret_cast<const void*>(block.block), sizeof(header));
    return block.block_size - header.left - kMediumRightZone;
}

size_t Heap::medium_requested(const MediumBlock& block) const
{
    if (!m_debug)
        return block.block_size;
    MediumHeader header;
    __builtin_memcpy(&header, reinterpret_cast<const void*>(block.block), sizeof(header));
    return header.requested;
}

// Checks the header and both red zones of an allocated debug block and
// reports each damaged area (the caller repairs: free poisons the block,
// realloc rewrites the zones).
bool Heap::check_medium_zones(const MediumBlock& block, const void* object, SlabCheckPoint point)
{
    auto* bytes = reinterpret_cast<uint8_t*>(block.block);
    MediumHeader header;
    __builtin_memcpy(&header, bytes, sizeof(header));
    MediumCorruptionReport report;
    report.chunk = block.chunk;
    report.block = bytes;
    report.order = block.order;
    report.block_size = block.block_size;
    report.object = object;
    report.detected_at = point;
    const auto object_address = reinterpret_cast<uintptr_t>(object);
    auto send = [&](MediumCorruption kind, const uint8_t* bad, const uint8_t* zone_end, uint8_t expected) {
        report.kind = kind;
        report.offset = static_cast<int64_t>(reinterpret_cast<uintptr_t>(bad) - object_address);
        report.expected = expected;
        const size_t available = static_cast<size_t>(zone_end - bad);
        report.found_count = static_cast<uint8_t>(lib::min(available, MediumCorruptionReport::kMaxFoundBytes));
        __builtin_memcpy(report.found, bad, report.found_count);
        HeapCorruption corruption;
        corruption.layer = HeapLayer::Medium;
        corruption.medium = &report;
        deliver(corruption);
    };

    if (!medium_header_ok(block, header)) {
        report.requested = 0;
        send(MediumCorruption::Header, bytes, bytes + sizeof(header), 0);
        return false;
    }
    report.requested = header.requested;
    bool clean = true;
    const uint8_t* left_end = bytes + header.left;
    const uint8_t* bad = lib::find_mismatch(bytes + sizeof(header), left_end, kSlabRedZoneByte);
    if (bad != left_end) {
        send(MediumCorruption::RedZoneBefore, bad, left_end, kSlabRedZoneByte);
        clean = false;
    }
    const uint8_t* right = left_end + header.requested;
    const uint8_t* end = bytes + block.block_size;
    bad = lib::find_mismatch(right, end, kSlabRedZoneByte);
    if (bad != end) {
        send(MediumCorruption::RedZoneAfter, bad, end, kSlabRedZoneByte);
        clean = false;
    }
    return clean;
}

lib::Expected<void, HeapError> Heap::free_medium(void* ptr)
{
    auto found = find_medium(ptr);
    if (!found)
        return lib::unexpected(found.error());
    const MediumBlock block = *found;
    if (m_debug) {
        MediumHeader header;
        __builtin_memcpy(&header, reinterpret_cast<const void*>(block.block), sizeof(header));
        const bool header_ok = medium_header_ok(block, header);
        if (header_ok && reinterpret_cast<uintptr_t>(ptr) != block.block + header.left)
            return lib::unexpected(HeapError::InteriorPointer);
        if (!header_ok && reinterpret_cast<uintptr_t>(ptr) == block.block)
            return lib::unexpected(HeapError::InteriorPointer);
        // Reports first: a callback that unwinds leaves the block allocated.
        // With a damaged header the containing block is freed anyway (after
        // the report): it is the only block ptr can belong to.
        check_medium_zones(block, ptr, SlabCheckPoint::Free);
        __builtin_memset(reinterpret_cast<void*>(block.block), kSlabPoisonByte, block.block_size);
    }
    auto freed = block.chunk->buddy.free(reinterpret_cast<void*>(block.block));
    if (!freed) // cannot happen: found above
        return lib::unexpected(HeapError::Corrupted);
    ++m_counters.frees;
    m_counters.bytes_used -= block.block_size;
    rebucket(block.chunk);
    return {};
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
// Free, realloc, usable size
// ---------------------------------------------------------------------------

lib::Expected<void, HeapError> Heap::free(void* ptr)
{
    if (ptr == nullptr)
        return {};
    auto result = [&]() -> lib::Expected<void, HeapError> {
        if (!m_ready)
            return lib::unexpected(HeapError::NotInitialized);
        const auto address = reinterpret_cast<uintptr_t>(ptr);
        if (!in_window(address))
            return lib::unexpected(HeapError::ForeignPointer);
        const uint8_t tag = tag_at(address);
        switch (tag_kind(tag)) {
        case TagKind::None:
            return lib::unexpected(tag == kTagReleased ? HeapError::DoubleFree : HeapError::ForeignPointer);
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
    if (!m_ready)
        return lib::unexpected(HeapError::NotInitialized);
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (ptr == nullptr || !in_window(address))
        return lib::unexpected(HeapError::ForeignPointer);
    const uint8_t tag = tag_at(address);
    switch (tag_kind(tag)) {
    case TagKind::None:
        return lib::unexpected(tag == kTagReleased ? HeapError::DoubleFree : HeapError::ForeignPointer);
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
    if (!m_ready)
        return lib::unexpected(HeapError::NotInitialized);
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (ptr == nullptr || !in_window(address))
        return lib::unexpected(HeapError::ForeignPointer);
    const uint8_t tag = tag_at(address);
    switch (tag_kind(tag)) {
    case TagKind::None:
        return lib::unexpected(tag == kTagReleased ? HeapError::DoubleFree : HeapError::ForeignPointer);
    case TagKind::Slab: {
        auto owner = slab_owner(ptr, tag);
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

// ---------------------------------------------------------------------------
// Statistics and checks
// ---------------------------------------------------------------------------

HeapCacheRow Heap::cache_row(const SlabCache& cache, bool typed) const
{
    const SlabCacheStats s = cache.stats();
    HeapCacheRow row;
    lib::copy_string(row.name, sizeof(row.name), lib::StringView(s.name));
    row.object_size = static_cast<uint32_t>(s.object_size);
    row.slot_size = static_cast<uint32_t>(s.slot_size);
    row.objects_per_slab = static_cast<uint32_t>(s.objects_per_slab);
    row.pages_per_slab = static_cast<uint16_t>(s.pages_per_slab);
    row.typed = typed;
    row.debug = s.debug;
    row.active_objects = s.active_objects;
    row.total_objects = s.total_objects;
    row.slabs = s.slabs_total;
    row.allocations = s.allocations;
    row.frees = s.frees;
    row.failed_allocations = s.failed_allocations;
    return row;
}

void Heap::stats(HeapStats& out) const
{
    stats_without_source(out);
    if (m_ready && m_config.source_stats != nullptr)
        m_config.source_stats(m_config.source_context, out.source);
}

void Heap::stats_without_source(HeapStats& out) const
{
    out = HeapStats{};
    static_cast<HeapCounters&>(out) = m_counters;
    out.bytes_total = m_counters.pages_held * kHeapPageSize;
    out.bytes_free = out.bytes_total > m_counters.bytes_used ? out.bytes_total - m_counters.bytes_used : 0;
    out.low_watermark_pages = m_config.low_watermark_pages;
    out.min_watermark_pages = m_config.min_watermark_pages;
    if (!m_ready)
        return;

    for (const auto& cache : m_classes) {
        const HeapCacheRow row = cache_row(cache, false);
        out.small_bytes_total += row.slabs * row.pages_per_slab * kHeapPageSize;
        out.small_bytes_used += row.active_objects * row.object_size;
        out.caches[out.cache_count++] = row;
    }
    for (size_t i = 0; i < m_object_cache_count; ++i) {
        const HeapCacheRow row = cache_row(*m_object_caches[i], true);
        out.object_bytes_total += row.slabs * row.pages_per_slab * kHeapPageSize;
        out.object_bytes_used += row.active_objects * row.object_size;
        out.caches[out.cache_count++] = row;
    }

    out.medium_min_block = m_config.medium_min_block;
    out.medium_order_count = m_medium_orders;
    auto add_chunks = [&](const ChunkList& list) {
        for (const Chunk& chunk : list) {
            ++out.chunks;
            out.medium_bytes_total += chunk.buddy.bytes_total();
            out.medium_bytes_used += chunk.buddy.bytes_used();
            out.medium_bytes_free += chunk.buddy.bytes_free();
            for (unsigned k = 0; k < m_medium_orders; ++k)
                out.medium_free_blocks[k] += chunk.buddy.free_blocks(k);
        }
    };
    for (unsigned k = 0; k < m_medium_orders; ++k)
        add_chunks(m_buckets[k]);
    add_chunks(m_full);
    add_chunks(m_empty);
    out.chunks_empty = m_empty.size();
    out.medium_metadata_bytes = out.chunks * m_chunk_meta_bytes;
    for (unsigned k = 0; k < m_medium_orders; ++k)
        out.medium_fragmentation_index[k] = fragmentation_index(out.medium_free_blocks, m_medium_orders, k);
}

// The list a chunk belongs on: its largest free order, or full / empty.
uint8_t Heap::bucket_of(const Chunk* chunk) const
{
    const BuddyAllocator& buddy = chunk->buddy;
    if (buddy.bytes_used() == 0)
        return kListEmpty;
    for (unsigned k = m_medium_orders; k-- > 0;) {
        if (buddy.free_blocks(k) != 0)
            return static_cast<uint8_t>(k);
    }
    return kListFull;
}

void Heap::note_violation(HeapCheckReport& report, HeapViolation kind, uintptr_t address)
{
    if (report.violations++ == 0) {
        report.first = kind;
        report.first_address = address;
    }
    report.kinds |= uint32_t{1} << static_cast<unsigned>(kind);
}

HeapCheckReport Heap::check_local(const void* ptr) const
{
    HeapCheckReport report;
    auto violation = [&](HeapViolation kind, uintptr_t address) { note_violation(report, kind, address); };
    if (!m_ready)
        return report;
    const HeapCounters& c = m_counters;
    const uint64_t held_bytes = c.pages_held * kHeapPageSize;
    if (c.bytes_used > held_bytes || c.large_bytes > held_bytes || c.large_blocks > c.large_bytes / kHeapPageSize ||
        c.peak_pages_held < c.pages_held || c.peak_bytes_used < c.bytes_used)
        violation(HeapViolation::Accounting, 0);
    const auto address = reinterpret_cast<uintptr_t>(ptr);
    if (ptr == nullptr || !in_window(address))
        return report;
    const uint8_t tag = tag_at(address);
    const unsigned order = tag_order(tag);
    // Every page of a run (slab, chunk, large block) carries its tag: the head's, then `rest`.
    auto check_run = [&](uintptr_t base, size_t pages, uint8_t head, uint8_t rest) {
        if (base - m_config.window_base > m_config.window_bytes - (pages * kHeapPageSize))
            return violation(HeapViolation::Tags, base);
        for (size_t i = 0; i < pages; ++i) {
            if (tag_at(base + i * kHeapPageSize) != (i == 0 ? head : rest))
                return violation(HeapViolation::Tags, base + i * kHeapPageSize);
        }
    };
    switch (tag_kind(tag)) {
    case TagKind::None:
        if (tag != kTagNone && tag != kTagReleased)
            violation(HeapViolation::Tags, address);
        break;
    case TagKind::Slab: {
        const uintptr_t slab = address & ~((kHeapPageSize << order) - 1);
        check_run(slab, size_t{1} << order, tag, tag);
        const SlabCache* cache = SlabCache::cache_of(ptr, kHeapPageSize << order);
        if (cache == nullptr || (!is_size_class(cache) && object_cache_index(cache) < 0))
            violation(HeapViolation::Tags, slab);
        else if (!cache->check_slab_of(ptr).ok())
            violation(HeapViolation::SlabCache, slab);
        break;
    }
    case TagKind::ChunkMeta:
    case TagKind::Chunk: {
        const uintptr_t base = address & ~(chunk_bytes() - 1);
        const size_t meta_pages = m_chunk_meta_bytes / kHeapPageSize;
        for (size_t page = 0; page < (size_t{1} << m_config.chunk_order); ++page) {
            const uint8_t want = make_tag(page < meta_pages ? TagKind::ChunkMeta : TagKind::Chunk, m_config.chunk_order);
            if (tag_at(base + page * kHeapPageSize) != want) {
                violation(HeapViolation::Tags, base + page * kHeapPageSize);
                break;
            }
        }
        const Chunk* chunk = chunk_of(ptr);
        if (chunk == nullptr) {
            violation(HeapViolation::ChunkHeader, base);
            break;
        }
        const ChunkList& list = chunk->list == kListEmpty  ? m_empty
                                : chunk->list == kListFull ? m_full
                                                           : m_buckets[chunk->list % kBuddyMaxOrders];
        const Chunk* prev = ChunkList::prev(*chunk);
        const Chunk* next = ChunkList::next(*chunk);
        if (chunk->list != bucket_of(chunk) ||
            (prev == nullptr ? list.front() != chunk : ChunkList::next(*prev) != chunk) ||
            (next != nullptr && ChunkList::prev(*next) != chunk))
            violation(HeapViolation::ChunkList, base);
        if (!chunk->buddy.check_local(ptr).ok())
            violation(HeapViolation::Buddy, base);
        if (!m_debug || tag_kind(tag) != TagKind::Chunk)
            break;
        // The block's red zones, or the poison of the free min block there.
        auto block = find_medium(ptr);
        if (!block) {
            const uintptr_t min = address & ~(m_config.medium_min_block - 1);
            if (!check_medium_poison(chunk, min, min + m_config.medium_min_block, min, 0, nullptr))
                violation(HeapViolation::MediumPoison, min);
            break;
        }
        MediumHeader header;
        __builtin_memcpy(&header, reinterpret_cast<const void*>(block->block), sizeof(header));
        if (!medium_header_ok(*block, header)) {
            violation(HeapViolation::MediumHeader, block->block);
            break;
        }
        const auto* bytes = reinterpret_cast<const uint8_t*>(block->block);
        const uint8_t* left_end = bytes + header.left;
        const uint8_t* end = bytes + block->block_size;
        if (lib::find_mismatch(bytes + sizeof(header), left_end, kSlabRedZoneByte) != left_end ||
            lib::find_mismatch(left_end + header.requested, end, kSlabRedZoneByte) != end)
            violation(HeapViolation::MediumRedZone, block->block);
        break;
    }
    case TagKind::LargeHead:
    case TagKind::LargeTail: {
        const uintptr_t head = address & ~((kHeapPageSize << order) - 1);
        check_run(head, size_t{1} << order, make_tag(TagKind::LargeHead, order), make_tag(TagKind::LargeTail, order));
        break;
    }
    }
    return report;
}

HeapCheckReport Heap::check_invariants() const
{
    HeapCheckReport report;
    auto violation = [&](HeapViolation kind, uintptr_t address) { note_violation(report, kind, address); };
    if (!m_ready)
        return report;

    // Slab caches.
    uint64_t slab_bytes = 0;
    uint64_t used = 0;
    auto check_cache = [&](const SlabCache& cache) {
        const SlabCheckReport r = cache.check_invariants();
        if (!r.ok())
            violation(HeapViolation::SlabCache, reinterpret_cast<uintptr_t>(r.first_slab));
        slab_bytes += cache.slab_count() * cache.slab_bytes();
        used += cache.active_objects() * cache.object_size();
    };
    for (const auto& cache : m_classes)
        check_cache(cache);
    for (size_t i = 0; i < m_object_cache_count; ++i)
        check_cache(*m_object_caches[i]);

    // Chunks.
    uint64_t chunks = 0;
    const size_t meta_pages = m_chunk_meta_bytes / kHeapPageSize;
    const size_t chunk_pages = size_t{1} << m_config.chunk_order;
    auto check_list = [&](const ChunkList& list, uint8_t id) {
        uint64_t count = 0;
        const Chunk* prev = nullptr;
        for (const Chunk* chunk = list.front(); chunk != nullptr; chunk = ChunkList::next(*chunk)) {
            const auto base = reinterpret_cast<uintptr_t>(chunk);
            if (++count > m_counters.pages_held) { // longer than memory allows: a cycle
                violation(HeapViolation::ChunkList, base);
                break;
            }
            if ((base & (chunk_bytes() - 1)) != 0 || chunk->magic != kChunkMagic || chunk->owner != this) {
                violation(HeapViolation::ChunkHeader, base);
                break;
            }
            if (ChunkList::prev(*chunk) != prev || chunk->list != id)
                violation(HeapViolation::ChunkList, base);
            prev = chunk;
            ++chunks;
            const BuddyAllocator& buddy = chunk->buddy;
            if (!buddy.check_invariants().ok())
                violation(HeapViolation::Buddy, base);
            used += buddy.bytes_used();
            if (bucket_of(chunk) != id)
                violation(HeapViolation::ChunkList, base);
            for (size_t page = 0; page < chunk_pages; ++page) {
                const uint8_t want =
                    make_tag(page < meta_pages ? TagKind::ChunkMeta : TagKind::Chunk, m_config.chunk_order);
                if (tag_at(base + page * kHeapPageSize) != want) {
                    violation(HeapViolation::Tags, base + page * kHeapPageSize);
                    break;
                }
            }
            if (!m_debug)
                continue;
            // Walk the region: allocated blocks have intact headers and red
            // zones; every other min block is poison (or free-list links).
            const size_t min_block = m_config.medium_min_block;
            for (uintptr_t p = buddy.region_begin(); p < buddy.region_end();) {
                auto order = buddy.order_of(reinterpret_cast<const void*>(p));
                if (!order) {
                    if (!check_medium_poison(chunk, p, p + min_block, p, 0, nullptr))
                        violation(HeapViolation::MediumPoison, p);
                    p += min_block;
                    continue;
                }
                ++report.medium_blocks;
                const MediumBlock block{const_cast<Chunk*>(chunk), p, *order, buddy.block_size(*order)};
                MediumHeader header;
                __builtin_memcpy(&header, reinterpret_cast<const void*>(p), sizeof(header));
                if (!medium_header_ok(block, header)) {
                    violation(HeapViolation::MediumHeader, p);
                } else {
                    const auto* bytes = reinterpret_cast<const uint8_t*>(p);
                    const uint8_t* left_end = bytes + header.left;
                    const uint8_t* end = bytes + block.block_size;
                    if (lib::find_mismatch(bytes + sizeof(header), left_end, kSlabRedZoneByte) != left_end ||
                        lib::find_mismatch(left_end + header.requested, end, kSlabRedZoneByte) != end)
                        violation(HeapViolation::MediumRedZone, p);
                }
                p += block.block_size;
            }
        }
        if (count != list.size())
            violation(HeapViolation::ChunkList, 0);
        if (id < kBuddyMaxOrders && ((m_bucket_mask >> id) & 1) != (list.empty() ? 0u : 1u))
            violation(HeapViolation::ChunkList, 0);
    };
    for (unsigned k = 0; k < m_medium_orders; ++k)
        check_list(m_buckets[k], static_cast<uint8_t>(k));
    for (unsigned k = m_medium_orders; k < kBuddyMaxOrders; ++k) {
        if (!m_buckets[k].empty() || ((m_bucket_mask >> k) & 1) != 0)
            violation(HeapViolation::ChunkList, 0);
    }
    check_list(m_full, kListFull);
    check_list(m_empty, kListEmpty);

    // Tags: slab runs carry a live header of a known cache; large heads are
    // followed by exactly their tails.
    const size_t window_pages = m_config.window_bytes / kHeapPageSize;
    for (size_t i = 0; i < window_pages;) {
        const uint8_t tag = m_config.tags[i];
        const uintptr_t address = m_config.window_base + i * kHeapPageSize;
        const unsigned order = tag_order(tag);
        const size_t run = size_t{1} << order;
        switch (tag_kind(tag)) {
        case TagKind::None:
            if (tag != kTagNone && tag != kTagReleased)
                violation(HeapViolation::Tags, address);
            ++i;
            break;
        case TagKind::Slab: {
            const SlabCache* cache = SlabCache::cache_of(reinterpret_cast<const void*>(address), kHeapPageSize << order);
            bool ok = (address & ((kHeapPageSize << order) - 1)) == 0 && i + run <= window_pages && cache != nullptr &&
                      (is_size_class(cache) || object_cache_index(cache) >= 0);
            for (size_t j = 0; ok && j < run; ++j)
                ok = m_config.tags[i + j] == tag;
            if (!ok) {
                violation(HeapViolation::Tags, address);
                ++i;
                break;
            }
            report.slab_pages += run;
            i += run;
            break;
        }
        case TagKind::ChunkMeta:
        case TagKind::Chunk:
            ++report.chunk_pages;
            ++i;
            break;
        case TagKind::LargeHead: {
            bool ok = (address & ((kHeapPageSize << order) - 1)) == 0 && i + run <= window_pages;
            for (size_t j = 1; ok && j < run; ++j)
                ok = m_config.tags[i + j] == make_tag(TagKind::LargeTail, order);
            if (!ok) {
                violation(HeapViolation::Tags, address);
                ++i;
                break;
            }
            report.large_pages += run;
            i += run;
            break;
        }
        default: // a tail without its head, or an unknown kind
            violation(HeapViolation::Tags, address);
            ++i;
            break;
        }
    }

    // Accounting.
    used += m_counters.large_bytes;
    if (report.slab_pages * kHeapPageSize != slab_bytes || report.chunk_pages != chunks * chunk_pages ||
        report.large_pages * kHeapPageSize != m_counters.large_bytes ||
        m_counters.pages_held != report.slab_pages + report.chunk_pages + report.large_pages ||
        used != m_counters.bytes_used)
        violation(HeapViolation::Accounting, 0);
    return report;
}

} // namespace mm
