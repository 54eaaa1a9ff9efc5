// Host tests for mm::BuddyAllocator, the generic core of the Mana Pool.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <bit>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "mm/buddy_allocator.h"

using mm::BuddyAllocator;
using mm::BuddyCheckReport;
using mm::BuddyError;
using mm::BuddyStats;
using mm::BuddyViolation;

namespace mm {
// Reaches into the allocator to corrupt it on purpose (invariant checker tests).
struct BuddyAllocatorTestAccess {
    using Node = BuddyAllocator::FreeNode;
    static Node*& head(BuddyAllocator& a, unsigned order) { return a.m_heads[order]; }
    static uint64_t& nonempty(BuddyAllocator& a) { return a.m_nonempty; }
    static uint64_t& free_count(BuddyAllocator& a, unsigned order) { return a.m_free_count[order]; }
    static uint64_t& bytes_used(BuddyAllocator& a) { return a.m_bytes_used; }
    static uint64_t& peak(BuddyAllocator& a) { return a.m_peak_used; }
    static uint8_t& record(BuddyAllocator& a, uintptr_t addr)
    {
        return a.m_alloc_order[(addr - a.m_arena_base) >> a.m_min_shift];
    }
    static void set_bit(BuddyAllocator& a, unsigned order, size_t index, bool value)
    {
        uint64_t& word = a.bit_word(order, index);
        const uint64_t bit = uint64_t{1} << (index & 63);
        word = value ? (word | bit) : (word & ~bit);
    }
    static size_t index(BuddyAllocator& a, uintptr_t addr, unsigned order)
    {
        return a.index_of(addr - a.m_arena_base, order);
    }
    static uintptr_t arena_base(BuddyAllocator& a) { return a.m_arena_base; }
};
} // namespace mm

using Access = mm::BuddyAllocatorTestAccess;

namespace {

constexpr size_t KiB = 1024;
constexpr size_t MiB = 1024 * KiB;

uintptr_t addr_of(const void* p) { return reinterpret_cast<uintptr_t>(p); }

void* ptr_at(uintptr_t a) { return reinterpret_cast<void*>(a); }

// A region of `bytes` aligned to `align`, freed on scope exit.
struct AlignedBuffer {
    AlignedBuffer(size_t bytes, size_t align)
        : size(bytes), data(static_cast<unsigned char*>(std::aligned_alloc(align, (bytes + align - 1) / align * align)))
    {
        REQUIRE(data != nullptr);
    }
    ~AlignedBuffer() { std::free(data); }
    AlignedBuffer(const AlignedBuffer&) = delete;
    AlignedBuffer& operator=(const AlignedBuffer&) = delete;
    uintptr_t base() const { return addr_of(data); }
    size_t size;
    unsigned char* data;
};

// An allocator over [buffer + offset, buffer + offset + size) with its own metadata.
struct Fixture {
    Fixture(size_t min_block, size_t max_block, size_t offset, size_t size, size_t buffer_align = 0)
        : buffer(offset + size + 64, buffer_align ? buffer_align : max_block),
          meta(BuddyAllocator::metadata_bytes_needed(size, min_block, max_block))
    {
        REQUIRE(!meta.empty());
        const auto r = alloc.init(buffer.data + offset, size, min_block, max_block, meta.data(), meta.size());
        INFO((r ? "ok" : mm::to_string(r.error())));
        REQUIRE(r.has_value());
    }
    AlignedBuffer buffer;
    std::vector<unsigned char> meta;
    BuddyAllocator alloc;
};

std::vector<uint64_t> buddyinfo(const BuddyAllocator& a)
{
    std::vector<uint64_t> v;
    for (unsigned k = 0; k < a.order_count(); ++k)
        v.push_back(a.free_blocks(k));
    return v;
}

std::string describe(const BuddyCheckReport& r)
{
    return std::string(mm::to_string(r.first)) + " order " + std::to_string(r.first_order) + " at " +
        std::to_string(r.first_address) + ", " + std::to_string(r.violations) + " violation(s)";
}

#define REQUIRE_INVARIANTS(a)                                                                                          \
    do {                                                                                                               \
        const BuddyCheckReport report_ = (a).check_invariants();                                                       \
        INFO(describe(report_));                                                                                       \
        REQUIRE(report_.ok());                                                                                         \
    } while (0)

// Everything observable: stats, metadata bytes, and the checker's view.
struct Snapshot {
    BuddyStats stats;
    std::vector<unsigned char> meta;
    uint64_t free_blocks, free_bytes, allocated_blocks, allocated_bytes;
};

Snapshot snapshot(const Fixture& f)
{
    const BuddyCheckReport r = f.alloc.check_invariants();
    INFO(describe(r));
    REQUIRE(r.ok());
    return {f.alloc.stats(), f.meta, r.free_blocks, r.free_bytes, r.allocated_blocks, r.allocated_bytes};
}

void require_same(const Snapshot& a, const Snapshot& b)
{
    REQUIRE(a.stats == b.stats);
    REQUIRE(a.meta == b.meta);
    REQUIRE(a.free_blocks == b.free_blocks);
    REQUIRE(a.free_bytes == b.free_bytes);
    REQUIRE(a.allocated_blocks == b.allocated_blocks);
    REQUIRE(a.allocated_bytes == b.allocated_bytes);
}

// Runs a free-like operation that must fail with `expected` and change nothing.
template <typename Op>
void require_rejected(Fixture& f, BuddyError expected, Op op)
{
    const Snapshot before = snapshot(f);
    const auto r = op();
    REQUIRE(!r.has_value());
    INFO(mm::to_string(r.error()));
    REQUIRE(r.error() == expected);
    require_same(before, snapshot(f));
}

// Reference for Linux's __fragmentation_index over a buddyinfo vector.
int reference_fragmentation_index(const std::vector<uint64_t>& info, unsigned order)
{
    unsigned long long pages = 0, total = 0, suitable = 0;
    for (unsigned k = 0; k < info.size(); ++k) {
        total += info[k];
        pages += info[k] << k;
        if (k >= order)
            suitable += info[k] << (k - order);
    }
    if (total == 0)
        return 0;
    if (suitable)
        return -1000;
    const unsigned long long requested = 1ull << order;
    return 1000 - static_cast<int>((1000 + pages * 1000 / requested) / total);
}

int reference_unusable_index(const std::vector<uint64_t>& info, unsigned order)
{
    unsigned long long pages = 0, suitable = 0;
    for (unsigned k = 0; k < info.size(); ++k) {
        pages += info[k] << k;
        if (k >= order)
            suitable += info[k] << k;
    }
    return pages == 0 ? 1000 : static_cast<int>((pages - suitable) * 1000 / pages);
}

uint64_t pattern(uint64_t id, uint64_t i)
{
    uint64_t x = id * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull + 0x94d049bb133111ebull;
    x ^= x >> 31;
    x *= 0xd6e9f3a8b4c7e5d3ull;
    return x ^ (x >> 29);
}

// Small blocks: every word. Larger blocks: one word per 64 bytes plus the last
// word, which hits every min block (min >= 64 in these tests) and so detects
// any overlap and any allocator write into a live block.
size_t pattern_stride(size_t size) { return size <= 512 ? 8 : 64; }

void fill(void* block, size_t size, uint64_t id)
{
    auto* bytes = static_cast<unsigned char*>(block);
    const size_t stride = pattern_stride(size);
    for (size_t off = 0; off < size; off += stride) {
        const uint64_t v = pattern(id, off);
        std::memcpy(bytes + off, &v, 8);
    }
    const uint64_t last = pattern(id, size);
    std::memcpy(bytes + size - 8, &last, 8);
}

bool verify(const void* block, size_t size, uint64_t id)
{
    const auto* bytes = static_cast<const unsigned char*>(block);
    const size_t stride = pattern_stride(size);
    uint64_t v;
    std::memcpy(&v, bytes + size - 8, 8);
    if (v != pattern(id, size))
        return false;
    for (size_t off = 0; off + 8 < size; off += stride) {
        std::memcpy(&v, bytes + off, 8);
        if (v != pattern(id, off))
            return false;
    }
    return true;
}

} // namespace

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

TEST_CASE("buddy: every error and violation has a distinct name", "[buddy]")
{
    std::vector<std::string> names;
    for (unsigned e = 0; e <= static_cast<unsigned>(BuddyError::MetadataOverlap); ++e)
        names.emplace_back(mm::to_string(static_cast<BuddyError>(e)));
    std::sort(names.begin(), names.end());
    REQUIRE(std::unique(names.begin(), names.end()) == names.end());
    REQUIRE(std::string(mm::to_string(static_cast<BuddyError>(200))) == "unknown buddy error");

    names.clear();
    for (unsigned v = 0; v <= static_cast<unsigned>(BuddyViolation::BytesMismatch); ++v)
        names.emplace_back(mm::to_string(static_cast<BuddyViolation>(v)));
    std::sort(names.begin(), names.end());
    REQUIRE(std::unique(names.begin(), names.end()) == names.end());
    REQUIRE(std::string(mm::to_string(static_cast<BuddyViolation>(200))) == "unknown violation");
}

// ---------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------

TEST_CASE("buddy: configuration is validated", "[buddy]")
{
    SECTION("metadata_bytes_needed rejects bad block sizes with 0")
    {
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 48, 64 * KiB) == 0); // min not a power of two
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 64, 96 * KiB) == 0); // max not a power of two
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 8, 64 * KiB) == 0);  // min below the free node
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 0, 64 * KiB) == 0);
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 4096, 2048) == 0);      // max < min
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 16, 16ull << 32) == 0); // 33 orders
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 16, 16ull << 31) > 0);  // 32 orders is the limit
        REQUIRE(BuddyAllocator::metadata_bytes_needed(MiB, 64, 64) > 0);           // a single order is fine
        int x = 0;
        REQUIRE(BuddyAllocator::metadata_bytes_needed(&x, MiB, 48, 64 * KiB) == 0);
        REQUIRE(BuddyAllocator::metadata_bytes_needed(&x, 0, 64, 64 * KiB) == 0); // region too small
    }

    SECTION("metadata sizes: bitmaps plus one record byte per min block")
    {
        // 1 MiB aligned, 64 B..64 KiB: 16 roots, 16384 min blocks; bitmap words per order
        // 256+128+64+32+16+8+4+2+1+1+1 = 513.
        AlignedBuffer buf(MiB, 64 * KiB);
        REQUIRE(BuddyAllocator::metadata_bytes_needed(buf.data, MiB, 64, 64 * KiB) == 7 + 513 * 8 + 16384);
        // The size-only bound allows one extra root for any base.
        std::mt19937_64 rng(7);
        for (int i = 0; i < 2000; ++i) {
            const size_t size = rng() % (3 * MiB) + 1;
            const uintptr_t base = 0x100000000ull + rng() % (4 * MiB);
            const size_t min = size_t{16} << (rng() % 6);
            const size_t max = min << (rng() % 12);
            const size_t exact = BuddyAllocator::metadata_bytes_needed(ptr_at(base), size, min, max);
            REQUIRE(exact <= BuddyAllocator::metadata_bytes_needed(size, min, max));
        }
    }

    SECTION("init rejects bad configurations without touching state")
    {
        Fixture f(64, 64 * KiB, 0, 256 * KiB);
        void* a = *f.alloc.allocate(100);
        const Snapshot before = snapshot(f);
        std::vector<unsigned char> meta(1 * MiB);
        AlignedBuffer other(MiB, 64 * KiB);
        auto init = [&](void* region, size_t size, size_t min, size_t max, void* md, size_t mdsize) {
            const auto r = f.alloc.init(region, size, min, max, md, mdsize);
            REQUIRE(!r.has_value());
            require_same(before, snapshot(f));
            return r.error();
        };
        REQUIRE(init(other.data, MiB, 48, 64 * KiB, meta.data(), meta.size()) == BuddyError::InvalidConfig);
        REQUIRE(init(other.data, MiB, 64, 100000, meta.data(), meta.size()) == BuddyError::InvalidConfig);
        REQUIRE(init(other.data, MiB, 8, 64 * KiB, meta.data(), meta.size()) == BuddyError::InvalidConfig);
        REQUIRE(init(other.data, MiB, 128, 64, meta.data(), meta.size()) == BuddyError::InvalidConfig);
        REQUIRE(init(other.data, MiB, 16, 16ull << 32, meta.data(), meta.size()) == BuddyError::InvalidConfig);
        // A region that wraps around the top of the address space.
        REQUIRE(init(ptr_at(UINTPTR_MAX - 4095), 8192, 64, 4096, meta.data(), meta.size()) ==
                BuddyError::InvalidConfig);
        // Too small once trimmed to min blocks.
        REQUIRE(init(other.data, 0, 64, 4096, meta.data(), meta.size()) == BuddyError::RegionTooSmall);
        REQUIRE(init(nullptr, 0, 64, 4096, meta.data(), meta.size()) == BuddyError::RegionTooSmall);
        REQUIRE(init(other.data + 1, 10, 64, 4096, meta.data(), meta.size()) == BuddyError::RegionTooSmall);
        REQUIRE(init(other.data + 1, 100, 64, 4096, meta.data(), meta.size()) == BuddyError::RegionTooSmall);
        REQUIRE(init(other.data + 1, 63 + 63, 64, 4096, meta.data(), meta.size()) == BuddyError::RegionTooSmall);
        // Metadata missing, short, or overlapping the region.
        const size_t need = BuddyAllocator::metadata_bytes_needed(other.data, MiB, 64, 64 * KiB);
        REQUIRE(init(other.data, MiB, 64, 64 * KiB, nullptr, need) == BuddyError::MetadataTooSmall);
        unsigned char* aligned_meta = meta.data() + ((8 - addr_of(meta.data()) % 8) % 8);
        REQUIRE(init(other.data, MiB, 64, 64 * KiB, aligned_meta, need - 8) == BuddyError::MetadataTooSmall);
        REQUIRE(init(other.data, MiB, 64, 64 * KiB, aligned_meta + 1, 3) == BuddyError::MetadataTooSmall); // < pad
        REQUIRE(init(other.data, MiB, 64, 64 * KiB, other.data + 4096, need) == BuddyError::MetadataOverlap);
        // Only the bytes actually used count: a buffer ending 100 bytes into the region overlaps.
        REQUIRE(init(other.data + 64 * KiB, 64 * KiB, 64, 4096, other.data + 64 * KiB - 100, MiB) ==
                BuddyError::MetadataOverlap);
        REQUIRE(f.alloc.free(a).has_value());
    }

    SECTION("metadata right next to the region and at any alignment is fine")
    {
        AlignedBuffer buf(2 * MiB, 64 * KiB);
        const size_t need = BuddyAllocator::metadata_bytes_needed(buf.data + MiB, MiB, 64, 64 * KiB);
        BuddyAllocator a;
        for (size_t skew = 0; skew < 8; ++skew) {
            unsigned char* md = buf.data + MiB - need - 8 + skew;
            REQUIRE(a.init(buf.data + MiB, MiB, 64, 64 * KiB, md, need).has_value());
            REQUIRE_INVARIANTS(a);
            REQUIRE(a.bytes_total() == MiB);
            REQUIRE(a.allocate(64 * KiB).has_value());
        }
        // Metadata just past the region's end.
        REQUIRE(a.init(buf.data, MiB, 64, 64 * KiB, buf.data + MiB, need).has_value());
        REQUIRE_INVARIANTS(a);
    }
}

TEST_CASE("buddy: an uninitialised allocator manages nothing", "[buddy]")
{
    BuddyAllocator a;
    int x = 0;
    REQUIRE(!a.initialized());
    REQUIRE(!a.contains(&x));
    REQUIRE(a.allocate(64).error() == BuddyError::OutOfMemory);
    REQUIRE(a.allocate_order(0).error() == BuddyError::OutOfMemory);
    REQUIRE(a.free(&x).error() == BuddyError::ForeignPointer);
    REQUIRE(a.free(nullptr).error() == BuddyError::ForeignPointer);
    REQUIRE(a.free_sized(&x, 4).error() == BuddyError::ForeignPointer);
    REQUIRE(a.block_size_of(&x).error() == BuddyError::ForeignPointer);
    REQUIRE(a.order_for_size(64).error() == BuddyError::InvalidSize);
    REQUIRE(a.fragmentation_index(0) == 0);
    REQUIRE(a.unusable_free_index(0) == 0);
    REQUIRE(a.check_invariants().ok());
    const BuddyStats s = a.stats();
    REQUIRE(s.bytes_total == 0);
    REQUIRE(s.failed_allocations == 2);
    REQUIRE(s.order_count == 0);
}

// ---------------------------------------------------------------------------
// Geometry
// ---------------------------------------------------------------------------

TEST_CASE("buddy: unaligned regions are trimmed and cut into natural blocks", "[buddy]")
{
    SECTION("hand-computed example, 64 B..1 KiB")
    {
        // Arena A (4 KiB aligned). Region [A+182, A+3402) trims to [A+192, A+3392):
        //   [192,256) o0, [256,512) o2, [512,1024) o3, [1024,2048) o4, [2048,3072) o4,
        //   [3072,3328) o2, [3328,3392) o0.
        Fixture f(64, 1024, 182, 3402 - 182, 4096);
        const uintptr_t base = f.buffer.base();
        REQUIRE(f.alloc.region_begin() == base + 192);
        REQUIRE(f.alloc.region_end() == base + 3392);
        REQUIRE(f.alloc.bytes_total() == 3200);
        REQUIRE(f.alloc.bytes_free() == 3200);
        REQUIRE(buddyinfo(f.alloc) == std::vector<uint64_t>{2, 0, 2, 1, 2});
        REQUIRE(f.alloc.min_block_size() == 64);
        REQUIRE(f.alloc.max_block_size() == 1024);
        REQUIRE(f.alloc.order_count() == 5);
        REQUIRE_INVARIANTS(f.alloc);
        // Trimmed edges are foreign.
        REQUIRE(f.alloc.free(ptr_at(base + 182)).error() == BuddyError::ForeignPointer);
        REQUIRE(f.alloc.free(ptr_at(base + 3392)).error() == BuddyError::ForeignPointer);
        // The two max blocks come out first, then smaller blocks must split.
        REQUIRE(addr_of(*f.alloc.allocate_order(4)) % 1024 == 0);
        REQUIRE(addr_of(*f.alloc.allocate_order(4)) % 1024 == 0);
        REQUIRE(f.alloc.allocate_order(4).error() == BuddyError::OutOfMemory);
        const uintptr_t o3 = addr_of(*f.alloc.allocate_order(3));
        REQUIRE(o3 == base + 512);
        REQUIRE_INVARIANTS(f.alloc);
    }

    SECTION("a max-multiple region that starts off a max boundary")
    {
        // [A+512, A+4608): o3 at 512, roots at 1024/2048/3072, o3 at 4096.
        Fixture f(64, 1024, 512, 4096, 4096);
        REQUIRE(buddyinfo(f.alloc) == std::vector<uint64_t>{0, 0, 0, 2, 3});
        REQUIRE_INVARIANTS(f.alloc);
        // Freeing everything never merges across the region bounds.
        std::vector<void*> blocks;
        while (auto r = f.alloc.allocate_order(0))
            blocks.push_back(*r);
        REQUIRE(blocks.size() == 4096 / 64);
        for (void* b : blocks)
            REQUIRE(f.alloc.free(b).has_value());
        REQUIRE(buddyinfo(f.alloc) == std::vector<uint64_t>{0, 0, 0, 2, 3});
        REQUIRE_INVARIANTS(f.alloc);
    }

    SECTION("a region smaller than one max block")
    {
        Fixture f(64, 64 * KiB, 64 * KiB - 192, 448, 64 * KiB); // crosses a 64 KiB boundary
        REQUIRE(f.alloc.bytes_total() == 448);
        REQUIRE(buddyinfo(f.alloc)[0] == 1);
        REQUIRE(buddyinfo(f.alloc)[1] == 1);
        REQUIRE(buddyinfo(f.alloc)[2] == 1);
        REQUIRE(f.alloc.allocate(512).error() == BuddyError::OutOfMemory);
        REQUIRE_INVARIANTS(f.alloc);
    }

    SECTION("frame-sized configuration, 4 KiB..2 MiB, not a multiple of 2 MiB")
    {
        // Region starts 4 KiB + 100 bytes past a 2 MiB boundary and is 7 MiB + 12 KiB + 50 bytes long.
        const size_t offset = 4 * KiB + 100;
        const size_t size = 7 * MiB + 12 * KiB + 50;
        Fixture f(4 * KiB, 2 * MiB, offset, size, 2 * MiB);
        const uintptr_t base = f.buffer.base();
        REQUIRE(f.alloc.region_begin() == base + 8 * KiB);
        REQUIRE(f.alloc.region_end() == ((base + offset + size) & ~uintptr_t{4095}));
        REQUIRE(f.alloc.order_count() == 10);
        REQUIRE_INVARIANTS(f.alloc);
        std::vector<void*> roots;
        while (auto r = f.alloc.allocate_order(9)) {
            REQUIRE(addr_of(*r) % (2 * MiB) == 0);
            roots.push_back(*r);
        }
        REQUIRE(roots.size() == 2); // [2,4) and [4,6) MiB; [6,8) MiB is cut short at 7 MiB + 16 KiB
        for (void* r : roots)
            REQUIRE(f.alloc.free(r).has_value());
        REQUIRE_INVARIANTS(f.alloc);
    }
}

// ---------------------------------------------------------------------------
// Allocation, sizes, alignment
// ---------------------------------------------------------------------------

TEST_CASE("buddy: allocation by size and by order", "[buddy]")
{
    Fixture f(64, 64 * KiB, 0, MiB);
    BuddyAllocator& a = f.alloc;

    SECTION("size to order")
    {
        const std::pair<size_t, unsigned> cases[] = {{1, 0},    {16, 0},   {63, 0},     {64, 0},
                                                     {65, 1},   {128, 1},  {129, 2},    {1000, 4},
                                                     {4096, 6}, {4097, 7}, {65535, 10}, {65536, 10}};
        for (const auto& [size, order] : cases) {
            INFO("size " << size);
            REQUIRE(*a.order_for_size(size) == order);
            void* p = *a.allocate(size);
            REQUIRE(*a.order_of(p) == order);
            REQUIRE(*a.block_size_of(p) == a.block_size(order));
            REQUIRE(addr_of(p) % a.block_size(order) == 0); // natural, absolute alignment
            REQUIRE(a.contains(p));
            REQUIRE(a.free(p).has_value());
        }
        REQUIRE(a.order_for_size(0).error() == BuddyError::InvalidSize);
        REQUIRE(a.order_for_size(64 * KiB + 1).error() == BuddyError::InvalidSize);
        REQUIRE_INVARIANTS(a);
    }

    SECTION("every order")
    {
        std::vector<void*> blocks;
        for (unsigned k = 0; k < a.order_count(); ++k) {
            void* p = *a.allocate_order(k);
            REQUIRE(addr_of(p) % a.block_size(k) == 0);
            REQUIRE(*a.block_size_of(p) == a.block_size(k));
            blocks.push_back(p);
        }
        REQUIRE_INVARIANTS(a);
        for (void* p : blocks)
            REQUIRE(a.free(p).has_value());
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 16});
    }

    SECTION("invalid sizes fail, count as failures and change nothing else")
    {
        const Snapshot before = snapshot(f);
        REQUIRE(a.allocate(0).error() == BuddyError::InvalidSize);
        REQUIRE(a.allocate(64 * KiB + 1).error() == BuddyError::InvalidSize);
        REQUIRE(a.allocate(SIZE_MAX).error() == BuddyError::InvalidSize);
        REQUIRE(a.allocate_order(11).error() == BuddyError::InvalidSize);
        REQUIRE(a.allocate_order(1000).error() == BuddyError::InvalidSize);
        Snapshot after = snapshot(f);
        REQUIRE(after.stats.failed_allocations == before.stats.failed_allocations + 5);
        after.stats.failed_allocations = before.stats.failed_allocations;
        require_same(before, after);
    }
}

TEST_CASE("buddy: split and coalesce", "[buddy]")
{
    Fixture f(64, 1024, 0, 1024, 1024); // one root, orders 0..4
    BuddyAllocator& a = f.alloc;
    const std::vector<uint64_t> initial{0, 0, 0, 0, 1};
    REQUIRE(buddyinfo(a) == initial);

    SECTION("one min block splits the root into one free block per lower order")
    {
        void* p = *a.allocate_order(0);
        REQUIRE(addr_of(p) == f.buffer.base()); // the low half is kept at each split
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{1, 1, 1, 1, 0});
        REQUIRE_INVARIANTS(a);
        REQUIRE(a.free(p).has_value());
        REQUIRE(buddyinfo(a) == initial);
        REQUIRE_INVARIANTS(a);
    }

    SECTION("buddies merge only when both are free, in any order")
    {
        void* x = *a.allocate_order(0);
        void* y = *a.allocate_order(0);
        REQUIRE(addr_of(y) == addr_of(x) + 64); // the buddy came straight off the order-0 list
        void* z = *a.allocate_order(1);
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{0, 0, 1, 1, 0});
        REQUIRE(a.free(y).has_value());
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{1, 0, 1, 1, 0}); // no merge: x is live
        REQUIRE(a.free(z).has_value());
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{1, 1, 1, 1, 0});
        REQUIRE_INVARIANTS(a);
        REQUIRE(a.free(x).has_value()); // merges all the way up
        REQUIRE(buddyinfo(a) == initial);
        REQUIRE_INVARIANTS(a);
    }

    SECTION("a middle node of a free list is unlinked when its buddy is freed")
    {
        std::vector<void*> blocks;
        for (int i = 0; i < 16; ++i)
            blocks.push_back(*a.allocate_order(0));
        for (int i = 0; i < 16; i += 2)
            REQUIRE(a.free(blocks[i]).has_value()); // 8 unmerged order-0 blocks
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{8, 0, 0, 0, 0});
        for (int i : {7, 1, 15, 9, 5, 3, 13, 11})
            REQUIRE(a.free(blocks[i]).has_value());
        REQUIRE(buddyinfo(a) == initial);
        REQUIRE_INVARIANTS(a);
    }
}

TEST_CASE("buddy: exhaustion reports OutOfMemory and changes nothing", "[buddy]")
{
    Fixture f(64, 4096, 64, 16 * KiB - 64, 4096);
    BuddyAllocator& a = f.alloc;
    const auto initial = buddyinfo(a);
    std::vector<void*> blocks;
    while (auto r = a.allocate(64))
        blocks.push_back(*r);
    REQUIRE(blocks.size() == (16 * KiB - 64) / 64);
    REQUIRE(a.bytes_free() == 0);

    Snapshot before = snapshot(f);
    REQUIRE(a.allocate(64).error() == BuddyError::OutOfMemory);
    REQUIRE(a.allocate_order(3).error() == BuddyError::OutOfMemory);
    Snapshot after = snapshot(f);
    REQUIRE(after.stats.failed_allocations == before.stats.failed_allocations + 2);
    after.stats.failed_allocations = before.stats.failed_allocations;
    require_same(before, after);

    // Free memory that is too fragmented for a larger order is still OOM.
    for (size_t i = 0; i < blocks.size(); i += 2)
        REQUIRE(a.free(blocks[i]).has_value());
    REQUIRE(a.bytes_free() > 4096);
    REQUIRE(a.allocate(128).error() == BuddyError::OutOfMemory);
    for (size_t i = 1; i < blocks.size(); i += 2)
        REQUIRE(a.free(blocks[i]).has_value());
    REQUIRE(buddyinfo(a) == initial);
    REQUIRE_INVARIANTS(a);
}

// ---------------------------------------------------------------------------
// Free errors
// ---------------------------------------------------------------------------

TEST_CASE("buddy: invalid frees are reported and leave state untouched", "[buddy]")
{
    Fixture f(64, 4096, 100, 64 * KiB, 4096); // unaligned start: [A+128, A+65600)
    BuddyAllocator& a = f.alloc;
    void* live = *a.allocate_order(3);  // 512 bytes
    void* small = *a.allocate_order(0); // the lone o0 block at the region's end
    const uintptr_t l = addr_of(live);
    const uintptr_t free_spot = f.buffer.base() + 8192; // start of a free 4 KiB root
    REQUIRE(addr_of(small) == a.region_end() - 64);

    SECTION("double free")
    {
        void* p = *a.allocate_order(0);
        REQUIRE(a.free(p).has_value());
        require_rejected(f, BuddyError::DoubleFree, [&] { return a.free(p); });
        require_rejected(f, BuddyError::DoubleFree, [&] { return a.free_sized(p, 64); });
        // Freed and then merged into a bigger free block: still a double free.
        REQUIRE(a.free(small).has_value());
        require_rejected(f, BuddyError::DoubleFree, [&] { return a.free(small); });
        // Never allocated at all.
        require_rejected(f, BuddyError::DoubleFree, [&] { return a.free(ptr_at(free_spot)); });
        require_rejected(f, BuddyError::DoubleFree, [&] { return a.free(ptr_at(free_spot + 1024)); });
        REQUIRE(a.block_size_of(ptr_at(free_spot)).error() == BuddyError::DoubleFree);
    }

    SECTION("foreign pointers")
    {
        int on_stack = 0;
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(nullptr); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(&on_stack); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(ptr_at(a.region_begin() - 64)); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(ptr_at(a.region_begin() - 1)); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(ptr_at(a.region_end())); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free(ptr_at(UINTPTR_MAX)); });
        require_rejected(f, BuddyError::ForeignPointer, [&] { return a.free_sized(f.buffer.data + 100, 64); });
        REQUIRE(a.block_size_of(&on_stack).error() == BuddyError::ForeignPointer);
        REQUIRE(!a.contains(&on_stack));
    }

    SECTION("misaligned pointers into free memory")
    {
        require_rejected(f, BuddyError::MisalignedPointer, [&] { return a.free(ptr_at(free_spot + 1)); });
        require_rejected(f, BuddyError::MisalignedPointer, [&] { return a.free(ptr_at(free_spot + 4095)); });
        require_rejected(f, BuddyError::MisalignedPointer, [&] { return a.free_sized(ptr_at(free_spot + 8), 1); });
    }

    SECTION("interior pointers")
    {
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free(ptr_at(l + 64)); }); // aligned
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free(ptr_at(l + 256)); });
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free(ptr_at(l + 1)); }); // unaligned
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free(ptr_at(l + 511)); });
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free_sized(ptr_at(l + 64), 512); });
        require_rejected(f, BuddyError::InteriorPointer, [&] { return a.free(ptr_at(addr_of(small) + 16)); });
        REQUIRE(a.block_size_of(ptr_at(l + 64)).error() == BuddyError::InteriorPointer);
        REQUIRE(a.order_of(ptr_at(l + 1)).error() == BuddyError::InteriorPointer);
    }

    SECTION("sized free checks the size")
    {
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(live, 256); });
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(live, 513); });
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(live, 0); });
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(live, 4097); });
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(live, SIZE_MAX); });
        require_rejected(f, BuddyError::SizeMismatch, [&] { return a.free_sized(small, 65); });
        // Any size that rounds up to the block's order is accepted.
        REQUIRE(a.free_sized(live, 257).has_value());
        REQUIRE(a.free_sized(small, 1).has_value());
        void* p = *a.allocate(300);
        REQUIRE(a.free_sized(p, 512).has_value());
        REQUIRE_INVARIANTS(a);
    }

    SECTION("a valid free still works after rejected ones")
    {
        REQUIRE(a.free(ptr_at(l + 64)).error() == BuddyError::InteriorPointer);
        REQUIRE(a.free_sized(live, 64).error() == BuddyError::SizeMismatch);
        REQUIRE(a.free(live).has_value());
        REQUIRE(a.free(small).has_value());
        REQUIRE(a.bytes_used() == 0);
        REQUIRE_INVARIANTS(a);
    }
}

// ---------------------------------------------------------------------------
// Statistics
// ---------------------------------------------------------------------------

TEST_CASE("buddy: statistics and counters", "[buddy]")
{
    Fixture f(64, 1024, 0, 4096, 4096);
    BuddyAllocator& a = f.alloc;
    BuddyStats s = a.stats();
    REQUIRE(s.min_block == 64);
    REQUIRE(s.max_block == 1024);
    REQUIRE(s.order_count == 5);
    REQUIRE(s.bytes_total == 4096);
    REQUIRE(s.bytes_free == 4096);
    REQUIRE(s.bytes_used == 0);
    REQUIRE(s.peak_bytes_used == 0);
    REQUIRE(s.free_blocks[4] == 4);

    void* p1 = *a.allocate(1000);
    void* p2 = *a.allocate(100);
    void* p3 = *a.allocate(64);
    REQUIRE(a.allocate(5000).error() == BuddyError::InvalidSize);
    s = a.stats();
    REQUIRE(s.bytes_used == 1024 + 128 + 64);
    REQUIRE(s.bytes_free == 4096 - s.bytes_used);
    REQUIRE(s.peak_bytes_used == s.bytes_used);
    REQUIRE(s.allocations == 3);
    REQUIRE(s.frees == 0);
    REQUIRE(s.failed_allocations == 1);
    REQUIRE(s.free_blocks[0] == 1);
    REQUIRE(s.free_blocks[1] == 0);
    REQUIRE(s.free_blocks[2] == 1);
    REQUIRE(s.free_blocks[3] == 1);
    REQUIRE(s.free_blocks[4] == 2);

    REQUIRE(a.free(p1).has_value());
    REQUIRE(a.free(p2).has_value());
    s = a.stats();
    REQUIRE(s.bytes_used == 64);
    REQUIRE(s.peak_bytes_used == 1024 + 128 + 64);
    REQUIRE(s.frees == 2);
    REQUIRE(a.free(p3).has_value());
    s = a.stats();
    REQUIRE(s.bytes_used == 0);
    REQUIRE(s.free_blocks[4] == 4);
    REQUIRE(s.allocations == 3);
    REQUIRE(s.frees == 3);

    // Re-init forgets everything.
    REQUIRE(a.init(f.buffer.data, 2048, 64, 1024, f.meta.data(), f.meta.size()).has_value());
    const BuddyStats fresh = a.stats();
    REQUIRE(fresh.allocations == 0);
    REQUIRE(fresh.failed_allocations == 0);
    REQUIRE(fresh.peak_bytes_used == 0);
    REQUIRE(fresh.bytes_total == 2048);
    REQUIRE(fresh.free_blocks[4] == 2);
    REQUIRE_INVARIANTS(a);
}

TEST_CASE("buddy: stats snapshots compare field by field", "[buddy]")
{
    Fixture f(64, 1024, 0, 4096, 4096);
    REQUIRE(f.alloc.free_blocks(f.alloc.order_count()) == 0); // out of range
    const BuddyStats base = f.alloc.stats();
    REQUIRE(base == f.alloc.stats());
    const std::vector<void (*)(BuddyStats&)> mutations = {
        [](BuddyStats& s) { ++s.min_block; },
        [](BuddyStats& s) { ++s.max_block; },
        [](BuddyStats& s) { ++s.order_count; },
        [](BuddyStats& s) { ++s.free_blocks[0]; },
        [](BuddyStats& s) { ++s.free_blocks[mm::kBuddyMaxOrders - 1]; },
        [](BuddyStats& s) { ++s.fragmentation_index[0]; },
        [](BuddyStats& s) { ++s.fragmentation_index[mm::kBuddyMaxOrders - 1]; },
        [](BuddyStats& s) { ++s.unusable_index[0]; },
        [](BuddyStats& s) { ++s.unusable_index[mm::kBuddyMaxOrders - 1]; },
        [](BuddyStats& s) { ++s.bytes_total; },
        [](BuddyStats& s) { ++s.bytes_free; },
        [](BuddyStats& s) { ++s.bytes_used; },
        [](BuddyStats& s) { ++s.peak_bytes_used; },
        [](BuddyStats& s) { ++s.allocations; },
        [](BuddyStats& s) { ++s.frees; },
        [](BuddyStats& s) { ++s.failed_allocations; },
    };
    for (auto mutate : mutations) {
        BuddyStats s = base;
        mutate(s);
        REQUIRE(!(s == base));
    }
}

TEST_CASE("buddy: fragmentation index follows Linux __fragmentation_index", "[buddy]")
{
    Fixture f(64, 1024, 0, 1024, 1024); // 16 "pages", orders 0..4
    BuddyAllocator& a = f.alloc;
    for (unsigned k = 0; k < 5; ++k) {
        REQUIRE(a.fragmentation_index(k) == -1000); // a suitable block is free
        REQUIRE(a.unusable_free_index(k) == 0);
    }
    REQUIRE(a.fragmentation_index(5) == 0); // out of range, as Linux
    REQUIRE(a.unusable_free_index(5) == 0);

    std::vector<void*> pages;
    for (int i = 0; i < 16; ++i)
        pages.push_back(*a.allocate_order(0));
    for (unsigned k = 0; k < 5; ++k) {
        REQUIRE(a.fragmentation_index(k) == 0); // nothing free: lack of memory
        REQUIRE(a.unusable_free_index(k) == 1000);
    }

    SECTION("every other page free")
    {
        for (int i = 0; i < 16; i += 2)
            REQUIRE(a.free(pages[i]).has_value());
        // free_pages 8, free_blocks_total 8: 1000 - (1000 + 8000 / 2^k) / 8
        REQUIRE(a.fragmentation_index(0) == -1000);
        REQUIRE(a.fragmentation_index(1) == 375);
        REQUIRE(a.fragmentation_index(2) == 625);
        REQUIRE(a.fragmentation_index(3) == 750);
        REQUIRE(a.fragmentation_index(4) == 813);
        REQUIRE(a.unusable_free_index(0) == 0);
        REQUIRE(a.unusable_free_index(1) == 1000);
        const BuddyStats s = a.stats();
        REQUIRE(s.fragmentation_index[3] == 750);
        REQUIRE(s.unusable_index[4] == 1000);
    }

    SECTION("few free blocks can give a negative index, as in Linux")
    {
        REQUIRE(a.free(pages[3]).has_value());
        REQUIRE(a.fragmentation_index(1) == 1000 - (1000 + 1000 / 2) / 1); // -500
    }

    SECTION("mixed orders")
    {
        // Free pages 0..3 (-> one order-2 block) and page 5 (order 0).
        for (int i : {0, 1, 2, 3, 5})
            REQUIRE(a.free(pages[i]).has_value());
        REQUIRE(buddyinfo(a) == std::vector<uint64_t>{1, 0, 1, 0, 0});
        REQUIRE(a.fragmentation_index(2) == -1000);
        REQUIRE(a.fragmentation_index(3) == 1000 - (1000 + 5000 / 8) / 2);
        REQUIRE(a.unusable_free_index(1) == 1000 / 5);
        for (unsigned k = 0; k < 5; ++k) {
            REQUIRE(a.fragmentation_index(k) == reference_fragmentation_index(buddyinfo(a), k));
            REQUIRE(a.unusable_free_index(k) == reference_unusable_index(buddyinfo(a), k));
        }
    }
}

// ---------------------------------------------------------------------------
// Invariant checker
// ---------------------------------------------------------------------------

// The fuzz harness's per-operation check: each corruption below sits at or next to the block
// passed, and must be caught without the whole walk.
TEST_CASE("buddy: the local check finds corruption at the block and its buddy", "[buddy]")
{
    // As below: o0 at 192, o2 at 256, o3 at 512, o4 at 1024 and 2048, o2 at 3072, o0 at 3328.
    Fixture f(64, 1024, 192, 3200, 4096);
    BuddyAllocator& a = f.alloc;
    const uintptr_t base = f.buffer.base();
    void* x = *a.allocate_order(0); // 3328: the smallest free block comes first
    void* y = *a.allocate_order(0); // 192
    REQUIRE(addr_of(x) == base + 3328);
    REQUIRE(addr_of(y) == base + 192);
    for (void* p : {x, y, reinterpret_cast<void*>(base + 512), reinterpret_cast<void*>(base + 1024 + 100)})
        REQUIRE(a.check_local(p).ok());
    REQUIRE(a.check_local(nullptr).ok());
    auto expect = [&](const void* at, BuddyViolation v) {
        const BuddyCheckReport r = a.check_local(at);
        INFO(describe(r) << ", looking for " << mm::to_string(v));
        REQUIRE(r.has(v));
        REQUIRE(!a.check_invariants().ok()); // the whole walk agrees
    };

    SECTION("the block's record is gone")
    {
        Access::record(a, addr_of(x)) = 0;
        expect(x, BuddyViolation::UncoveredMemory);
    }
    SECTION("an impossible record")
    {
        Access::record(a, addr_of(x)) = 99;
        expect(x, BuddyViolation::BadAllocRecord);
    }
    SECTION("a free buddy left unmerged")
    {
        // The o3 block at 512 is free; mark its buddy at 0 (reserved) free at order 3 as well.
        Access::set_bit(a, 3, 0, true);
        expect(reinterpret_cast<void*>(base + 512 + 64), BuddyViolation::UnmergedBuddies);
    }
    SECTION("a larger free block claims an allocated one")
    {
        Access::set_bit(a, 1, Access::index(a, base + 3328, 1), true);
        expect(x, BuddyViolation::Overlap);
    }
    SECTION("the buddy's free-list links are broken")
    {
        void* z = *a.allocate_order(0); // splits an o2 block: z, its free o0 buddy and a free o1
        auto* buddy = reinterpret_cast<Access::Node*>(addr_of(z) ^ 64);
        REQUIRE(a.free_blocks(0) == 1);
        REQUIRE(Access::head(a, 0) == buddy);
        buddy->prev = reinterpret_cast<Access::Node*>(base + 512); // the free o3 block
        expect(z, BuddyViolation::ListCorrupt);
    }
    SECTION("a list head with a back link")
    {
        Access::head(a, 4)->prev = Access::head(a, 4);
        expect(nullptr, BuddyViolation::ListCorrupt);
    }
    SECTION("counters")
    {
        Access::bytes_used(a) += 64;
        expect(nullptr, BuddyViolation::BytesMismatch);
    }
    SECTION("the mask")
    {
        Access::nonempty(a) ^= 1u << 3;
        expect(nullptr, BuddyViolation::MaskMismatch);
    }
    SECTION("a count without a list")
    {
        Access::free_count(a, 1) = 1;
        expect(nullptr, BuddyViolation::CountMismatch);
    }
}

TEST_CASE("buddy: the invariant checker finds corruption", "[buddy]")
{
    using Node = Access::Node;
    // Hand example geometry: o0 at 192, o2 at 256, o3 at 512, o4 at 1024 and 2048, o2 at 3072, o0 at 3328.
    Fixture f(64, 1024, 192, 3200, 4096);
    BuddyAllocator& a = f.alloc;
    const uintptr_t base = f.buffer.base();
    REQUIRE_INVARIANTS(a);
    auto expect = [&](BuddyViolation v) {
        const BuddyCheckReport r = a.check_invariants();
        INFO(describe(r) << ", looking for " << mm::to_string(v));
        REQUIRE(!r.ok());
        REQUIRE(r.has(v));
        return r;
    };

    SECTION("stray bit past the last root")
    {
        Access::set_bit(a, 4, 5, true); // the arena has 4 roots
        REQUIRE(expect(BuddyViolation::StrayBit).first == BuddyViolation::StrayBit);
    }
    SECTION("unmerged buddies")
    {
        // Mark the buddy of the free o3 block at 512 (that is [0,512), reserved) free too.
        Access::set_bit(a, 3, 0, true);
        const auto r = expect(BuddyViolation::UnmergedBuddies);
        REQUIRE(r.first == BuddyViolation::UnmergedBuddies);
        REQUIRE(r.first_order == 3);
        REQUIRE(r.first_address == base);
    }
    SECTION("broken prev link")
    {
        void* x = *a.allocate_order(0);
        void* y = *a.allocate_order(0);
        REQUIRE(a.free(x).has_value());
        REQUIRE(a.free(y).has_value());
        REQUIRE(a.free_blocks(0) == 2);
        Access::head(a, 0)->next->prev = nullptr;
        REQUIRE(expect(BuddyViolation::ListCorrupt).first == BuddyViolation::ListCorrupt);
    }
    SECTION("cycle in a free list")
    {
        Node* n = Access::head(a, 4);
        n->next->next = n;
        REQUIRE(expect(BuddyViolation::ListCorrupt).first == BuddyViolation::ListCorrupt);
    }
    SECTION("free-list node outside the region")
    {
        static Node outside{};
        Access::head(a, 3)->next = &outside;
        REQUIRE(expect(BuddyViolation::NodeOutOfRange).first == BuddyViolation::NodeOutOfRange);
    }
    SECTION("free-list node whose block runs past the region end")
    {
        auto* n = reinterpret_cast<Node*>(base + 3328); // last o0 block, presented as order 2
        Access::head(a, 2)->next->next = n;
        expect(BuddyViolation::NodeOutOfRange);
    }
    SECTION("misaligned node")
    {
        auto* n = reinterpret_cast<Node*>(base + 1024 + 64); // inside the free root, not 256-aligned
        n->next = nullptr;
        n->prev = nullptr;
        Access::head(a, 2)->prev = n;
        n->next = Access::head(a, 2);
        Access::head(a, 2) = n;
        expect(BuddyViolation::NodeMisaligned);
    }
    SECTION("listed node not marked free")
    {
        Access::set_bit(a, 3, Access::index(a, base + 512, 3), false);
        REQUIRE(expect(BuddyViolation::NodeNotMarked).first == BuddyViolation::NodeNotMarked);
        expect(BuddyViolation::CountMismatch);
        expect(BuddyViolation::UncoveredMemory);
    }
    SECTION("counter disagrees")
    {
        Access::free_count(a, 1) = 3;
        REQUIRE(expect(BuddyViolation::CountMismatch).first == BuddyViolation::CountMismatch);
    }
    SECTION("non-empty mask wrong")
    {
        Access::nonempty(a) ^= 1u << 1;
        REQUIRE(expect(BuddyViolation::MaskMismatch).first == BuddyViolation::MaskMismatch);
    }
    SECTION("non-empty mask has bits past the last order")
    {
        Access::nonempty(a) |= uint64_t{1} << 7;
        REQUIRE(expect(BuddyViolation::MaskMismatch).first_order == 5);
    }
    SECTION("allocation record with an impossible order")
    {
        void* p = *a.allocate_order(0);
        Access::record(a, addr_of(p)) = 99;
        expect(BuddyViolation::BadAllocRecord);
    }
    SECTION("allocation record for a misaligned block")
    {
        Access::record(a, base + 192) = 2; // an o1 record at a spot that is only 64-aligned
        expect(BuddyViolation::BadAllocRecord);
    }
    SECTION("allocation record running past the region")
    {
        void* p = *a.allocate_order(2);
        REQUIRE(addr_of(p) == base + 3072);
        Access::record(a, addr_of(p)) = 4; // an o3 block would end at 3584 > 3392
        expect(BuddyViolation::BadAllocRecord);
    }
    SECTION("a leaked block")
    {
        void* p = *a.allocate_order(2);
        Access::record(a, addr_of(p)) = 0;
        expect(BuddyViolation::UncoveredMemory);
        expect(BuddyViolation::BytesMismatch);
    }
    SECTION("a free bit at a misaligned spot of uncovered memory")
    {
        REQUIRE(addr_of(*a.allocate_order(0)) == base + 3328);
        void* p = *a.allocate_order(0);
        REQUIRE(addr_of(p) == base + 192); // 64- but not 128-aligned
        Access::record(a, addr_of(p)) = 0;
        expect(BuddyViolation::UncoveredMemory);
    }
    SECTION("free block hidden inside an allocated block")
    {
        void* p = *a.allocate_order(3); // 512..1024
        Access::set_bit(a, 0, Access::index(a, addr_of(p) + 128, 0), true);
        REQUIRE(expect(BuddyViolation::Overlap).first == BuddyViolation::CountMismatch);
    }
    SECTION("allocation record hidden inside a free block")
    {
        Access::record(a, base + 2048 + 64) = 1;
        expect(BuddyViolation::Overlap);
    }
    SECTION("free bit for a block crossing the region end")
    {
        Access::set_bit(a, 2, Access::index(a, base + 3072, 2), false);
        Access::set_bit(a, 3, Access::index(a, base + 3072, 3), true);
        expect(BuddyViolation::NodeOutOfRange);
    }
    SECTION("byte counters")
    {
        Access::bytes_used(a) += 64;
        Access::peak(a) = 0;
        REQUIRE(expect(BuddyViolation::BytesMismatch).first == BuddyViolation::BytesMismatch);
    }
    SECTION("peak below current use")
    {
        void* p = *a.allocate_order(0);
        REQUIRE(p != nullptr);
        Access::peak(a) = 0;
        expect(BuddyViolation::BytesMismatch);
    }
}

// ---------------------------------------------------------------------------
// Randomised model-based tests
// ---------------------------------------------------------------------------

namespace {

struct Mix {
    const char* name;
    size_t min_block;
    size_t max_block;
    size_t region_offset; // from a max-aligned buffer
    size_t region_size;
    uint64_t ops;
    // Returns a request size.
    size_t (*pick_size)(std::mt19937_64&, size_t max_block);
};

size_t log_uniform(std::mt19937_64& rng, size_t lo, size_t hi)
{
    const unsigned lo_bits = std::bit_width(lo) - 1, hi_bits = std::bit_width(hi) - 1;
    const unsigned bits = lo_bits + rng() % (hi_bits - lo_bits + 1);
    const size_t base = size_t{1} << bits;
    return std::min(hi, std::max(lo, base + rng() % base));
}

size_t small_heavy(std::mt19937_64& rng, size_t max_block)
{
    const unsigned r = rng() % 100;
    if (r < 85)
        return 1 + rng() % 256;
    if (r < 98)
        return log_uniform(rng, 257, 4096);
    return log_uniform(rng, 4097, max_block);
}

size_t mixed(std::mt19937_64& rng, size_t max_block) { return log_uniform(rng, 1, max_block); }

size_t large_heavy(std::mt19937_64& rng, size_t max_block)
{
    return rng() % 10 < 8 ? log_uniform(rng, max_block / 16, max_block) : log_uniform(rng, 1, max_block);
}

size_t frames(std::mt19937_64& rng, size_t max_block)
{
    // Mostly single frames, geometric towards 2 MiB.
    size_t size = 4096;
    while (size < max_block && rng() % 3 == 0)
        size *= 2;
    return size - rng() % 64;
}

struct Live {
    void* ptr;
    size_t size;  // block size
    size_t asked; // requested size
    uint64_t id;
};

struct ModelResult {
    uint64_t ops = 0, allocs = 0, frees = 0, ooms = 0, error_probes = 0;
};

ModelResult run_model(const Mix& mix, uint64_t seed)
{
    Fixture f(mix.min_block, mix.max_block, mix.region_offset, mix.region_size);
    BuddyAllocator& a = f.alloc;
    const auto initial_info = buddyinfo(a);
    const uint64_t total = a.bytes_total();
    std::mt19937_64 rng(seed);

    std::vector<Live> live;
    std::map<uintptr_t, size_t> by_addr; // addr -> block size, for overlap checks
    uint64_t model_used = 0, next_id = 1;
    ModelResult res;

    // The occupancy target moves through phases so splitting, merging and
    // running full (target above 100%: churn at exhaustion) all get exercised.
    constexpr double kTargets[] = {0.5, 0.9, 0.3, 1.2, 0.7, 0.99};
    for (uint64_t op = 0; op < mix.ops; ++op) {
        const double target = kTargets[(op / 20000) % 6];
        const double occupancy = static_cast<double>(model_used) / static_cast<double>(total);
        const bool do_alloc = live.empty() || (occupancy < target ? rng() % 100 < 70 : rng() % 100 < 30);
        ++res.ops;
        if (do_alloc) {
            const size_t asked = mix.pick_size(rng, mix.max_block);
            const unsigned order = *a.order_for_size(asked);
            const size_t bsize = a.block_size(order);
            const bool by_order = rng() % 4 == 0;
            const auto r = by_order ? a.allocate_order(order) : a.allocate(asked);
            if (!r) {
                REQUIRE(r.error() == BuddyError::OutOfMemory);
                for (unsigned k = order; k < a.order_count(); ++k)
                    REQUIRE(a.free_blocks(k) == 0);
                ++res.ooms;
                continue;
            }
            const uintptr_t p = addr_of(*r);
            REQUIRE(p % bsize == 0);
            REQUIRE(p >= a.region_begin());
            REQUIRE(p + bsize <= a.region_end());
            auto next = by_addr.lower_bound(p);
            if (next != by_addr.end())
                REQUIRE(next->first >= p + bsize);
            if (next != by_addr.begin()) {
                auto prev = std::prev(next);
                REQUIRE(prev->first + prev->second <= p);
            }
            by_addr.emplace(p, bsize);
            const uint64_t id = next_id++;
            fill(*r, bsize, id);
            live.push_back({*r, bsize, asked, id});
            model_used += bsize;
            ++res.allocs;
        } else {
            const size_t i = rng() % live.size();
            const Live b = live[i];
            REQUIRE(verify(b.ptr, b.size, b.id));
            if (rng() % 64 == 0) { // probe an error path on a live block
                const auto r = a.free(static_cast<unsigned char*>(b.ptr) + 8);
                REQUIRE(r.error() == BuddyError::InteriorPointer);
                if (b.size < mix.max_block)
                    REQUIRE(a.free_sized(b.ptr, b.size * 2).error() == BuddyError::SizeMismatch);
                ++res.error_probes;
            }
            REQUIRE(*a.block_size_of(b.ptr) == b.size);
            const unsigned how = rng() % 3;
            const auto r = how == 0 ? a.free(b.ptr) : a.free_sized(b.ptr, how == 1 ? b.size : b.asked);
            REQUIRE(r.has_value());
            if (rng() % 64 == 0) {
                REQUIRE(a.free(b.ptr).error() == BuddyError::DoubleFree);
                ++res.error_probes;
            }
            by_addr.erase(addr_of(b.ptr));
            live[i] = live.back();
            live.pop_back();
            model_used -= b.size;
            ++res.frees;
        }
        REQUIRE(a.bytes_used() == model_used);
        if (op % 20000 == 0) {
            REQUIRE_INVARIANTS(a);
            const auto info = buddyinfo(a);
            for (unsigned k = 0; k < a.order_count(); ++k) {
                REQUIRE(a.fragmentation_index(k) == reference_fragmentation_index(info, k));
                REQUIRE(a.unusable_free_index(k) == reference_unusable_index(info, k));
            }
        }
    }
    REQUIRE_INVARIANTS(a);
    for (const Live& b : live) {
        REQUIRE(verify(b.ptr, b.size, b.id));
        REQUIRE(a.free(b.ptr).has_value());
        ++res.ops;
    }
    REQUIRE(a.bytes_used() == 0);
    REQUIRE(buddyinfo(a) == initial_info); // everything coalesced back
    REQUIRE_INVARIANTS(a);
    const BuddyStats s = a.stats();
    REQUIRE(s.allocations == res.allocs);
    REQUIRE(s.frees == res.allocs);
    REQUIRE(s.failed_allocations == res.ooms);
    return res;
}

} // namespace

TEST_CASE("buddy: randomized model with over a million operations in four size mixes", "[buddy][model]")
{
    // Regions are deliberately unaligned and not multiples of the max block.
    const Mix mixes[] = {
        {"small-heavy", 64, 64 * KiB, 4096 + 8 + 64, 2 * MiB + 3 * 4096 + 300, 460000, small_heavy},
        {"mixed", 64, 64 * KiB, 64 * KiB - 640, 4 * MiB + 1000, 340000, mixed},
        {"large-heavy", 64, 64 * KiB, 192, 8 * MiB + 5 * 4096, 200000, large_heavy},
        {"frames", 4 * KiB, 2 * MiB, 3 * 4096 + 17, 24 * MiB + 40 * 4096, 130000, frames},
    };
    uint64_t total_ops = 0;
    for (const Mix& mix : mixes) {
        INFO("mix " << mix.name);
        const ModelResult r = run_model(mix, 0x5eed0000 + mix.ops);
        REQUIRE(r.allocs > mix.ops / 3);
        REQUIRE(r.frees > mix.ops / 3);
        total_ops += r.ops;
    }
    REQUIRE(total_ops >= 1000000);
}

// ---------------------------------------------------------------------------
// Threads
// ---------------------------------------------------------------------------

TEST_CASE("buddy: threads with private allocators and one shared allocator", "[buddy][threads]")
{
    constexpr int kThreads = 4;
    constexpr int kOpsPerThread = 40000;

    Fixture shared(64, 64 * KiB, 4096 + 64, 4 * MiB + 4096);
    const auto shared_initial = buddyinfo(shared.alloc);
    std::mutex shared_lock;
    std::atomic<uint64_t> failures{0};
    std::atomic<uint64_t> shared_allocs{0};

    auto worker = [&](int tid) {
        // No Catch2 assertions in here: they are not thread-safe. Failures are counted.
        std::unique_ptr<unsigned char, decltype(&std::free)> buf(
            static_cast<unsigned char*>(std::aligned_alloc(64 * KiB, MiB + 64 * KiB)), &std::free);
        std::vector<unsigned char> meta(BuddyAllocator::metadata_bytes_needed(MiB, 64, 64 * KiB));
        BuddyAllocator own;
        if (!buf || !own.init(buf.get() + 320, MiB, 64, 64 * KiB, meta.data(), meta.size())) {
            ++failures;
            return;
        }
        const auto own_initial = buddyinfo(own);
        std::mt19937_64 rng(1234 + tid);
        struct Block {
            void* ptr;
            size_t size;
            uint64_t id;
            bool shared;
        };
        std::vector<Block> blocks;
        uint64_t next_id = static_cast<uint64_t>(tid) << 40;
        auto release = [&](const Block& b) {
            if (!verify(b.ptr, b.size, b.id))
                ++failures;
            if (b.shared) {
                std::lock_guard<std::mutex> guard(shared_lock);
                if (!shared.alloc.free_sized(b.ptr, b.size))
                    ++failures;
            } else if (!own.free(b.ptr)) {
                ++failures;
            }
        };
        for (int op = 0; op < kOpsPerThread; ++op) {
            if (blocks.empty() || rng() % 100 < 52u - (blocks.size() > 200 ? 10u : 0u)) {
                const bool use_shared = rng() % 2 == 0;
                const size_t size = rng() % 8 == 0 ? log_uniform(rng, 1, 64 * KiB) : 1 + rng() % 512;
                lib::Expected<void*, BuddyError> r = lib::unexpected(BuddyError::OutOfMemory);
                if (use_shared) {
                    std::lock_guard<std::mutex> guard(shared_lock);
                    r = shared.alloc.allocate(size);
                } else {
                    r = own.allocate(size);
                }
                if (!r) {
                    if (r.error() != BuddyError::OutOfMemory)
                        ++failures;
                    continue;
                }
                const size_t bsize = use_shared ? shared.alloc.block_size(*shared.alloc.order_for_size(size))
                                                : own.block_size(*own.order_for_size(size));
                if (addr_of(*r) % bsize != 0)
                    ++failures;
                if (use_shared)
                    ++shared_allocs;
                const Block b{*r, bsize, next_id++, use_shared};
                fill(b.ptr, b.size, b.id);
                blocks.push_back(b);
            } else {
                const size_t i = rng() % blocks.size();
                release(blocks[i]);
                blocks[i] = blocks.back();
                blocks.pop_back();
            }
        }
        for (const Block& b : blocks)
            release(b);
        if (!own.check_invariants().ok() || buddyinfo(own) != own_initial || own.bytes_used() != 0)
            ++failures;
    };

    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
        threads.emplace_back(worker, t);
    for (auto& t : threads)
        t.join();
    REQUIRE(failures.load() == 0);
    REQUIRE(shared_allocs.load() > 1000);
    REQUIRE_INVARIANTS(shared.alloc);
    REQUIRE(shared.alloc.bytes_used() == 0);
    REQUIRE(buddyinfo(shared.alloc) == shared_initial);
    REQUIRE(shared.alloc.stats().allocations == shared_allocs.load());
}
