// mm::Heap, medium blocks: chunks and their buckets, buddy blocks, and with debug checks the
// blocks' headers, red zones and free poison (layout: see heap.h).
#include "mm/heap.h"

#include <bit>
#include <new>

#include "lib/string.h"

namespace mm {

// ---------------------------------------------------------------------------
// Chunks
// ---------------------------------------------------------------------------

unsigned Heap::medium_order_for(size_t bytes) const
{
    if (bytes <= m_config.medium_min_block)
        return 0;
    return static_cast<unsigned>(std::bit_width(bytes - 1)) - m_medium_min_shift;
}

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

void Heap::rebucket(Chunk* chunk)
{
    const uint8_t target = bucket_of(chunk);
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

// ---------------------------------------------------------------------------
// Blocks
// ---------------------------------------------------------------------------

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
        const auto* next = lib::find_mismatch(reinterpret_cast<const uint8_t*>(p),
                                              reinterpret_cast<const uint8_t*>(end), kSlabPoisonByte);
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

} // namespace mm
