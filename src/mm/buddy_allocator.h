#pragma once
// mm::BuddyAllocator: the generic core of the Mana Pool's buddy allocator.
//
// It manages one contiguous region handed over by the caller, in power-of-two
// blocks between a configurable minimum and maximum size (64 B..64 KiB for the
// heap, 4 KiB..2 MiB or more for frames). It has no globals, no locks and no
// arch dependencies: the kernel wrappers add locking, panics and poisoning, and
// the host tests run this exact code.
//
// ## Geometry
// Sizes are "orders": order k is a block of min_block << k bytes, k in
// [0, order_count). The region [base, base + size) is trimmed inwards to
// min_block boundaries. Bookkeeping covers the *arena*: the run of max-order
// "roots" overlapping the trimmed region, starting at align_down(start,
// max_block). Because the arena starts on a max_block boundary, a block that is
// aligned to its size relative to the arena is aligned to its size as an
// absolute address (relative to address 0), which is what "naturally aligned"
// means here. (For physical frames reached through the physmap: the physmap
// offset is aligned far beyond any max_block, so virtual and physical alignment
// agree.) The parts of the arena outside the trimmed region are never free and
// never allocated; they are permanently "reserved", so no block ever merges
// across the region bounds. At init the trimmed region is cut greedily, from
// the low end, into the largest naturally aligned blocks that fit; a region
// that is not a multiple of max_block therefore becomes max-order roots plus
// smaller blocks at either end.
//
// ## Metadata (caller-provided buffer, outside the managed blocks)
// With N = number of min blocks in the arena and n_k = N >> k blocks at order k:
//
//   [pad to 8][free bitmap, order 0][order 1]...[order max][allocation records]
//
// * Free bitmaps, one per order, each starting on a fresh uint64_t word:
//   bit i of order k (word i / 64, bit i % 64, LSB first) is 1 exactly when the
//   block at arena offset i * (min_block << k) is free *at order k*, i.e. is on
//   the order-k free list. A block that is part of a larger free block, or
//   split, or allocated, has its bit 0. Buddies at order k are bits 2j and 2j+1,
//   so "both buddies free" (a missed merge) is `bits & (bits >> 1) & 0x55..55`.
//   Cost: about 2N bits.
// * Allocation records, one byte per min block: byte i is (k + 1) when an
//   allocated block of order k starts at min block i, else 0. This is how
//   free(ptr) finds the block size without the caller, and how it tells a block
//   start from an interior pointer or from free memory. Cost: N bytes.
//
// Free blocks carry an intrusive doubly linked FreeNode {next, prev} in their
// first 16 bytes (hence min_block >= 16), so a buddy is unlinked in O(1) while
// coalescing. A 64-bit mask records which orders have a non-empty free list, so
// allocation finds the smallest usable order with one countr_zero.
//
// ## Costs
// allocate: O(order_count) splits at worst, no loop over blocks.
// free / free_sized: O(1) validation on the fast path, O(order_count) merges.
// Invalid frees take a slower O(order_count) path that only classifies the
// error. init is O(N) (it zeroes the metadata); check_invariants is O(N).
//
// ## Errors
// Every error is detected before any state is touched. A failed allocation only
// increments the failed_allocations counter; a rejected free or a failed init
// changes nothing at all.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"

namespace mm {

inline constexpr unsigned kBuddyMaxOrders = 32;

enum class BuddyError : uint8_t {
    OutOfMemory,       // no free block of the requested order or larger (or allocator not initialised)
    InvalidSize,       // size 0, size above max_block, or order >= order_count
    DoubleFree,        // block-aligned pointer into free memory: freed twice, or never allocated
    ForeignPointer,    // pointer outside the trimmed managed region (including nullptr)
    MisalignedPointer, // pointer into free memory that is not even min_block aligned
    InteriorPointer,   // pointer inside an allocated block, but not at its start
    SizeMismatch,      // free_sized: the size does not round up to the block's order
    InvalidConfig,     // init: sizes not powers of two, min < kMinBlockSize, max < min, too many orders, region wraps
    RegionTooSmall,    // init: not one min block fits in the region after trimming
    MetadataTooSmall,  // init: metadata buffer missing or smaller than needed
    MetadataOverlap,   // init: metadata buffer overlaps the managed region
};

const char* to_string(BuddyError error);

// A plain snapshot; the kernel wrapper copies it under its lock.
struct BuddyStats {
    uint64_t min_block = 0;
    uint64_t max_block = 0;
    unsigned order_count = 0;
    // Per order, like /proc/buddyinfo: free blocks of order k.
    uint64_t free_blocks[kBuddyMaxOrders] = {};
    // Linux's __fragmentation_index per order in thousandths: -1000 when a block
    // of that order is free, 0 when nothing is free, else towards 1000 as the
    // failure is due to fragmentation rather than lack of memory.
    int32_t fragmentation_index[kBuddyMaxOrders] = {};
    // Linux's unusable_free_index per order in thousandths: the share of free
    // memory that cannot serve a request of that order (1000 when nothing is free).
    int32_t unusable_index[kBuddyMaxOrders] = {};
    uint64_t bytes_total = 0;
    uint64_t bytes_free = 0;
    uint64_t bytes_used = 0;
    uint64_t peak_bytes_used = 0;
    uint64_t allocations = 0;        // successful allocations
    uint64_t frees = 0;              // successful frees
    uint64_t failed_allocations = 0; // allocations that returned an error

    bool operator==(const BuddyStats&) const = default;
};

enum class BuddyViolation : uint8_t {
    None,
    ListCorrupt,     // a prev link disagrees, or a free list is longer than possible (cycle/duplicate)
    NodeOutOfRange,  // a free-list node (or its block) lies outside the trimmed region
    NodeMisaligned,  // a free-list node is not aligned to its order's block size
    NodeNotMarked,   // a free-list node whose free bit is clear
    CountMismatch,   // list length, bitmap population and per-order counter disagree
    MaskMismatch,    // the non-empty-orders mask disagrees with the lists
    UnmergedBuddies, // two buddies both free at the same order
    StrayBit,        // a free bit set beyond the last block of its order
    BadAllocRecord,  // an allocation record with an invalid order, misaligned, or past the region
    UncoveredMemory, // a min block neither free nor allocated (leaked)
    Overlap,         // free bits or allocation records hidden inside other blocks or outside the region
    BytesMismatch,   // byte counters disagree with what the walk found
};

const char* to_string(BuddyViolation violation);

struct BuddyCheckReport {
    uint64_t violations = 0;
    uint32_t kinds = 0;                          // bit (1 << BuddyViolation) for every kind found
    BuddyViolation first = BuddyViolation::None; // the first violation found, with its order and address
    unsigned first_order = 0;
    uintptr_t first_address = 0;
    // What the walk found, for comparison with the counters.
    uint64_t free_blocks = 0;
    uint64_t free_bytes = 0;
    uint64_t allocated_blocks = 0;
    uint64_t allocated_bytes = 0;

    bool ok() const { return violations == 0; }
    bool has(BuddyViolation violation) const { return (kinds >> static_cast<unsigned>(violation)) & 1; }
};

class BuddyAllocator {
public:
    static constexpr size_t kFreeNodeBytes = 2 * sizeof(void*);
    static constexpr size_t kMinBlockSize = kFreeNodeBytes;
    static constexpr unsigned kMaxOrders = kBuddyMaxOrders;

    BuddyAllocator() = default;
    BuddyAllocator(const BuddyAllocator&) = delete;
    BuddyAllocator& operator=(const BuddyAllocator&) = delete;

    // Metadata bytes enough for any region of region_size bytes at any base
    // (includes alignment slack for an unaligned buffer). 0 for an invalid config.
    static size_t metadata_bytes_needed(size_t region_size, size_t min_block, size_t max_block);
    // Exact metadata bytes for this particular region (plus alignment slack).
    // 0 for an invalid config or a region too small to hold one min block.
    static size_t metadata_bytes_needed(const void* region, size_t region_size, size_t min_block, size_t max_block);

    // (Re)initialise over [region, region + region_size). On error the
    // allocator is left exactly as it was. Any previous state is forgotten.
    [[nodiscard]] lib::Expected<void, BuddyError> init(void* region, size_t region_size, size_t min_block,
                                                       size_t max_block, void* metadata, size_t metadata_bytes);

    // A block of at least `size` bytes, naturally aligned to its block size.
    lib::Expected<void*, BuddyError> allocate(size_t size);
    // A block of exactly min_block << order bytes.
    lib::Expected<void*, BuddyError> allocate_order(unsigned order);

    // Free by pointer; the block size comes from the allocation records.
    lib::Expected<void, BuddyError> free(void* ptr);
    // Free that cross-checks the size: it must round up to the block's order.
    lib::Expected<void, BuddyError> free_sized(void* ptr, size_t size);

    // Size / order of the allocated block starting at ptr (same errors as free).
    lib::Expected<size_t, BuddyError> block_size_of(const void* ptr) const;
    lib::Expected<unsigned, BuddyError> order_of(const void* ptr) const;
    // Smallest order whose block holds `size` bytes.
    lib::Expected<unsigned, BuddyError> order_for_size(size_t size) const;

    bool initialized() const { return m_order_count != 0; }
    bool contains(const void* ptr) const { return reinterpret_cast<uintptr_t>(ptr) - m_start < m_end - m_start; }
    uintptr_t region_begin() const { return m_start; } // trimmed
    uintptr_t region_end() const { return m_end; }
    size_t min_block_size() const { return m_min_block; }
    size_t max_block_size() const { return m_max_block; }
    size_t block_size(unsigned order) const { return m_min_block << order; }
    unsigned order_count() const { return m_order_count; }

    uint64_t free_blocks(unsigned order) const { return order < m_order_count ? m_free_count[order] : 0; }
    uint64_t bytes_total() const { return m_end - m_start; }
    uint64_t bytes_used() const { return m_bytes_used; }
    uint64_t bytes_free() const { return bytes_total() - m_bytes_used; }

    // Linux's __fragmentation_index / unusable_free_index, in thousandths.
    // Orders out of range give 0, like Linux.
    int fragmentation_index(unsigned order) const;
    int unusable_free_index(unsigned order) const;

    BuddyStats stats() const;
    // The whole walk: O(arena blocks).
    BuddyCheckReport check_invariants() const;
    // A cheap check after touching one block, O(order_count): the block containing ptr and
    // its buddy (cover, records, free-list links, unmerged buddies, larger free blocks hiding
    // them), every list head, the mask and the counters. Nothing but the counters when ptr
    // lies outside the region. Its report's walk totals stay 0.
    BuddyCheckReport check_local(const void* ptr) const;

private:
    friend struct BuddyAllocatorTestAccess; // lets unit tests corrupt state on purpose

    struct FreeNode {
        FreeNode* next;
        FreeNode* prev;
    };

    struct Layout {
        uintptr_t start; // trimmed region
        uintptr_t end;
        uintptr_t arena_base; // align_down(start, max_block)
        size_t arena_blocks;  // N: min blocks in the arena
        size_t bitmap_words;
        unsigned order_count;
        unsigned min_shift;
    };

    static bool valid_config(size_t min_block, size_t max_block);
    static lib::Expected<Layout, BuddyError> compute_layout(uintptr_t base, size_t size, size_t min_block,
                                                            size_t max_block);
    static size_t bitmap_words_for(size_t arena_blocks, unsigned order_count);

    FreeNode* node_at(uintptr_t offset) const { return reinterpret_cast<FreeNode*>(m_arena_base + offset); }
    uint64_t& bit_word(unsigned order, size_t index) const { return m_bits[m_word_offset[order] + (index >> 6)]; }
    bool test_free_bit(unsigned order, size_t index) const { return (bit_word(order, index) >> (index & 63)) & 1; }
    size_t index_of(uintptr_t offset, unsigned order) const { return offset >> (m_min_shift + order); }

    void push_free(unsigned order, uintptr_t offset);
    void unlink_free(unsigned order, FreeNode* node, uintptr_t offset);
    void release(uintptr_t offset, unsigned order);
    lib::Expected<unsigned, BuddyError> lookup_allocated(uintptr_t addr) const;
    void check_block_at(uintptr_t offset, BuddyCheckReport& report) const;
    bool node_in_region(const FreeNode* node, unsigned order) const
    {
        const auto addr = reinterpret_cast<uintptr_t>(node);
        return addr - m_start < m_end - m_start && m_end - addr >= block_size(order);
    }
    BuddyError classify_bad_pointer(uintptr_t addr) const;
    lib::Expected<void*, BuddyError> take(unsigned order);
    lib::Expected<void*, BuddyError> fail_allocation(BuddyError error);

    uintptr_t m_arena_base = 0;
    uintptr_t m_start = 0;
    uintptr_t m_end = 0;
    size_t m_min_block = 0;
    size_t m_max_block = 0;
    size_t m_arena_blocks = 0;
    unsigned m_min_shift = 0;
    unsigned m_order_count = 0;
    uint64_t m_nonempty = 0; // bit k set <=> m_heads[k] != nullptr
    uint64_t* m_bits = nullptr;
    uint8_t* m_alloc_order = nullptr;

    FreeNode* m_heads[kMaxOrders] = {};
    uint64_t m_free_count[kMaxOrders] = {};
    size_t m_word_offset[kMaxOrders] = {};

    uint64_t m_bytes_used = 0;
    uint64_t m_peak_used = 0;
    uint64_t m_allocations = 0;
    uint64_t m_frees = 0;
    uint64_t m_failed_allocations = 0;
};

} // namespace mm
