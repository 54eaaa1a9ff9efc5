// mm::Heap's words: the names of its errors, layers and violations, the corruption and OOM
// reports, format_heap_stats, and the delivery of corruption reports.
#include "mm/heap.h"

#include "lib/log.h"

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
                   s.bytes_total >> 10, s.pages_held, s.peak_pages_held, s.bytes_used >> 10, s.peak_bytes_used >> 10,
                   s.bytes_free >> 10);
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

} // namespace mm
