#pragma once
// mm::PageSource: where the slab layer gets its memory from.
//
// The kernel implements it with the frame allocator plus the physmap; host
// tests implement it with aligned_alloc or a private buddy. Keeping it an
// interface lets the exact slab code run in both places.
#include <stddef.h>

namespace mm {

class PageSource {
public:
    // 2^order contiguous 4 KiB pages, naturally aligned to their size
    // (4096 << order), or nullptr when none are available.
    virtual void* allocate_pages(unsigned order) = 0;
    // Returns pages from allocate_pages(order) with the same order.
    virtual void free_pages(void* p, unsigned order) = 0;

protected:
    // Never deleted through the interface (no heap beneath the heap).
    ~PageSource() = default;
};

} // namespace mm
