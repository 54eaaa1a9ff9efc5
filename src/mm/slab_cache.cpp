#include "mm/slab_cache.h"

#include <new>

#include "lib/log.h"
#include "lib/string.h"
#include "lib/utility.h"

namespace mm {

namespace {

constexpr size_t kLinkBytes = sizeof(void*);
constexpr size_t kMinRedZone = 16;

// SWAR popcount: the kernel is built without POPCNT, and this avoids libgcc.
unsigned popcount64(uint64_t value)
{
    value -= (value >> 1) & 0x5555555555555555ull;
    value = (value & 0x3333333333333333ull) + ((value >> 2) & 0x3333333333333333ull);
    value = (value + (value >> 4)) & 0x0f0f0f0f0f0f0f0full;
    return static_cast<unsigned>((value * 0x0101010101010101ull) >> 56);
}

} // namespace

const char* to_string(SlabError error)
{
    switch (error) {
    case SlabError::InvalidConfig: return "invalid slab cache configuration";
    case SlabError::ForeignPointer: return "pointer is not inside a live slab";
    case SlabError::WrongCache: return "pointer belongs to another slab cache";
    case SlabError::NotObjectStart: return "pointer is not the start of an object";
    case SlabError::DoubleFree: return "object is already free (double free)";
    case SlabError::NotEmpty: return "slab cache still has allocated objects";
    }
    return "unknown slab error";
}

const char* to_string(SlabCorruption kind)
{
    switch (kind) {
    case SlabCorruption::Poison: return "poison overwritten (write after free)";
    case SlabCorruption::RedZoneBefore: return "red zone before the object overwritten";
    case SlabCorruption::RedZoneAfter: return "red zone after the object overwritten";
    case SlabCorruption::FreeListLink: return "free-list link overwritten";
    }
    return "unknown corruption";
}

const char* to_string(SlabCheckPoint point)
{
    switch (point) {
    case SlabCheckPoint::Allocate: return "allocation";
    case SlabCheckPoint::Free: return "free";
    case SlabCheckPoint::Check: return "invariant check";
    }
    return "unknown";
}

const char* to_string(SlabViolation violation)
{
    switch (violation) {
    case SlabViolation::None: return "none";
    case SlabViolation::BadHeader: return "bad slab header";
    case SlabViolation::ListCorrupt: return "slab list corrupt";
    case SlabViolation::WrongList: return "slab on the wrong list";
    case SlabViolation::CountMismatch: return "count mismatch";
    case SlabViolation::FreeListCorrupt: return "free list corrupt";
    case SlabViolation::StrayBitmapBit: return "stray bitmap bit";
    case SlabViolation::PoisonDamaged: return "poison damaged";
    case SlabViolation::RedZoneDamaged: return "red zone damaged";
    }
    return "unknown violation";
}

void format_report(lib::FormatSink& sink, const SlabCorruptionReport& r)
{
    lib::format_to(sink, "Mana Pool: slab cache \"{}\": {} (detected at {}): object {:p} in slab {:p} ({}-byte object)",
                   r.cache_name, to_string(r.kind), to_string(r.detected_at), r.object, r.slab, r.object_size);
    if (r.kind == SlabCorruption::FreeListLink)
        lib::format_to(sink, ", link at offset {:+}: expected a free object of this slab or null, found", r.offset);
    else
        lib::format_to(sink, ", first bad byte at offset {:+}: expected {:#04x}, found", r.offset, r.expected);
    const size_t count =
        r.found_count < SlabCorruptionReport::kMaxFoundBytes ? r.found_count : SlabCorruptionReport::kMaxFoundBytes;
    for (size_t i = 0; i < count; ++i)
        lib::format_to(sink, " {:02x}", r.found[i]);
}

size_t format_report(const SlabCorruptionReport& report, char* buf, size_t cap)
{
    lib::BufferSink sink(buf, cap);
    format_report(sink, report);
    sink.terminate();
    return sink.length();
}

void format_slabinfo(lib::FormatSink& sink, const SlabCacheStats& s)
{
    lib::format_to(
        sink,
        "{:<20} active {}/{} objs, size {} slot {}, {} objs/slab {} pages/slab, slabs {} (partial {} full {} "
        "empty {}), allocs {} frees {} fails {}",
        s.name, s.active_objects, s.total_objects, s.object_size, s.slot_size, s.objects_per_slab, s.pages_per_slab,
        s.slabs_total, s.slabs_partial, s.slabs_full, s.slabs_empty, s.allocations, s.frees, s.failed_allocations);
}

size_t format_slabinfo(const SlabCacheStats& stats, char* buf, size_t cap)
{
    lib::BufferSink sink(buf, cap);
    format_slabinfo(sink, stats);
    sink.terminate();
    return sink.length();
}

// ---- Geometry ----

SlabCache::Geometry SlabCache::geometry_for(size_t slot_size, size_t object_offset, size_t alignment, unsigned order)
{
    const size_t slab_bytes = kPageBytes << order;
    size_t capacity = (slab_bytes - sizeof(SlabHeader)) / slot_size;
    size_t slots_offset = 0;
    // The bitmap and alignment padding eat into the first guess; each step
    // frees a slot, so this settles within a few (at most bitmap-size) steps.
    while (capacity > 0) {
        const size_t words = (capacity + 63) / 64;
        slots_offset = lib::align_up(sizeof(SlabHeader) + words * sizeof(uint64_t), alignment);
        if (slots_offset + capacity * slot_size <= slab_bytes)
            break;
        --capacity;
    }
    return Geometry{slot_size, object_offset, slots_offset, capacity, static_cast<unsigned>((capacity + 63) / 64)};
}

lib::Expected<void, SlabError> SlabCache::init(const SlabCacheConfig& config, PageSource& source)
{
    if (m_slab_count != 0)
        return lib::unexpected(SlabError::NotEmpty);
    const size_t max_slab = kPageBytes << kMaxSlabOrder;
    if (config.object_size == 0 || config.object_size > max_slab)
        return lib::unexpected(SlabError::InvalidConfig);
    if (!lib::is_power_of_two(config.alignment) || config.alignment > kMaxAlignment)
        return lib::unexpected(SlabError::InvalidConfig);
    if (config.slab_order != kAutoOrder && config.slab_order > kMaxSlabOrder)
        return lib::unexpected(SlabError::InvalidConfig);

    const size_t alignment = lib::max(config.alignment, kLinkBytes);
    const bool debug = kSlabDebugAvailable &&
        (config.debug == SlabDebug::On || (config.debug == SlabDebug::Default && kSlabDebugDefault));
    size_t object_offset = 0;
    size_t slot_size;
    if (debug) {
        object_offset = lib::align_up(kLinkBytes + 8, alignment); // link + at least 8 red-zone bytes
        slot_size = lib::align_up(object_offset + config.object_size + kMinRedZone, alignment);
    } else {
        slot_size = lib::align_up(lib::max(config.object_size, kLinkBytes), alignment);
    }

    Geometry geometry{};
    unsigned order = 0;
    if (config.slab_order != kAutoOrder) {
        order = config.slab_order;
        geometry = geometry_for(slot_size, object_offset, alignment, order);
    } else {
        // Smallest order with waste <= 1/8 and enough objects; else least waste.
        bool chosen = false;
        uint64_t best_waste_num = 1, best_waste_den = 0; // best waste fraction so far (none yet)
        for (unsigned o = 0; o <= kMaxSlabOrder; ++o) {
            const Geometry g = geometry_for(slot_size, object_offset, alignment, o);
            if (g.capacity == 0)
                continue;
            const uint64_t slab_bytes = kPageBytes << o;
            const uint64_t waste = slab_bytes - g.capacity * slot_size;
            if (waste * 8 <= slab_bytes && g.capacity >= kMinObjectsPerSlab) {
                geometry = g;
                order = o;
                chosen = true;
                break;
            }
            // waste / slab_bytes < best: compare cross-multiplied (no floating point in the kernel).
            if (best_waste_den == 0 || waste * best_waste_den < best_waste_num * slab_bytes) {
                best_waste_num = waste;
                best_waste_den = slab_bytes;
                geometry = g;
                order = o;
            }
        }
        if (!chosen && best_waste_den == 0)
            geometry.capacity = 0;
    }
    if (geometry.capacity == 0)
        return lib::unexpected(SlabError::InvalidConfig);

    m_current = nullptr;
    m_slab_bytes = kPageBytes << order;
    m_slab_mask = ~static_cast<uintptr_t>(m_slab_bytes - 1);
    m_div_magic = UINT64_MAX / slot_size + 1;
    m_first_object_offset = geometry.slots_offset + object_offset;
    m_objects_span = static_cast<uint64_t>(geometry.capacity) * slot_size;
    m_capacity = static_cast<uint32_t>(geometry.capacity);
    m_debug = debug;
    m_allocations = 0;
    m_active = 0;
    m_peak = 0;
    m_source = &source;
    m_partial.reset();
    m_full.reset();
    m_empty.reset();
    m_slab_count = 0;
    m_failed = 0;
    m_slabs_allocated = 0;
    m_slabs_released = 0;
    m_corruptions = 0;
    m_object_size = config.object_size;
    m_slot_size = slot_size;
    m_alignment = alignment;
    m_object_offset = object_offset;
    m_slots_offset = geometry.slots_offset;
    m_order = order;
    m_bitmap_words = geometry.bitmap_words;
    m_max_empty = config.max_empty_slabs;
    lib::copy_string(m_name, kNameMax, config.name ? config.name : "slab");
    return {};
}

// ---- Slab lists ----

void SlabCache::list_push(SlabList& list, SlabHeader* slab, ListId id)
{
    slab->list = id;
    list.push_front(*slab);
}

void SlabCache::list_remove(SlabList& list, SlabHeader* slab)
{
    list.remove(*slab);
    slab->list = ListId::None;
}

SlabCache::SlabHeader* SlabCache::list_pop(SlabList& list)
{
    SlabHeader* slab = list.pop_front();
    if (slab != nullptr)
        slab->list = ListId::None;
    return slab;
}

// ---- Slow paths ----

void SlabCache::fill_slot(uint8_t* object) const
{
    uint8_t* slot = object - m_object_offset;
    __builtin_memset(slot, kSlabRedZoneByte, m_object_offset);
    __builtin_memset(object, kSlabPoisonByte, m_object_size);
    __builtin_memset(object + m_object_size, kSlabRedZoneByte, m_slot_size - m_object_offset - m_object_size);
}

SlabCache::SlabHeader* SlabCache::grow()
{
    if (m_source == nullptr)
        return nullptr;
    void* pages = m_source->allocate_pages(m_order);
    if (pages == nullptr)
        return nullptr;
    if ((reinterpret_cast<uintptr_t>(pages) & (m_slab_bytes - 1)) != 0) {
        // The PageSource broke its alignment contract; the header could not be found.
        m_source->free_pages(pages, m_order);
        return nullptr;
    }
    auto* slab = new (pages) SlabHeader{kSlabMagic, this, nullptr, 0, ListId::None, {}, {}};
    __builtin_memset(slab->bitmap(), 0, m_bitmap_words * sizeof(uint64_t));
    // Lowest addresses first, so a fresh slab is handed out in address order.
    void* head = nullptr;
    for (uint64_t i = m_capacity; i-- > 0;) {
        uint8_t* object = object_at(slab, i);
        if (debug_active())
            fill_slot(object);
        *link_of(object) = head;
        head = object;
    }
    slab->free_list = head;
    ++m_slab_count;
    ++m_slabs_allocated;
    return slab;
}

SlabCache::SlabHeader* SlabCache::refill()
{
    if (m_current != nullptr) {
        // The current slab has no free object: it is full.
        list_push(m_full, m_current, ListId::Full);
        m_current = nullptr;
    }
    SlabHeader* slab = list_pop(m_partial);
    if (slab == nullptr)
        slab = list_pop(m_empty);
    if (slab == nullptr)
        slab = grow();
    m_current = slab;
    return slab;
}

void* SlabCache::allocate_slow()
{
    SlabHeader* slab = m_current;
    if (slab == nullptr || slab->free_list == nullptr) {
        slab = refill();
        if (slab == nullptr) {
            ++m_failed;
            return nullptr;
        }
    }
    void* object;
    if (debug_active()) {
        object = pop_debug(slab);
    } else {
        object = slab->free_list;
        slab->free_list = *static_cast<void**>(object);
    }
    ++slab->in_use;
    const uint64_t index = index_of_offset(object_offset_in_slab(slab, object));
    slab->bitmap()[index >> 6] |= uint64_t{1} << (index & 63);
    ++m_allocations;
    if (++m_active > m_peak)
        m_peak = m_active;
    return object;
}

bool SlabCache::is_free_object(const SlabHeader* slab, const void* object) const
{
    const uint64_t offset = object_offset_in_slab(slab, object);
    if (offset >= m_objects_span || offset * m_div_magic >= m_div_magic)
        return false;
    const uint64_t index = index_of_offset(offset);
    return ((slab->bitmap()[index >> 6] >> (index & 63)) & 1) == 0;
}

void SlabCache::rebuild_free_list(SlabHeader* slab)
{
    void* head = nullptr;
    for (uint64_t i = m_capacity; i-- > 0;) {
        if ((slab->bitmap()[i >> 6] >> (i & 63)) & 1)
            continue;
        uint8_t* object = object_at(slab, i);
        *link_of(object) = head;
        head = object;
    }
    slab->free_list = head;
}

void SlabCache::report(SlabCorruption kind, SlabCheckPoint point, const SlabHeader* slab, const void* object,
                       const uint8_t* bad, const uint8_t* zone_end, uint8_t expected)
{
    SlabCorruptionReport r;
    r.cache_name = m_name;
    r.slab = slab;
    r.object = object;
    r.object_size = m_object_size;
    r.kind = kind;
    r.detected_at = point;
    r.offset = object != nullptr
        ? static_cast<int64_t>(reinterpret_cast<uintptr_t>(bad) - reinterpret_cast<uintptr_t>(object))
        : 0;
    r.expected = expected;
    const size_t available = static_cast<size_t>(zone_end - bad);
    r.found_count = static_cast<uint8_t>(lib::min(available, SlabCorruptionReport::kMaxFoundBytes));
    __builtin_memcpy(r.found, bad, r.found_count);
    ++m_corruptions;
    if (m_report != nullptr) {
        m_report(m_report_context, r);
    } else {
        char text[320];
        format_report(r, text, sizeof(text));
        lib::log::error("{}", text);
    }
}

bool SlabCache::check_zone(SlabCorruption kind, SlabCheckPoint point, const SlabHeader* slab, const void* object,
                           const uint8_t* begin, const uint8_t* end, uint8_t expected)
{
    const uint8_t* bad = lib::find_mismatch(begin, end, expected);
    if (bad == end)
        return true;
    report(kind, point, slab, object, bad, end, expected);
    return false;
}

// Debug pop: validate the head and its link before trusting them, check the
// poison and red zones, and only then take the object. Reports come before any
// state changes, so a callback that unwinds (host panic) leaves the cache sound.
void* SlabCache::pop_debug(SlabHeader* slab)
{
    void* object = slab->free_list;
    if (!is_free_object(slab, object)) {
        // Only header damage gets here: every link was validated when popped.
        const auto* field = reinterpret_cast<const uint8_t*>(&slab->free_list);
        report(SlabCorruption::FreeListLink, SlabCheckPoint::Allocate, slab, nullptr, field, field + kLinkBytes, 0);
        rebuild_free_list(slab);
        object = slab->free_list;
    }
    void* next = *link_of(object);
    if (next == object || (next != nullptr && !is_free_object(slab, next))) {
        const auto* link = reinterpret_cast<const uint8_t*>(link_of(object));
        report(SlabCorruption::FreeListLink, SlabCheckPoint::Allocate, slab, object, link, link + kLinkBytes, 0);
        rebuild_free_list(slab);
        object = slab->free_list;
        next = *link_of(object);
    }

    auto* bytes = static_cast<uint8_t*>(object);
    uint8_t* slot = bytes - m_object_offset;
    bool clean = check_zone(SlabCorruption::RedZoneBefore, SlabCheckPoint::Allocate, slab, object, slot + kLinkBytes,
                            bytes, kSlabRedZoneByte);
    clean &= check_zone(SlabCorruption::Poison, SlabCheckPoint::Allocate, slab, object, bytes, bytes + m_object_size,
                        kSlabPoisonByte);
    clean &= check_zone(SlabCorruption::RedZoneAfter, SlabCheckPoint::Allocate, slab, object, bytes + m_object_size,
                        slot + m_slot_size, kSlabRedZoneByte);

    slab->free_list = next;
    if (clean)
        __builtin_memset(slot, kSlabRedZoneByte, kLinkBytes); // the link becomes red zone again
    else
        fill_slot(bytes);
    return object;
}

void SlabCache::free_debug(SlabHeader* slab, void* object)
{
    auto* bytes = static_cast<uint8_t*>(object);
    uint8_t* slot = bytes - m_object_offset;
    check_zone(SlabCorruption::RedZoneBefore, SlabCheckPoint::Free, slab, object, slot, bytes, kSlabRedZoneByte);
    check_zone(SlabCorruption::RedZoneAfter, SlabCheckPoint::Free, slab, object, bytes + m_object_size,
               slot + m_slot_size, kSlabRedZoneByte);
    fill_slot(bytes); // poison the object, repair any damaged red zone
    *link_of(object) = slab->free_list;
}

void SlabCache::release_slab(SlabHeader* slab)
{
    slab->magic = 0; // stale pointers into released memory now read as foreign
    slab->cache = nullptr;
    m_source->free_pages(slab, m_order);
    --m_slab_count;
    ++m_slabs_released;
}

void SlabCache::retire_empty(SlabHeader* slab)
{
    if (m_empty.size() < m_max_empty)
        list_push(m_empty, slab, ListId::Empty);
    else
        release_slab(slab);
}

void SlabCache::on_slab_transition(SlabHeader* slab, uint32_t in_use)
{
    if (in_use + 1 == m_capacity) {
        // Was full. (With one object per slab it is now empty as well.)
        list_remove(m_full, slab);
        if (in_use != 0) {
            list_push(m_partial, slab, ListId::Partial);
            return;
        }
    } else {
        list_remove(m_partial, slab);
    }
    retire_empty(slab);
}

SlabError SlabCache::classify_bad_header(const SlabHeader* slab) const
{
    // Released slabs lose their magic, so a live magic means another cache's slab.
    return slab->magic == kSlabMagic ? SlabError::WrongCache : SlabError::ForeignPointer;
}

size_t SlabCache::shrink()
{
    size_t released = 0;
    while (SlabHeader* slab = list_pop(m_empty)) {
        release_slab(slab);
        released += m_slab_bytes;
    }
    if (m_current != nullptr && m_current->in_use == 0) {
        release_slab(m_current);
        m_current = nullptr;
        released += m_slab_bytes;
    }
    return released;
}

lib::Expected<void, SlabError> SlabCache::release_all()
{
    if (m_active != 0)
        return lib::unexpected(SlabError::NotEmpty);
    shrink();
    return {};
}

SlabCache* SlabCache::cache_of(const void* ptr, size_t slab_bytes)
{
    if (!lib::is_power_of_two(slab_bytes))
        return nullptr;
    const auto* slab =
        reinterpret_cast<const SlabHeader*>(reinterpret_cast<uintptr_t>(ptr) & ~static_cast<uintptr_t>(slab_bytes - 1));
    if (slab == nullptr || slab->magic != kSlabMagic)
        return nullptr;
    return slab->cache->m_slab_bytes == slab_bytes ? slab->cache : nullptr;
}

// ---- Statistics and checks ----

SlabCacheStats SlabCache::stats() const
{
    SlabCacheStats s;
    lib::copy_string(s.name, sizeof(s.name), m_name);
    s.object_size = m_object_size;
    s.slot_size = m_slot_size;
    s.alignment = m_alignment;
    s.objects_per_slab = m_capacity;
    s.pages_per_slab = m_slab_bytes / kPageBytes;
    s.slab_bytes = m_slab_bytes;
    s.active_objects = m_active;
    s.total_objects = m_slab_count * m_capacity;
    s.peak_active_objects = m_peak;
    s.slabs_total = m_slab_count;
    s.slabs_partial = m_partial.size();
    s.slabs_full = m_full.size();
    s.slabs_empty = m_empty.size();
    if (m_current != nullptr) {
        if (m_current->in_use == 0)
            ++s.slabs_empty;
        else if (m_current->in_use == m_capacity)
            ++s.slabs_full;
        else
            ++s.slabs_partial;
    }
    s.bytes_total = m_slab_count * m_slab_bytes;
    s.bytes_active = m_active * m_object_size;
    s.allocations = m_allocations;
    s.frees = m_allocations - m_active;
    s.failed_allocations = m_failed;
    s.slabs_allocated = m_slabs_allocated;
    s.slabs_released = m_slabs_released;
    s.corruptions = m_corruptions;
    s.debug = debug_active();
    return s;
}

namespace {

void note(SlabCheckReport& report, SlabViolation violation, const void* slab, const void* object = nullptr)
{
    if (report.violations == 0) {
        report.first = violation;
        report.first_slab = slab;
        report.first_object = object;
    }
    ++report.violations;
    report.kinds |= 1u << static_cast<unsigned>(violation);
}

bool zone_intact(const uint8_t* begin, const uint8_t* end, uint8_t byte)
{
    return lib::find_mismatch(begin, end, byte) == end;
}

} // namespace

void SlabCache::check_slab(const SlabHeader* slab, SlabCheckReport& report) const
{
    // Bitmap: population equals in_use; nothing beyond the last object.
    uint64_t allocated = 0;
    for (unsigned w = 0; w < m_bitmap_words; ++w) {
        uint64_t word = slab->bitmap()[w];
        const uint64_t first_bit = static_cast<uint64_t>(w) * 64;
        if (first_bit + 64 > m_capacity) {
            const uint64_t valid = m_capacity - first_bit;
            const uint64_t mask = (uint64_t{1} << valid) - 1;
            if ((word & ~mask) != 0)
                note(report, SlabViolation::StrayBitmapBit, slab);
            word &= mask;
        }
        allocated += popcount64(word);
    }
    if (slab->in_use > m_capacity || allocated != slab->in_use)
        note(report, SlabViolation::CountMismatch, slab);
    report.active_objects += slab->in_use;

    // Free list: exactly the clear bits. No entry may be allocated, outside the
    // slab or off a slot boundary; a list longer than the free count has a
    // cycle (a repeated entry in a singly linked list implies one).
    const uint64_t expected_free = m_capacity - lib::min<uint64_t>(allocated, m_capacity);
    uint64_t walked = 0;
    bool broken = false;
    // Each link is validated before it is followed.
    for (void* object = slab->free_list; object != nullptr; object = *link_of(object)) {
        if (walked >= expected_free || !is_free_object(slab, object)) {
            note(report, SlabViolation::FreeListCorrupt, slab, object);
            broken = true;
            break;
        }
        ++walked;
        if (debug_active()) {
            const auto* bytes = static_cast<const uint8_t*>(object);
            const uint8_t* slot = bytes - m_object_offset;
            if (!zone_intact(bytes, bytes + m_object_size, kSlabPoisonByte))
                note(report, SlabViolation::PoisonDamaged, slab, object);
            if (!zone_intact(slot + kLinkBytes, bytes, kSlabRedZoneByte) ||
                !zone_intact(bytes + m_object_size, slot + m_slot_size, kSlabRedZoneByte))
                note(report, SlabViolation::RedZoneDamaged, slab, object);
        }
    }
    if (!broken && walked != expected_free)
        note(report, SlabViolation::FreeListCorrupt, slab);
    report.free_objects += walked;

    // Red zones of allocated objects.
    if (debug_active()) {
        auto* mutable_slab = const_cast<SlabHeader*>(slab);
        for (uint64_t i = 0; i < m_capacity; ++i) {
            if (((slab->bitmap()[i >> 6] >> (i & 63)) & 1) == 0)
                continue;
            const uint8_t* bytes = object_at(mutable_slab, i);
            const uint8_t* slot = bytes - m_object_offset;
            if (!zone_intact(slot, bytes, kSlabRedZoneByte) ||
                !zone_intact(bytes + m_object_size, slot + m_slot_size, kSlabRedZoneByte))
                note(report, SlabViolation::RedZoneDamaged, slab, bytes);
        }
    }
}

SlabCheckReport SlabCache::check_invariants() const
{
    SlabCheckReport report;
    if (!initialized())
        return report;

    auto header_ok = [&](const SlabHeader* slab) {
        return (reinterpret_cast<uintptr_t>(slab) & (m_slab_bytes - 1)) == 0 && slab->magic == kSlabMagic &&
            slab->cache == this;
    };

    uint64_t slabs = 0;
    if (m_current != nullptr) {
        if (!header_ok(m_current)) {
            note(report, SlabViolation::BadHeader, m_current);
        } else {
            ++slabs;
            if (m_current->list != ListId::None)
                note(report, SlabViolation::ListCorrupt, m_current);
            check_slab(m_current, report);
        }
    }

    auto walk = [&](const SlabList& list, ListId id) {
        uint64_t n = 0;
        const SlabHeader* prev = nullptr;
        for (const SlabHeader* slab = list.front(); slab != nullptr; prev = slab, slab = SlabList::next(*slab)) {
            if (n > m_slab_count) {
                note(report, SlabViolation::ListCorrupt, slab);
                return;
            }
            if (!header_ok(slab)) {
                note(report, SlabViolation::BadHeader, slab);
                return; // its links cannot be trusted
            }
            ++n;
            ++slabs;
            if (SlabList::prev(*slab) != prev || slab->list != id || slab == m_current)
                note(report, SlabViolation::ListCorrupt, slab);
            const bool fits = id == ListId::Full ? slab->in_use == m_capacity
                : id == ListId::Empty            ? slab->in_use == 0
                                                 : slab->in_use > 0 && slab->in_use < m_capacity;
            if (!fits)
                note(report, SlabViolation::WrongList, slab);
            check_slab(slab, report);
        }
        if (n != list.size())
            note(report, SlabViolation::CountMismatch, list.front());
    };
    walk(m_partial, ListId::Partial);
    walk(m_full, ListId::Full);
    walk(m_empty, ListId::Empty);

    report.slabs = slabs;
    if (slabs != m_slab_count || report.active_objects != m_active || m_active > m_allocations ||
        m_slab_count != m_slabs_allocated - m_slabs_released)
        note(report, SlabViolation::CountMismatch, nullptr);
    return report;
}

SlabCheckReport SlabCache::check_slab_of(const void* ptr) const
{
    SlabCheckReport report;
    if (!initialized())
        return report;
    const auto* slab = reinterpret_cast<const SlabHeader*>(reinterpret_cast<uintptr_t>(ptr) & m_slab_mask);
    if (slab == nullptr || slab->magic != kSlabMagic || slab->cache != this) {
        note(report, SlabViolation::BadHeader, slab);
        return report;
    }
    report.slabs = 1;
    if (slab == m_current) {
        if (slab->list != ListId::None)
            note(report, SlabViolation::ListCorrupt, slab);
    } else {
        const SlabList* list = slab->list == ListId::Partial ? &m_partial
            : slab->list == ListId::Full                     ? &m_full
            : slab->list == ListId::Empty                    ? &m_empty
                                                             : nullptr;
        // Links are compared, never followed further than one step.
        const SlabHeader* prev = SlabList::prev(*slab);
        const SlabHeader* next = SlabList::next(*slab);
        if (list == nullptr || (prev == nullptr ? list->front() != slab : SlabList::next(*prev) != slab) ||
            (next != nullptr && SlabList::prev(*next) != slab))
            note(report, SlabViolation::ListCorrupt, slab);
        const bool fits = slab->list == ListId::Full ? slab->in_use == m_capacity
            : slab->list == ListId::Empty            ? slab->in_use == 0
                                                     : slab->in_use > 0 && slab->in_use < m_capacity;
        if (!fits)
            note(report, SlabViolation::WrongList, slab);
    }
    check_slab(slab, report);
    const uint64_t listed = m_partial.size() + m_full.size() + m_empty.size() + (m_current != nullptr ? 1 : 0);
    if (listed != m_slab_count || m_active > m_allocations || m_active > m_slab_count * m_capacity ||
        m_slab_count != m_slabs_allocated - m_slabs_released)
        note(report, SlabViolation::CountMismatch, nullptr);
    return report;
}

} // namespace mm
