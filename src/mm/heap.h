#pragma once
// mm::Heap: the generic core of the Mana Pool's kernel heap (kmalloc).
//
// No globals, no locks, no arch headers: the kernel wrapper (mm/kmalloc.h) adds
// the IRQ-saving spinlock and the panics, and the host tests run this exact code
// over a private PageSource.
//
// ## Layers
//   small   1 .. 2048 B, alignment <= 16: the 24 size-class SlabCaches
//           (mm/size_classes.h), O(1) fast path.
//   medium  up to medium_max_block (64 KiB) or alignment up to that: buddy
//           blocks of 64 B .. 64 KiB carved from *chunks*. A chunk is a
//           naturally aligned run of 2^chunk_order pages (256 KiB by default)
//           from the PageSource; its first pages hold a Chunk header, the
//           chunk's BuddyAllocator and that allocator's bitmaps; the rest is the
//           buddy's region. Chunks sit in buckets by their largest free order,
//           so an allocation picks the chunk that fits most tightly in O(orders).
//   large   anything bigger (or more strictly aligned): 2^order whole pages
//           straight from the PageSource, naturally aligned (a 1 MiB request
//           is one order-8 block).
// Typed object caches (ObjectCache<T>) are further SlabCaches whose slabs come
// from the same page accounting; they keep the Loom of Fate off the general heap.
//
// ## Page tags: free by pointer
// The heap is given the address window its PageSource's pages can come from
// (the kernel: the physmap of all RAM) and a tag buffer of one byte per 4 KiB
// page of that window. Every page the heap holds is tagged with its kind and
// order:
//
//   bits 7..5 kind: 0 none/released, 1 slab page, 2 chunk metadata, 3 chunk
//             blocks, 4 first page of a large block, 5 other large page
//   bits 4..0 order: slab order, chunk order or large-block order
//   0x00 = never heap memory, 0x01 = heap memory given back to the source.
//
// free(ptr) reads one tag and goes straight to the owner: the slab header at
// ptr rounded down to the slab size, the chunk header at ptr rounded down to
// the chunk size, or the large block itself. Foreign pointers, pointers into
// metadata or into the middle of blocks, and double frees are told apart and
// returned as a HeapError; a rejected free changes nothing.
//
// ## Growth, pressure and OOM
// Memory is taken on demand. Empty slabs and chunks beyond a small retained
// number go straight back; the rest goes back on shrink() and under pressure.
// Watermarks are in pages of the PageSource and need its free-page count
// (HeapConfig::source_free_pages): taking pages that would leave fewer than
// `low` free marks pressure, and once the allocation has finished the
// registered reclaimers run and every cache and empty chunk is shrunk; taking
// pages that would leave fewer than `min` is refused. A refused or failed
// allocation reclaims and retries once; if it still fails, the OOM handler gets
// a full report and the allocation returns nullptr.
//
// ## Debug checks (HeapConfig::debug, default on with AETHELOS_DEBUG_CHECKS)
// Small objects get the slab layer's poison and red zones. Medium blocks get
// the same treatment here:
//
//   block start                                                      block end
//   | header (8) | 0xcc left zone | object (requested bytes) | 0xcc right zone |
//   |<------------- L ------------>|                          |<--- >= 16 --->|
//
//   L = max(16, alignment); header = {magic, L, requested size}. Free blocks
//   are filled with 0x6b (poison), checked when handed out again; the only
//   bytes allowed to differ are the buddy allocator's 16-byte free-list links
//   at min-block boundaries, and those only when they look like links (null,
//   poison, or a pointer into the chunk). Red zones are checked on free and
//   realloc. Damage goes to the corruption callback with the order, block,
//   object, offset and the bytes found; the operation then completes.
//
// ## Files
// heap.cpp is the front door (construction, allocate/free/reallocate dispatch); the layers are
// heap_small.cpp (slab owners, typed caches), heap_medium.cpp (chunks, buddy blocks, red zones
// and poison) and heap_pages.cpp (pages from the source, tags, large blocks, reclaim); then
// heap_stats.cpp, heap_check.cpp (invariants) and heap_reports.cpp (names, reports).
//
// ## Concurrency
// None here: the caller serialises every call (the kernel: one IrqSpinLock).
// Reclaimers and the OOM handler run inside the allocation that triggered
// them, i.e. with that lock held.
#include <stddef.h>
#include <stdint.h>

#include <new>

#include "lib/expected.h"
#include "lib/format.h"
#include "lib/intrusive_list.h"
#include "lib/utility.h"
#include "mm/buddy_allocator.h"
#include "mm/page_source.h"
#include "mm/size_classes.h"
#include "mm/slab_cache.h"

namespace mm {

class Heap;

inline constexpr size_t kHeapPageSize = 4096;
inline constexpr size_t kHeapSmallAlignment = 16;  // every size class is a multiple of 16
inline constexpr unsigned kHeapMaxLargeOrder = 20; // 4 GiB: larger requests fail at once
inline constexpr size_t kHeapMaxObjectCaches = 16; // typed caches registered at once
inline constexpr size_t kHeapMaxReclaimers = 8;
inline constexpr size_t kHeapMaxCacheRows = kSizeClassCount + kHeapMaxObjectCaches;

enum class HeapError : uint8_t {
    ForeignPointer,  // not heap memory: outside the window, or a page the heap never held
    InteriorPointer, // inside a live heap block or object, or heap metadata, but not an object start
    DoubleFree,      // heap memory that is free now: freed twice, never handed out, or given back to the source
    WrongCache,      // an object of a typed ObjectCache freed through the general heap (or of another cache)
    Corrupted,       // the tags name an owner (slab, chunk) whose header is damaged
    InvalidConfig,   // construction: bad window, tag buffer, chunk or block sizes, watermarks
    NotInitialized,  // the heap's construction failed
    RegistryFull,    // reclaimer or object-cache registry at capacity
    AlreadyRegistered,
    NotRegistered,
    NotEmpty, // detaching an object cache that still has objects
};

const char* to_string(HeapError error);

// Where an allocation is served from.
enum class HeapLayer : uint8_t { Small, Medium, Large, Object };
const char* to_string(HeapLayer layer);

// ---- Statistics ----

// Optional view of the PageSource's own allocator (the kernel: the frame
// allocator), filled by HeapConfig::source_stats.
struct HeapSourceStats {
    bool available = false;
    uint64_t total_pages = 0;
    uint64_t free_pages = 0;
    unsigned order_count = 0;                   // orders of 4 KiB pages
    uint64_t free_blocks[kBuddyMaxOrders] = {}; // like /proc/buddyinfo
    int32_t fragmentation_index[kBuddyMaxOrders] = {};

    bool operator==(const HeapSourceStats&) const = default;
};

// One /proc/slabinfo-style line.
struct HeapCacheRow {
    char name[24] = {};
    uint32_t object_size = 0;
    uint32_t slot_size = 0;
    uint32_t objects_per_slab = 0;
    uint16_t pages_per_slab = 0;
    bool typed = false; // an ObjectCache rather than a kmalloc size class
    bool debug = false;
    uint64_t active_objects = 0;
    uint64_t total_objects = 0;
    uint64_t slabs = 0;
    uint64_t allocations = 0;
    uint64_t frees = 0;
    uint64_t failed_allocations = 0;

    bool operator==(const HeapCacheRow&) const = default;
};

// The figures the heap keeps as it runs: one struct, so stats() copies it whole, and HeapStats
// is one too (readers name the fields as they always did).
struct HeapCounters {
    // Everything held from the PageSource, metadata included.
    uint64_t pages_held = 0;
    uint64_t peak_pages_held = 0;
    uint64_t bytes_used = 0; // handed out: object sizes, medium blocks, large blocks
    uint64_t peak_bytes_used = 0;
    uint64_t large_blocks = 0;
    uint64_t large_bytes = 0;

    // Counters over the heap's life.
    uint64_t allocations = 0;        // successful, every layer and typed cache
    uint64_t frees = 0;              // successful
    uint64_t failed_allocations = 0; // returned nullptr (OOM, invalid request, injected)
    uint64_t invalid_frees = 0;      // rejected with a HeapError
    uint64_t corruptions = 0;        // debug reports delivered
    uint64_t pressure_events = 0;    // reclaim passes (watermark or failure)
    uint64_t reclaimer_calls = 0;
    uint64_t oom_events = 0; // OOM handler invocations
    uint64_t injected_failures = 0;
    uint64_t watermark_refusals = 0; // page takes refused by the min watermark
    uint64_t source_failures = 0;    // the PageSource had no pages (returned nullptr, or reports too few free)
    uint64_t chunks_created = 0;
    uint64_t chunks_released = 0;

    bool operator==(const HeapCounters&) const = default;
};

// A plain snapshot (about 4 KiB: keep it off small stacks): the counters, then what a walk of
// the caches and chunks finds.
struct HeapStats : HeapCounters {
    uint64_t bytes_total = 0; // pages_held * 4096
    uint64_t bytes_free = 0;  // total - used: free slots and blocks, empty slabs/chunks, metadata

    // Per layer (large_blocks and large_bytes are counters).
    uint64_t small_bytes_total = 0; // size-class slabs
    uint64_t small_bytes_used = 0;
    uint64_t object_bytes_total = 0; // typed-cache slabs
    uint64_t object_bytes_used = 0;
    uint64_t chunks = 0;
    uint64_t chunks_empty = 0;
    uint64_t medium_bytes_total = 0; // chunk regions (metadata pages excluded)
    uint64_t medium_bytes_used = 0;
    uint64_t medium_bytes_free = 0;
    uint64_t medium_metadata_bytes = 0;

    // The medium buddy summed over chunks, like /proc/buddyinfo, and Linux's
    // __fragmentation_index per order (thousandths) over those sums (mm/fragmentation.h).
    uint64_t medium_min_block = 0;
    unsigned medium_order_count = 0;
    uint64_t medium_free_blocks[kBuddyMaxOrders] = {};
    int32_t medium_fragmentation_index[kBuddyMaxOrders] = {};

    HeapSourceStats source;
    uint64_t low_watermark_pages = 0;
    uint64_t min_watermark_pages = 0;

    unsigned cache_count = 0;
    HeapCacheRow caches[kHeapMaxCacheRows] = {};

    bool operator==(const HeapStats&) const = default;
};

// Multi-line text: totals, layers, buddyinfo, slabinfo, source.
void format_heap_stats(lib::FormatSink& sink, const HeapStats& stats);

// ---- Corruption reports (debug checks) ----

enum class MediumCorruption : uint8_t {
    Poison,        // a free block's bytes are not 0x6b: written after free
    RedZoneBefore, // the bytes between the header and the object
    RedZoneAfter,  // the bytes between the object's end and the block's end
    Header,        // the block header (magic, left offset, size) is damaged
};
const char* to_string(MediumCorruption kind);

struct MediumCorruptionReport {
    static constexpr size_t kMaxFoundBytes = 16;

    const void* chunk = nullptr;
    const void* block = nullptr;
    unsigned order = 0; // buddy order (block_size = min_block << order)
    size_t block_size = 0;
    const void* object = nullptr; // the object; for Poison the block start
    size_t requested = 0;         // the object's requested size (0 for Poison)
    MediumCorruption kind = MediumCorruption::Poison;
    SlabCheckPoint detected_at = SlabCheckPoint::Allocate;
    int64_t offset = 0;   // first bad byte relative to `object`; negative: before it
    uint8_t expected = 0; // 0x6b or 0xcc (0 for Header)
    uint8_t found_count = 0;
    uint8_t found[kMaxFoundBytes] = {};
};

struct HeapCorruption {
    HeapLayer layer = HeapLayer::Small; // Small/Object: slab; Medium: medium
    const SlabCorruptionReport* slab = nullptr;
    const MediumCorruptionReport* medium = nullptr;
};

void format_corruption(lib::FormatSink& sink, const HeapCorruption& corruption);
size_t format_corruption(const HeapCorruption& corruption, char* buf, size_t cap);

using HeapCorruptionFn = void (*)(void* context, const HeapCorruption& corruption);

// ---- OOM ----

struct HeapOomReport {
    size_t size = 0;
    size_t alignment = 0; // as requested; 0 = default
    HeapLayer layer = HeapLayer::Small;
    unsigned order = 0;               // medium: buddy order; large: page order; small: size class index
    const char* cache_name = nullptr; // typed caches
    const HeapStats* stats = nullptr; // snapshot taken after reclaim
};

// The full report: the request, then format_heap_stats.
void format_oom_report(lib::FormatSink& sink, const HeapOomReport& report);

using HeapOomFn = void (*)(void* context, const HeapOomReport& report);

// Runs under memory pressure with the heap's lock held. Free memory through the
// Heap& given (heap.free, heap.cache_free), never through kfree (that would take
// the lock again). Returns the bytes it believes it released (informational).
using HeapReclaimFn = size_t (*)(void* context, Heap& heap, size_t pages_wanted);

// ---- Invariants ----

enum class HeapViolation : uint8_t {
    None,
    SlabCache,     // a slab cache's own check failed
    ChunkHeader,   // a listed chunk without magic/owner, or misaligned
    ChunkList,     // a chunk in the wrong bucket, list links or counts wrong
    Buddy,         // a chunk's buddy check failed
    MediumHeader,  // debug: an allocated medium block's header is damaged
    MediumRedZone, // debug: a red zone of an allocated medium block is damaged
    MediumPoison,  // debug: free medium memory is not poison
    Tags,          // page tags disagree with the slabs, chunks and large blocks
    Accounting,    // page and byte counters disagree with what the walk found
};
const char* to_string(HeapViolation violation);

struct HeapCheckReport {
    uint64_t violations = 0;
    uint32_t kinds = 0; // bit (1 << HeapViolation) per kind found
    HeapViolation first = HeapViolation::None;
    uintptr_t first_address = 0;
    // What the walk found.
    uint64_t slab_pages = 0;
    uint64_t chunk_pages = 0;
    uint64_t large_pages = 0;
    uint64_t medium_blocks = 0;

    bool ok() const { return violations == 0; }
    bool has(HeapViolation violation) const { return (kinds >> static_cast<unsigned>(violation)) & 1; }
};

// ---- Configuration ----

struct HeapConfig {
    // Where the PageSource's pages can lie: page aligned; tags needs one byte
    // per page of it (window_bytes / 4096).
    uintptr_t window_base = 0;
    size_t window_bytes = 0;
    uint8_t* tags = nullptr;
    size_t tag_bytes = 0;

    unsigned chunk_order = 6; // chunks of 2^6 pages = 256 KiB
    size_t medium_min_block = 64;
    size_t medium_max_block = 64 * 1024;
    unsigned max_empty_chunks = 1; // empty chunks retained before giving them back
    unsigned max_empty_slabs = 1;  // per size class
    SlabDebug debug = SlabDebug::Default;

    // Watermarks in pages of the PageSource; need source_free_pages.
    uint64_t low_watermark_pages = 0;
    uint64_t min_watermark_pages = 0;
    void* source_context = nullptr;
    uint64_t (*source_free_pages)(void* context) = nullptr;
    void (*source_stats)(void* context, HeapSourceStats& out) = nullptr;

    HeapOomFn on_oom = nullptr;
    void* oom_context = nullptr;
    // Without a callback, corruption is logged as an error.
    HeapCorruptionFn on_corruption = nullptr;
    void* corruption_context = nullptr;
};

// What an ObjectCache needs from its heap. The Heap implements it unlocked;
// the kernel provides a locked implementation (mm::kernel_object_cache_host()).
class ObjectCacheHost {
public:
    virtual lib::Expected<void, HeapError> attach_cache(SlabCache& cache, const SlabCacheConfig& config) = 0;
    virtual lib::Expected<void, HeapError> detach_cache(SlabCache& cache) = 0;
    virtual void* cache_allocate(SlabCache& cache) = 0;
    virtual lib::Expected<void, HeapError> cache_free(SlabCache& cache, void* ptr) = 0;
    // Whether ptr lies in a live slab of `cache` (page tags, then the slab
    // header): Foreign/DoubleFree/WrongCache/Corrupted otherwise. Does not tell
    // an object start from an interior pointer, nor a free object from a live one.
    virtual lib::Expected<void, HeapError> cache_validate(SlabCache& cache, const void* ptr) = 0;

protected:
    ~ObjectCacheHost() = default;
};

class Heap final : public ObjectCacheHost {
public:
    Heap(PageSource& source, const HeapConfig& config);
    Heap(const Heap&) = delete;
    Heap& operator=(const Heap&) = delete;
    // Gives nothing back by itself: free everything and shrink() first.
    ~Heap() = default;

    // Whether construction succeeded (else every allocation fails).
    lib::Expected<void, HeapError> status() const;

    // `alignment`: a power of two (0 means the default, 16 for small sizes);
    // beyond 16 the request goes to the medium or large layer. Size 0 is
    // served as 1 byte. nullptr on failure (invalid alignment, OOM, injection).
    void* allocate(size_t size, size_t alignment = 0);
    // n * size zeroed bytes; nullptr on overflow or OOM.
    void* allocate_zeroed(size_t count, size_t size);
    // C realloc: nullptr ptr allocates; size 0 frees and returns nullptr. In
    // place when the block already holds new_size and is not more than twice
    // what a fresh allocation would use; otherwise moves (default alignment).
    // On OOM the value is nullptr and ptr stays valid. An invalid ptr is an
    // error and nothing changes.
    lib::Expected<void*, HeapError> reallocate(void* ptr, size_t new_size);
    // nullptr is accepted and does nothing.
    lib::Expected<void, HeapError> free(void* ptr);
    // Bytes the caller may use at ptr (the requested size for debug medium
    // blocks, whose red zone starts right after). For slab objects the owner is
    // validated but not whether the object is currently allocated.
    lib::Expected<size_t, HeapError> usable_size(const void* ptr) const;
    // The layer that owns ptr (same validation as usable_size).
    lib::Expected<HeapLayer, HeapError> layer_of(const void* ptr) const;

    // ObjectCacheHost: typed caches. attach init()s the cache over the heap's
    // pages and registers it (stats, shrink, corruption reports).
    lib::Expected<void, HeapError> attach_cache(SlabCache& cache, const SlabCacheConfig& config) override;
    lib::Expected<void, HeapError> detach_cache(SlabCache& cache) override;
    void* cache_allocate(SlabCache& cache) override;
    lib::Expected<void, HeapError> cache_free(SlabCache& cache, void* ptr) override;
    lib::Expected<void, HeapError> cache_validate(SlabCache& cache, const void* ptr) override;

    // Memory pressure.
    lib::Expected<void, HeapError> register_reclaimer(HeapReclaimFn fn, void* context);
    lib::Expected<void, HeapError> unregister_reclaimer(HeapReclaimFn fn, void* context);
    void set_watermarks(uint64_t low_pages, uint64_t min_pages);
    // Runs the reclaimers, then shrink(). Returns the bytes shrink() gave back.
    size_t reclaim(size_t pages_wanted = 0);
    // Gives every empty slab and empty chunk back to the PageSource.
    size_t shrink();

    void set_oom_handler(HeapOomFn fn, void* context)
    {
        m_config.on_oom = fn;
        m_config.oom_context = context;
    }
    void set_corruption_handler(HeapCorruptionFn fn, void* context)
    {
        m_config.on_corruption = fn;
        m_config.corruption_context = context;
    }

    // Fault injection for tests: the n-th allocation from now (allocate,
    // allocate_zeroed, a moving reallocate, cache_allocate) fails. 0 disables.
    void fail_nth_allocation(uint64_t n) { m_fail_countdown = n; }

    // Everything, HeapConfig::source_stats included (it runs with the caller's lock held).
    void stats(HeapStats& out) const;
    // Everything but `source`, so a caller can fill that without holding its heap lock.
    void stats_without_source(HeapStats& out) const;
    HeapStats stats() const
    {
        HeapStats s;
        stats(s);
        return s;
    }
    // The whole walk: every cache, chunk (and its buddy), tag and counter.
    HeapCheckReport check_invariants() const;
    // A cheap check after touching one pointer: its page tags and run, its owner (the slab's
    // SlabCache::check_slab_of; the chunk's header, list and BuddyAllocator::check_local, and
    // with debug checks the block's red zones or free poison; a large block's tags) and the
    // counters that need no walk. Any pointer is fine: outside the window only the counters.
    HeapCheckReport check_local(const void* ptr) const;

    bool debug_enabled() const { return m_debug; }
    uint64_t pages_held() const { return m_counters.pages_held; }
    uint64_t bytes_used() const { return m_counters.bytes_used; }
    // Life counters of stats() without its snapshot (which copies every cache row), for checks
    // after every operation.
    uint64_t failed_allocations() const { return m_counters.failed_allocations; }
    uint64_t injected_failures() const { return m_counters.injected_failures; }
    uint64_t watermark_refusals() const { return m_counters.watermark_refusals; }
    uint64_t source_failures() const { return m_counters.source_failures; }
    size_t chunk_bytes() const { return kHeapPageSize << m_config.chunk_order; }
    size_t medium_max_block() const { return m_config.medium_max_block; }
    const SlabCache& size_class_cache(unsigned index) const { return m_classes[index]; }

private:
    friend struct HeapTestAccess; // lets unit tests corrupt state on purpose

    // Tag byte encoding (see the header comment).
    static constexpr uint8_t kTagNone = 0x00;
    static constexpr uint8_t kTagReleased = 0x01;
    static constexpr uint8_t kKindShift = 5;
    static constexpr uint8_t kOrderMask = 0x1f;
    enum class TagKind : uint8_t { None = 0, Slab = 1, ChunkMeta = 2, Chunk = 3, LargeHead = 4, LargeTail = 5 };
    static constexpr uint8_t make_tag(TagKind kind, unsigned order)
    {
        return static_cast<uint8_t>((static_cast<unsigned>(kind) << kKindShift) | (order & kOrderMask));
    }
    static constexpr TagKind tag_kind(uint8_t tag) { return static_cast<TagKind>(tag >> kKindShift); }
    static constexpr unsigned tag_order(uint8_t tag) { return tag & kOrderMask; }

    static constexpr uint64_t kChunkMagic = 0x4b4e5548434e414dull; // "MANCHUNK"
    static constexpr uint16_t kMediumMagic = 0xa11c;
    static constexpr size_t kMediumLeftZone = 16;
    static constexpr size_t kMediumRightZone = 16;
    static constexpr uint8_t kListEmpty = 0xff;
    static constexpr uint8_t kListFull = 0xfe;

    struct Chunk {
        uint64_t magic;
        Heap* owner;
        lib::IntrusiveListNode<Chunk> link;
        uint8_t list; // bucket = largest free order, or kListFull / kListEmpty
        BuddyAllocator buddy;
    };

    using ChunkList = lib::IntrusiveList<Chunk, &Chunk::link>;

    // Debug header at the start of a medium block.
    struct MediumHeader {
        uint16_t magic;
        uint16_t left; // L: object offset in the block
        uint32_t requested;
    };
    static_assert(sizeof(MediumHeader) == 8);

    // The PageSource the slab caches see: tags and counts their pages.
    class SlabPages final : public PageSource {
    public:
        explicit SlabPages(Heap& heap) : m_heap(heap) { }
        void* allocate_pages(unsigned order) override;
        void free_pages(void* p, unsigned order) override;

    private:
        Heap& m_heap;
    };

    struct Reclaimer {
        HeapReclaimFn fn = nullptr;
        void* context = nullptr;
    };

    struct Request {
        HeapLayer layer;
        unsigned index; // small: class; medium: buddy order; large: page order
        size_t size;
        size_t alignment;
    };

    // The front door (heap.cpp).
    lib::Expected<void, HeapError> validate_config() const;
    lib::Expected<Request, HeapError> classify(size_t size, size_t alignment) const;
    void* allocate_request(const Request& request);
    bool inject_failure();
    void finish_allocation(void* ptr, size_t usable);
    void after_success();
    void fail_allocation(const Request& request, const char* cache_name);

    // Pages, tags, large blocks and pressure (heap_pages.cpp).
    bool in_window(uintptr_t address) const { return address - m_config.window_base < m_config.window_bytes; }
    uint8_t tag_at(uintptr_t address) const { return m_config.tags[(address - m_config.window_base) >> 12]; }
    lib::Expected<uint8_t, HeapError> live_tag(const void* ptr) const;
    void set_tags(uintptr_t address, size_t pages, uint8_t tag);
    void* take_pages(unsigned order);
    void give_pages(void* pages, unsigned order);

    // Small objects and typed caches (heap_small.cpp).
    bool is_size_class(const SlabCache* cache) const;
    int object_cache_index(const SlabCache* cache) const;
    lib::Expected<SlabCache*, HeapError> slab_owner(const void* ptr, uint8_t tag) const;
    static HeapError from_slab(SlabError error);

    // Medium (heap_medium.cpp).
    unsigned medium_order_for(size_t bytes) const;
    Chunk* create_chunk();
    void release_chunk(Chunk* chunk);
    void list_push(Chunk* chunk, uint8_t list);
    void list_remove(Chunk* chunk);
    ChunkList& list_for(uint8_t list);
    void rebucket(Chunk* chunk);
    void* allocate_medium(unsigned order, size_t size, size_t alignment);
    Chunk* chunk_of(const void* ptr) const;
    struct MediumBlock {
        Chunk* chunk;
        uintptr_t block;
        unsigned order;
        size_t block_size;
    };
    lib::Expected<MediumBlock, HeapError> find_medium(const void* ptr) const;
    bool medium_header_ok(const MediumBlock& block, const MediumHeader& header) const;
    size_t medium_capacity(const MediumBlock& block) const;
    size_t medium_requested(const MediumBlock& block) const;
    bool check_medium_zones(const MediumBlock& block, const void* object, SlabCheckPoint point);
    bool check_medium_poison(const Chunk* chunk, uintptr_t begin, uintptr_t end, uintptr_t block, unsigned order,
                             MediumCorruptionReport* report) const;
    void fill_medium_debug(uintptr_t block, size_t block_size, size_t left, size_t requested);
    lib::Expected<void, HeapError> free_medium(void* ptr);
    uint8_t bucket_of(const Chunk* chunk) const;

    // Large (heap_pages.cpp).
    void* allocate_large(unsigned order);
    lib::Expected<void, HeapError> free_large(void* ptr, uint8_t tag);

    // Checks (heap_check.cpp), reports (heap_reports.cpp), statistics (heap_stats.cpp).
    static void note_violation(HeapCheckReport& report, HeapViolation kind, uintptr_t address);
    void deliver(const HeapCorruption& corruption);
    static void on_slab_report(void* context, const SlabCorruptionReport& report);
    HeapCacheRow cache_row(const SlabCache& cache, bool typed) const;
    void count_invalid_free() { ++m_counters.invalid_frees; }

    PageSource& m_source;
    HeapConfig m_config;
    SlabPages m_slab_pages;
    HeapError m_init_error = HeapError::NotInitialized;
    bool m_ready = false;
    bool m_debug = false;
    bool m_reclaiming = false;
    bool m_pressure = false;

    SlabCache m_classes[kSizeClassCount];
    SlabCache* m_object_caches[kHeapMaxObjectCaches] = {};
    size_t m_object_cache_count = 0;
    Reclaimer m_reclaimers[kHeapMaxReclaimers];
    size_t m_reclaimer_count = 0;

    // Medium.
    size_t m_chunk_meta_bytes = 0; // page-rounded header + buddy metadata at the chunk start
    ChunkList m_buckets[kBuddyMaxOrders];
    uint64_t m_bucket_mask = 0; // bit k: m_buckets[k] non-empty
    ChunkList m_full;
    ChunkList m_empty;
    unsigned m_medium_orders = 0;
    unsigned m_medium_min_shift = 0;

    HeapCounters m_counters;
    uint64_t m_fail_countdown = 0;

    HeapStats m_oom_stats; // the OOM report's snapshot: no stack for 4 KiB there
};

// A named slab cache of T, for kernel objects that must not go through the
// general heap (thread control blocks, wait-queue nodes, ...). Constant
// initialised, so it can be a global; init() attaches it to a host (the kernel:
// mm::kernel_object_cache_host(), which adds the heap lock).
template <typename T>
class ObjectCache {
public:
    constexpr ObjectCache() = default;
    ObjectCache(const ObjectCache&) = delete;
    ObjectCache& operator=(const ObjectCache&) = delete;

    // `name` is copied. Objects are aligned to max(alignof(T), 16).
    [[nodiscard]] lib::Expected<void, HeapError>
    init(ObjectCacheHost& host, const char* name, SlabDebug debug = SlabDebug::Default, unsigned max_empty_slabs = 1)
    {
        SlabCacheConfig config;
        config.name = name;
        config.object_size = sizeof(T);
        config.alignment = lib::max<size_t>(alignof(T), kHeapSmallAlignment);
        config.debug = debug;
        config.max_empty_slabs = max_empty_slabs;
        auto result = host.attach_cache(m_cache, config);
        if (result)
            m_host = &host;
        return result;
    }
    // Detaches from the host; fails with NotEmpty while objects are alive.
    lib::Expected<void, HeapError> destroy_cache()
    {
        if (m_host == nullptr)
            return lib::unexpected(HeapError::NotInitialized);
        auto result = m_host->detach_cache(m_cache);
        if (result)
            m_host = nullptr;
        return result;
    }

    // Raw storage for one T, or nullptr.
    void* allocate() { return m_host != nullptr ? m_host->cache_allocate(m_cache) : nullptr; }
    lib::Expected<void, HeapError> free(void* ptr)
    {
        if (ptr == nullptr)
            return {};
        if (m_host == nullptr)
            return lib::unexpected(HeapError::NotInitialized);
        return m_host->cache_free(m_cache, ptr);
    }

    // A constructed T, or nullptr when memory ran out.
    template <typename... Args>
    T* create(Args&&... args)
    {
        void* storage = allocate();
        return storage != nullptr ? new (storage) T(lib::forward<Args>(args)...) : nullptr;
    }
    // Runs ~T and frees. A pointer of another cache (or none) is rejected
    // before the destructor runs; an interior pointer or a double free is
    // reported by the free after it.
    lib::Expected<void, HeapError> destroy(T* object)
    {
        if (object == nullptr)
            return {};
        if (m_host == nullptr)
            return lib::unexpected(HeapError::NotInitialized);
        if (auto valid = m_host->cache_validate(m_cache, object); !valid)
            return valid;
        object->~T();
        return m_host->cache_free(m_cache, object);
    }

    bool initialized() const { return m_host != nullptr; }
    // Unlocked access: statistics belong in the host's snapshot (Heap::stats).
    const SlabCache& cache() const { return m_cache; }

private:
    SlabCache m_cache;
    ObjectCacheHost* m_host = nullptr;
};

} // namespace mm
