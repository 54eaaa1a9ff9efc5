#pragma once
// mm::SlabCache: a cache of equally sized objects carved out of slabs.
//
// Generic code: no globals, no locks, no arch headers. Memory comes from a
// caller-supplied PageSource; the caller (kmalloc layer, typed caches)
// serialises access with its own lock. The same code runs in host tests.
//
// ## Slab layout
// A slab is 2^order pages, naturally aligned to its size, so the header of the
// slab holding any object is at `ptr & ~(slab_bytes - 1)` (O(1), no lookup):
//
//   slab start                                                       slab end
//   | SlabHeader | bitmap | pad | slot 0 | slot 1 | ... | slot n-1 | tail |
//
//   SlabHeader (48 bytes): magic, owning cache, free-list head, in-use count,
//   list links. The allocation bitmap follows it: bit i (word i / 64, bit
//   i % 64, LSB first) is 1 exactly when object i is allocated. It is what makes
//   a double free detectable in O(1). Slots start at the header size rounded up
//   to the object alignment.
//
//   Slot without debug checks: | object (slot_size bytes, >= 8) |
//   Slot with debug checks:    | left red zone | object | right red zone |
//     left  = align_up(16, alignment) bytes of 0xcc,
//     right = at least 16 bytes of 0xcc, up to the next aligned slot.
//
// Free objects sit on a per-slab intrusive singly linked list. The list holds
// object addresses; the link word lives at the slot start: in the object's first
// 8 bytes without debug checks, in the first 8 bytes of the left red zone with
// them, so that a freed object can be poisoned (0x6b) in full.
//
// The slab size is the smallest order in [0, kMaxSlabOrder] whose waste (header
// + tail) is at most 1/8 of the slab and that holds at least 8 objects; failing
// that, the order with the least waste. A config can force an order instead,
// e.g. so that every kmalloc slab has one size and cache_of() can find a cache.
//
// ## Slab lists
// One slab is "current": allocations pop from its free list (the fast path).
// Every other slab is on exactly one list, chosen by its in-use count:
// full (in_use == capacity), partial (0 < in_use < capacity) or empty (0). When
// the current slab runs out it moves to the full list and the next current is
// taken from the partial list, else the empty list, else the PageSource. A slab
// that becomes empty goes on the empty list while it holds fewer than
// max_empty_slabs slabs, and back to the PageSource otherwise; the current slab
// is kept even when empty, so an alloc/free ping-pong never touches the
// PageSource. shrink() releases every empty slab, the current one included.
//
// ## Costs
// allocate(): O(1), no loops: pop, one bitmap bit, counters. free(): O(1) with
// full validation (slab magic and owner, object boundary via a multiply-high
// reciprocal instead of a division, bitmap bit). Slab creation is
// O(objects per slab). With debug checks off the only extra cost is one
// predictable branch on a flag, and nothing at all where they are compiled out
// (release kernels). With them on, allocate() and free() take out-of-line paths
// that check and rewrite the object's bytes: O(object size).
//
// ## Errors and corruption
// A rejected free changes nothing: no counter, no list, no byte of memory.
// Corruption found by the debug checks (poison, red zones, free-list links) is
// different: it is delivered to the report callback (the kernel panics there),
// counted, repaired where possible, and the operation then completes.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "lib/format.h"
#include "lib/intrusive_list.h"
#include "mm/page_source.h"

namespace mm {

// Debug defaults: caches check poison and red zones by default in debug and
// test builds. The checks are compiled in for debug kernels and host builds
// (so tests can force them per cache); release kernels drop them entirely.
#if defined(AETHELOS_DEBUG_CHECKS) && AETHELOS_DEBUG_CHECKS
inline constexpr bool kSlabDebugDefault = true;
#else
inline constexpr bool kSlabDebugDefault = false;
#endif
// AETHELOS_SLAB_DEBUG_AVAILABLE=0/1 overrides (e.g. 0 for a host benchmark).
#if defined(AETHELOS_SLAB_DEBUG_AVAILABLE)
inline constexpr bool kSlabDebugAvailable = AETHELOS_SLAB_DEBUG_AVAILABLE;
#elif (defined(AETHELOS_DEBUG_CHECKS) && AETHELOS_DEBUG_CHECKS) || !defined(__AETHELOS_KERNEL__)
inline constexpr bool kSlabDebugAvailable = true;
#else
inline constexpr bool kSlabDebugAvailable = false;
#endif

inline constexpr uint8_t kSlabPoisonByte = 0x6b;  // freed object bytes
inline constexpr uint8_t kSlabRedZoneByte = 0xcc; // red zones around objects

enum class SlabError : uint8_t {
    InvalidConfig,  // init: object size 0 or too large, alignment not a power of two or too large, bad slab order
    ForeignPointer, // nullptr, or not inside a live slab (no slab magic at the slab-aligned base)
    WrongCache,     // inside a live slab of another cache
    NotObjectStart, // inside one of this cache's slabs, but not an object's first byte (header, interior, red zone, tail)
    DoubleFree,     // the start of an object that is currently free
    NotEmpty,       // release_all: objects are still allocated; init: the cache still holds slabs
};

const char* to_string(SlabError error);

enum class SlabDebug : uint8_t {
    Default, // kSlabDebugDefault
    On,      // poisoning and red zones (off when compiled out: kSlabDebugAvailable == false)
    Off,
};

struct SlabCacheConfig {
    const char* name = "slab"; // copied (truncated to SlabCache::kNameMax - 1 characters)
    size_t object_size = 0;    // bytes handed out per object (raised to 8 internally)
    size_t alignment = 8;      // power of two, at most SlabCache::kMaxAlignment (raised to 8)
    SlabDebug debug = SlabDebug::Default;
    unsigned slab_order = ~0u;    // force 2^order pages per slab; ~0u (SlabCache::kAutoOrder) picks one
    unsigned max_empty_slabs = 1; // empty slabs kept for reuse besides the current one
};

// Where a debug check found the damage.
enum class SlabCorruption : uint8_t {
    Poison,        // a free object's bytes are not all 0x6b: written after free
    RedZoneBefore, // the red zone before an object was overwritten (underflow)
    RedZoneAfter,  // the red zone after an object was overwritten (overflow)
    FreeListLink,  // a free object's link does not point to a free object of its slab
};

enum class SlabCheckPoint : uint8_t { Allocate, Free, Check };

const char* to_string(SlabCorruption kind);
const char* to_string(SlabCheckPoint point);

struct SlabCorruptionReport {
    static constexpr size_t kMaxFoundBytes = 16;

    const char* cache_name = nullptr; // the cache's own copy of its name
    const void* slab = nullptr;
    const void* object = nullptr;
    size_t object_size = 0;
    SlabCorruption kind = SlabCorruption::Poison;
    SlabCheckPoint detected_at = SlabCheckPoint::Allocate;
    int64_t offset = 0;      // first bad byte relative to the object start; negative: before it
    uint8_t expected = 0;    // 0x6b or 0xcc (0 for FreeListLink: a pointer was expected)
    uint8_t found_count = 0; // bytes in found[], from the first bad byte to at most the end of the zone
    uint8_t found[kMaxFoundBytes] = {};
};

// Text naming the cache, object, slab, offset, expected byte and bytes found.
void format_report(lib::FormatSink& sink, const SlabCorruptionReport& report);
// Same into buf[0..cap) (truncating, NUL-terminated); returns the untruncated length.
size_t format_report(const SlabCorruptionReport& report, char* buf, size_t cap);

using SlabReportFn = void (*)(void* context, const SlabCorruptionReport& report);

// A plain snapshot in the style of /proc/slabinfo.
struct SlabCacheStats {
    char name[32] = {};
    uint64_t object_size = 0;
    uint64_t slot_size = 0; // bytes per object in the slab, red zones included
    uint64_t alignment = 0;
    uint64_t objects_per_slab = 0;
    uint64_t pages_per_slab = 0;
    uint64_t slab_bytes = 0;
    uint64_t active_objects = 0;
    uint64_t total_objects = 0; // slabs_total * objects_per_slab
    uint64_t peak_active_objects = 0;
    uint64_t slabs_total = 0;
    uint64_t slabs_partial = 0; // the current slab counts by its fill level too
    uint64_t slabs_full = 0;
    uint64_t slabs_empty = 0;
    uint64_t bytes_total = 0;        // slabs_total * slab_bytes, i.e. what the PageSource gave
    uint64_t bytes_active = 0;       // active_objects * object_size
    uint64_t allocations = 0;        // successful
    uint64_t frees = 0;              // successful
    uint64_t failed_allocations = 0; // the PageSource had nothing
    uint64_t slabs_allocated = 0;    // taken from the PageSource over the cache's life
    uint64_t slabs_released = 0;     // given back
    uint64_t corruptions = 0;        // reports delivered
    bool debug = false;

    bool operator==(const SlabCacheStats&) const = default;
};

// One line: name, active/total objects, object/slot size, objects and pages per
// slab, slabs total/partial/full/empty, allocations/frees/failures.
void format_slabinfo(lib::FormatSink& sink, const SlabCacheStats& stats);
size_t format_slabinfo(const SlabCacheStats& stats, char* buf, size_t cap);

enum class SlabViolation : uint8_t {
    None,
    BadHeader,       // a listed slab without the magic / owner, or not aligned to its size
    ListCorrupt,     // prev link disagrees, a list is longer than the slab count (cycle), or a slab on two lists
    WrongList,       // a slab on a list that does not match its in-use count
    CountMismatch,   // list counters, slab count, in-use vs bitmap, or the object totals disagree
    FreeListCorrupt, // a free entry outside the slab, off a slot boundary, marked allocated, a cycle, or a wrong length
    StrayBitmapBit,  // an allocation bit beyond the last object
    PoisonDamaged,   // debug: a free object is not all 0x6b
    RedZoneDamaged,  // debug: a red zone is not all 0xcc
};

const char* to_string(SlabViolation violation);

struct SlabCheckReport {
    uint64_t violations = 0;
    uint32_t kinds = 0; // bit (1 << SlabViolation) for every kind found
    SlabViolation first = SlabViolation::None;
    const void* first_slab = nullptr;
    const void* first_object = nullptr;
    // What the walk found.
    uint64_t slabs = 0;
    uint64_t active_objects = 0;
    uint64_t free_objects = 0;

    bool ok() const { return violations == 0; }
    bool has(SlabViolation violation) const { return (kinds >> static_cast<unsigned>(violation)) & 1; }
};

class SlabCache {
public:
    static constexpr unsigned kAutoOrder = ~0u;
    static constexpr unsigned kMaxSlabOrder = 8; // 1 MiB slabs
    static constexpr size_t kPageBytes = 4096;
    static constexpr size_t kMaxAlignment = 4096;
    static constexpr size_t kMinObjectsPerSlab = 8; // the automatic order aims for at least this many
    static constexpr size_t kNameMax = sizeof(SlabCacheStats::name);
    static constexpr uint64_t kSlabMagic = 0x4d414e41534c4142ull; // "BALSANAM": Mana Pool slab

    // Constant-initialised, so caches can be globals used before constructors run.
    constexpr SlabCache() = default;
    SlabCache(const SlabCache&) = delete;
    SlabCache& operator=(const SlabCache&) = delete;
    // Trivial: slabs are not released on destruction (call shrink() or
    // release_all() first); no __cxa_atexit needed for global caches.
    ~SlabCache() = default;

    // Computes the geometry. Only valid on a cache that holds no slabs (a fresh
    // one, or after release_all()); on error the cache is unchanged.
    [[nodiscard]] lib::Expected<void, SlabError> init(const SlabCacheConfig& config, PageSource& source);

    // An object of object_size() bytes aligned to alignment(), or nullptr when
    // the PageSource has no pages (counted as a failed allocation).
    void* allocate();

    // Returns an object to the cache. Rejected pointers leave everything as it
    // was. Precondition (cheap O(1) validation reads the slab header): ptr is
    // nullptr or points into mapped memory whose slab-aligned base is readable,
    // which holds for any pointer the kernel heap can be given.
    lib::Expected<void, SlabError> free(void* ptr);
    // The checks free() makes, changing nothing: success only for the start of an object of
    // this cache that is allocated now, else the error free() would return. Same precondition.
    lib::Expected<void, SlabError> validate(const void* ptr) const;

    // Releases every empty slab (memory pressure). Returns the bytes released.
    size_t shrink();
    // Releases all slabs if no object is allocated (else NotEmpty, nothing
    // changes); the cache stays usable and may be init()ed again.
    lib::Expected<void, SlabError> release_all();

    // Corruption reports go here; without a callback they are logged as errors.
    void set_report_callback(SlabReportFn callback, void* context)
    {
        m_report = callback;
        m_report_context = context;
    }

    SlabCacheStats stats() const;
    // Walks every slab, list and free list (and poison/red zones with debug
    // checks). O(slabs * objects per slab).
    SlabCheckReport check_invariants() const;
    // A cheap check after touching one object, O(objects per slab): the slab containing ptr
    // (header, bitmap, free list, zones, its list links and list) and the counters that need
    // no walk. Same precondition as free(); a pointer in no slab of this cache is BadHeader.
    SlabCheckReport check_slab_of(const void* ptr) const;

    // The cache owning the slab that contains ptr, for slabs of exactly
    // slab_bytes bytes; nullptr when no live slab header is there. Same
    // precondition as free().
    static SlabCache* cache_of(const void* ptr, size_t slab_bytes);

    bool initialized() const { return m_capacity != 0; }
    const char* name() const { return m_name; }
    size_t object_size() const { return m_object_size; }
    size_t slot_size() const { return m_slot_size; }
    size_t alignment() const { return m_alignment; }
    size_t slab_bytes() const { return m_slab_bytes; }
    unsigned slab_order() const { return m_order; }
    size_t objects_per_slab() const { return m_capacity; }
    bool debug_enabled() const { return debug_active(); }
    uint64_t active_objects() const { return m_active; }
    uint64_t slab_count() const { return m_slab_count; }

private:
    friend struct SlabCacheTestAccess; // lets unit tests corrupt state on purpose

    enum class ListId : uint8_t { None, Partial, Full, Empty };

    struct SlabHeader {
        uint64_t magic;
        SlabCache* cache;
        void* free_list; // first free object (object address), nullptr when full
        uint32_t in_use;
        ListId list; // None for the current slab
        uint8_t reserved[3];
        lib::IntrusiveListNode<SlabHeader> link;

        uint64_t* bitmap() { return reinterpret_cast<uint64_t*>(this + 1); }
        const uint64_t* bitmap() const { return reinterpret_cast<const uint64_t*>(this + 1); }
    };
    static_assert(sizeof(SlabHeader) == 48);

    using SlabList = lib::IntrusiveList<SlabHeader, &SlabHeader::link>;

    struct Geometry {
        size_t slot_size;
        size_t object_offset; // object start within its slot
        size_t slots_offset;  // first slot within the slab
        size_t capacity;
        unsigned bitmap_words;
    };

    bool debug_active() const { return kSlabDebugAvailable && m_debug; }

    struct Slot {
        SlabHeader* slab;
        uint64_t index;
    };
    // free()'s validation: where the allocated object starting at ptr lives.
    lib::Expected<Slot, SlabError> find_allocated(const void* ptr) const;

    static uint64_t mul_high(uint64_t a, uint64_t b)
    {
        return static_cast<uint64_t>((static_cast<unsigned __int128>(a) * b) >> 64);
    }
    // Object index from an offset relative to the first object; exact for
    // offsets below 2^32 (Lemire, Kaser & Kurz, "Faster remainder by direct
    // computation"), which every slab satisfies.
    uint64_t index_of_offset(uint64_t offset) const { return mul_high(offset, m_div_magic); }
    uint64_t object_offset_in_slab(const SlabHeader* slab, const void* object) const
    {
        return reinterpret_cast<uintptr_t>(object) - reinterpret_cast<uintptr_t>(slab) - m_first_object_offset;
    }
    uint8_t* object_at(SlabHeader* slab, uint64_t index) const
    {
        return reinterpret_cast<uint8_t*>(slab) + m_first_object_offset + index * m_slot_size;
    }
    void** link_of(void* object) const
    {
        return reinterpret_cast<void**>(static_cast<uint8_t*>(object) - m_object_offset);
    }

    static Geometry geometry_for(size_t slot_size, size_t object_offset, size_t alignment, unsigned order);

    void* allocate_slow();
    SlabHeader* refill();
    SlabHeader* grow();
    void* pop_debug(SlabHeader* slab);
    void free_debug(SlabHeader* slab, void* object);
    void on_slab_transition(SlabHeader* slab, uint32_t in_use);
    void retire_empty(SlabHeader* slab);
    void release_slab(SlabHeader* slab);
    SlabError classify_bad_header(const SlabHeader* slab) const;
    bool is_free_object(const SlabHeader* slab, const void* object) const;
    void rebuild_free_list(SlabHeader* slab);
    void report(SlabCorruption kind, SlabCheckPoint point, const SlabHeader* slab, const void* object,
                const uint8_t* bad, const uint8_t* zone_end, uint8_t expected);
    bool check_zone(SlabCorruption kind, SlabCheckPoint point, const SlabHeader* slab, const void* object,
                    const uint8_t* begin, const uint8_t* end, uint8_t expected);
    void fill_slot(uint8_t* object) const;

    static void list_push(SlabList& list, SlabHeader* slab, ListId id);
    static void list_remove(SlabList& list, SlabHeader* slab);
    static SlabHeader* list_pop(SlabList& list);

    void check_slab(const SlabHeader* slab, SlabCheckReport& report) const;

    // Hot: touched by every allocate()/free().
    SlabHeader* m_current = nullptr;
    uintptr_t m_slab_mask = 0;          // ~(slab_bytes - 1); 0 before init, so every free is rejected
    uint64_t m_div_magic = 0;           // ceil(2^64 / slot_size)
    uint64_t m_first_object_offset = 0; // slab start -> object 0
    uint64_t m_objects_span = 0;        // capacity * slot_size
    uint32_t m_capacity = 0;
    bool m_debug = false;
    uint64_t m_allocations = 0;
    uint64_t m_active = 0;
    uint64_t m_peak = 0;

    // Cold.
    PageSource* m_source = nullptr;
    SlabList m_partial;
    SlabList m_full;
    SlabList m_empty;
    uint64_t m_slab_count = 0;
    uint64_t m_failed = 0;
    uint64_t m_slabs_allocated = 0;
    uint64_t m_slabs_released = 0;
    uint64_t m_corruptions = 0;
    size_t m_object_size = 0;
    size_t m_slot_size = 0;
    size_t m_alignment = 0;
    size_t m_object_offset = 0; // object start within its slot (left red zone)
    size_t m_slots_offset = 0;
    size_t m_slab_bytes = 0;
    unsigned m_order = 0;
    unsigned m_bitmap_words = 0;
    unsigned m_max_empty = 1;
    SlabReportFn m_report = nullptr;
    void* m_report_context = nullptr;
    char m_name[kNameMax] = {};
};

// ---- Fast paths (inline so kmalloc pays no call for them) ----

inline void* SlabCache::allocate()
{
    SlabHeader* slab = m_current;
    if (slab != nullptr && !debug_active()) [[likely]] {
        void* object = slab->free_list;
        if (object != nullptr) [[likely]] {
            slab->free_list = *static_cast<void**>(object);
            ++slab->in_use;
            const uint64_t index = index_of_offset(object_offset_in_slab(slab, object));
            slab->bitmap()[index >> 6] |= uint64_t{1} << (index & 63);
            ++m_allocations;
            if (++m_active > m_peak)
                m_peak = m_active;
            return object;
        }
    }
    return allocate_slow();
}

inline lib::Expected<SlabCache::Slot, SlabError> SlabCache::find_allocated(const void* ptr) const
{
    const uintptr_t address = reinterpret_cast<uintptr_t>(ptr);
    auto* slab = reinterpret_cast<SlabHeader*>(address & m_slab_mask);
    if (slab == nullptr) [[unlikely]]
        return lib::unexpected(SlabError::ForeignPointer);
    if (((slab->magic ^ kSlabMagic) | (reinterpret_cast<uintptr_t>(slab->cache) ^ reinterpret_cast<uintptr_t>(this))) !=
        0) [[unlikely]]
        return lib::unexpected(classify_bad_header(slab));

    // Unsigned wrap-around turns a pointer into the header into a huge offset.
    const uint64_t offset = object_offset_in_slab(slab, ptr);
    if (offset >= m_objects_span || offset * m_div_magic >= m_div_magic) [[unlikely]]
        return lib::unexpected(SlabError::NotObjectStart);
    const uint64_t index = index_of_offset(offset);
    if ((slab->bitmap()[index >> 6] & (uint64_t{1} << (index & 63))) == 0) [[unlikely]]
        return lib::unexpected(SlabError::DoubleFree);
    return Slot{slab, index};
}

inline lib::Expected<void, SlabError> SlabCache::validate(const void* ptr) const
{
    auto slot = find_allocated(ptr);
    if (!slot)
        return lib::unexpected(slot.error());
    return {};
}

inline lib::Expected<void, SlabError> SlabCache::free(void* ptr)
{
    auto slot = find_allocated(ptr);
    if (!slot) [[unlikely]]
        return lib::unexpected(slot.error());
    SlabHeader* slab = slot->slab;
    uint64_t& word = slab->bitmap()[slot->index >> 6];
    const uint64_t bit = uint64_t{1} << (slot->index & 63);
    word &= ~bit;
    if (debug_active()) [[unlikely]]
        free_debug(slab, ptr); // checks red zones, poisons, links
    else
        *static_cast<void**>(ptr) = slab->free_list;
    slab->free_list = ptr;
    const uint32_t in_use = --slab->in_use;
    --m_active;
    // The current slab stays current whatever its fill; others may change list.
    if (slab != m_current) [[unlikely]] {
        if (in_use == 0 || in_use + 1 == m_capacity)
            on_slab_transition(slab, in_use);
    }
    return {};
}

} // namespace mm
