#include "mm/size_classes.h"

namespace mm {

namespace {

constexpr const char* kNames[kSizeClassCount] = {
    "kmalloc-16",  "kmalloc-32",   "kmalloc-48",   "kmalloc-64",   "kmalloc-80",   "kmalloc-96",
    "kmalloc-112", "kmalloc-128",  "kmalloc-160",  "kmalloc-192",  "kmalloc-224",  "kmalloc-256",
    "kmalloc-320", "kmalloc-384",  "kmalloc-448",  "kmalloc-512",  "kmalloc-640",  "kmalloc-768",
    "kmalloc-896", "kmalloc-1024", "kmalloc-1280", "kmalloc-1536", "kmalloc-1792", "kmalloc-2048",
};

// Every request size maps to the smallest class that holds it (checked at compile time).
constexpr bool table_is_exact()
{
    for (size_t size = 0; size <= kLargestSizeClass; ++size) {
        const unsigned index = size_class_index(size);
        if (index >= kSizeClassCount || size_class_size(index) < size)
            return false;
        if (index > 0 && size_class_size(index - 1) >= size)
            return false;
    }
    return true;
}
static_assert(table_is_exact());

} // namespace

const char* size_class_name(unsigned index) { return index < kSizeClassCount ? kNames[index] : "kmalloc-?"; }

SizeClassWaste size_class_waste(size_t max_request)
{
    SizeClassWaste w;
    if (max_request == 0 || max_request > kLargestSizeClass)
        return w;
    // Sum of per-request waste fractions in units of 1e-9 (truncation error
    // below 1e-9 per request, far under the ppm result).
    uint64_t fraction_sum_nano = 0;
    for (size_t size = 1; size <= max_request; ++size) {
        const uint64_t cls = size_class_round_up(size);
        const uint64_t nano = (cls - size) * 1000000000ull / cls;
        fraction_sum_nano += nano;
        if (nano / 1000 > w.max_waste_ppm)
            w.max_waste_ppm = nano / 1000;
        w.requested_bytes += size;
        w.allocated_bytes += cls;
    }
    w.requests = max_request;
    w.mean_waste_ppm = fraction_sum_nano / max_request / 1000;
    w.bytes_waste_ppm = (w.allocated_bytes - w.requested_bytes) * 1000000ull / w.allocated_bytes;
    return w;
}

} // namespace mm
