// mm::Heap::stats: the counters copied whole, then a walk of the caches and chunks.
#include "mm/heap.h"

#include "lib/string.h"
#include "mm/fragmentation.h"

namespace mm {

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

} // namespace mm
