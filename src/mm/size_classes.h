#pragma once
// The general kmalloc size classes, 16 B .. 2 KiB.
//
// Four classes per doubling above 128 B (steps of 16 up to 128, then 32, 64,
// 128 and 256), so a request never wastes more than 20% of its object once past
// 128 B. For request sizes uniform over 1..2048 the mean internal waste
// ((class - request) / class, averaged over requests) is 8.37% and the
// byte-weighted waste (1 - requested / allocated bytes) 7.66%, both under the
// 12.5% budget; size_class_waste() recomputes them and the tests check them.
//
// Every class is a multiple of 16, so kmalloc objects are 16-byte aligned.
// Lookup is one load from a 129-byte table indexed by (size + 15) / 16.
#include <stddef.h>
#include <stdint.h>

namespace mm {

inline constexpr size_t kSizeClassCount = 24;
inline constexpr size_t kSizeClassGranule = 16;
inline constexpr size_t kSmallestSizeClass = 16;
inline constexpr size_t kLargestSizeClass = 2048;

inline constexpr uint16_t kSizeClassSizes[kSizeClassCount] = {
    16,  32,  48,  64,  80,  96,  112, 128,  160,  192,  224,  256,
    320, 384, 448, 512, 640, 768, 896, 1024, 1280, 1536, 1792, 2048,
};

namespace detail {

struct SizeClassTable {
    // Entry g: the class of a request of 16 * g bytes (and of 16 * (g - 1) + 1 .. 16 * g).
    uint8_t index[kLargestSizeClass / kSizeClassGranule + 1];
};

constexpr SizeClassTable make_size_class_table()
{
    SizeClassTable table{};
    unsigned cls = 0;
    for (size_t g = 0; g <= kLargestSizeClass / kSizeClassGranule; ++g) {
        while (kSizeClassSizes[cls] < g * kSizeClassGranule)
            ++cls;
        table.index[g] = static_cast<uint8_t>(cls);
    }
    return table;
}

inline constexpr SizeClassTable kSizeClassTable = make_size_class_table();

constexpr bool size_classes_well_formed()
{
    for (size_t i = 0; i < kSizeClassCount; ++i) {
        if (kSizeClassSizes[i] % kSizeClassGranule != 0)
            return false;
        if (i > 0 && kSizeClassSizes[i] <= kSizeClassSizes[i - 1])
            return false;
    }
    return kSizeClassSizes[0] == kSmallestSizeClass && kSizeClassSizes[kSizeClassCount - 1] == kLargestSizeClass;
}
static_assert(size_classes_well_formed());

} // namespace detail

// True when kmalloc serves `size` from a size class.
constexpr bool size_class_fits(size_t size) { return size <= kLargestSizeClass; }

// Index of the smallest class holding `size` bytes. Precondition:
// size_class_fits(size). A request of 0 bytes maps to the smallest class.
constexpr unsigned size_class_index(size_t size)
{
    return detail::kSizeClassTable.index[(size + kSizeClassGranule - 1) / kSizeClassGranule];
}

// Object size of class `index` (< kSizeClassCount).
constexpr size_t size_class_size(unsigned index) { return kSizeClassSizes[index]; }

// Bytes a request of `size` (<= kLargestSizeClass) really occupies.
constexpr size_t size_class_round_up(size_t size) { return size_class_size(size_class_index(size)); }

// "kmalloc-16" .. "kmalloc-2048", for naming the caches; "kmalloc-?" out of range.
const char* size_class_name(unsigned index);

// Internal waste for request sizes uniformly distributed over 1..max_request
// (max_request <= kLargestSizeClass), in parts per million. Integer arithmetic
// only: kernel code has no floating point.
struct SizeClassWaste {
    uint64_t requests = 0;
    uint64_t requested_bytes = 0;
    uint64_t allocated_bytes = 0;
    uint64_t mean_waste_ppm = 0;  // mean over requests of (class - size) / class
    uint64_t bytes_waste_ppm = 0; // 1 - requested_bytes / allocated_bytes
    uint64_t max_waste_ppm = 0;   // worst single request (a 1-byte request in the 16-byte class)
};

SizeClassWaste size_class_waste(size_t max_request = kLargestSizeClass);

} // namespace mm
