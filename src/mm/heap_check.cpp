// mm::Heap's invariant checks: the whole walk (check_invariants) and the local check of one
// pointer's page run and owner (check_local).
#include "mm/heap.h"

#include "lib/string.h"

namespace mm {

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
            const uint8_t want =
                make_tag(page < meta_pages ? TagKind::ChunkMeta : TagKind::Chunk, m_config.chunk_order);
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
        const ChunkList& list = chunk->list == kListEmpty ? m_empty
            : chunk->list == kListFull                    ? m_full
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
            const SlabCache* cache =
                SlabCache::cache_of(reinterpret_cast<const void*>(address), kHeapPageSize << order);
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
