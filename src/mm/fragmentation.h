#pragma once
// Linux's fragmentation figures (mm/vmstat.c) over a buddyinfo vector: free_blocks[k] free
// blocks of 2^k units each. One definition for every buddy view (a BuddyAllocator, the frame
// zones summed, the heap's chunks summed), so their figures can be compared.
#include <stddef.h>
#include <stdint.h>

namespace mm {

// __fragmentation_index() in thousandths for a request of `order`:
//   0     => it would fail for lack of memory (or nothing is free),
//   1000  => it would fail because free memory is fragmented,
//   -1000 => it would not fail (a block of this order or larger is free).
// As in Linux the value can dip below 0 when very few, large-ish blocks are free.
inline int32_t fragmentation_index(const uint64_t* free_blocks, unsigned order_count, unsigned order)
{
    if (order >= order_count)
        return 0;
    uint64_t total_blocks = 0;
    uint64_t free_units = 0;
    bool suitable = false;
    for (unsigned k = 0; k < order_count; ++k) {
        total_blocks += free_blocks[k];
        free_units += free_blocks[k] << k;
        if (k >= order && free_blocks[k] != 0)
            suitable = true;
    }
    if (total_blocks == 0)
        return 0;
    if (suitable)
        return -1000;
    const uint64_t requested = uint64_t{1} << order;
    return static_cast<int32_t>(1000 - static_cast<int64_t>((1000 + free_units * 1000 / requested) / total_blocks));
}

// unusable_free_index() in thousandths: the share of free memory in blocks too small for
// `order` (1000 when nothing is free).
inline int32_t unusable_free_index(const uint64_t* free_blocks, unsigned order_count, unsigned order)
{
    if (order >= order_count)
        return 0;
    uint64_t free_units = 0;
    uint64_t suitable_units = 0;
    for (unsigned k = 0; k < order_count; ++k) {
        free_units += free_blocks[k] << k;
        if (k >= order)
            suitable_units += free_blocks[k] << k;
    }
    if (free_units == 0)
        return 1000;
    return static_cast<int32_t>((free_units - suitable_units) * 1000 / free_units);
}

} // namespace mm
