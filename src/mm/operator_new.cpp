// Every form of operator new and delete in the Heartwood goes to the Mana Pool
// (mm/kmalloc.h). The throwing forms cannot throw in a kernel and may not
// return nullptr either, so they panic when memory runs out; code that can
// cope with failure uses the nothrow forms. Deletes of any form free by
// pointer (the heap knows each block's size and layer; debug builds check that
// a sized delete's size fits the block); an invalid delete panics with the
// pointer and the code that deleted it.
//
// Kernel only: the host tests keep the C++ runtime's own operators.
#if defined(__AETHELOS_KERNEL__)

#include <new>

#include "lib/panic.h"
#include "mm/kmalloc.h"

// libsupc++ is not linked, so the tag object `new (std::nothrow)` names lives here.
const std::nothrow_t std::nothrow{};

namespace {

[[noreturn, gnu::cold, gnu::noinline]] void out_of_memory(const char* form, size_t size, size_t alignment,
                                                          uint64_t caller)
{
    static char message[160];
    lib::format(message, sizeof(message), "Mana Pool: {} of {} bytes (alignment {}) from {:p}: out of memory", form,
                size, alignment, reinterpret_cast<const void*>(caller));
    kernel::panic_message(message, nullptr, caller);
}

inline void* checked(void* p, const char* form, size_t size, size_t alignment, uint64_t caller)
{
    if (p == nullptr) [[unlikely]]
        out_of_memory(form, size, alignment, caller);
    return p;
}

inline uint64_t return_address(void* address) { return reinterpret_cast<uint64_t>(address); }

} // namespace

// Each operator takes its own return address, so a panic names the real caller.
#define CALLER return_address(__builtin_return_address(0))

// ---- new ----

[[gnu::noinline]] void* operator new(size_t size)
{
    return checked(mm::kmalloc(size), "operator new", size, 0, CALLER);
}

[[gnu::noinline]] void* operator new[](size_t size)
{
    return checked(mm::kmalloc(size), "operator new[]", size, 0, CALLER);
}

[[gnu::noinline]] void* operator new(size_t size, std::align_val_t alignment)
{
    const auto align = static_cast<size_t>(alignment);
    return checked(mm::kmalloc_aligned(size, align), "operator new", size, align, CALLER);
}

[[gnu::noinline]] void* operator new[](size_t size, std::align_val_t alignment)
{
    const auto align = static_cast<size_t>(alignment);
    return checked(mm::kmalloc_aligned(size, align), "operator new[]", size, align, CALLER);
}

void* operator new(size_t size, const std::nothrow_t&) noexcept { return mm::kmalloc(size); }

void* operator new[](size_t size, const std::nothrow_t&) noexcept { return mm::kmalloc(size); }

void* operator new(size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept
{
    return mm::kmalloc_aligned(size, static_cast<size_t>(alignment));
}

void* operator new[](size_t size, std::align_val_t alignment, const std::nothrow_t&) noexcept
{
    return mm::kmalloc_aligned(size, static_cast<size_t>(alignment));
}

// ---- delete ----

[[gnu::noinline]] void operator delete(void* p) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete[](void* p) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete(void* p, size_t size) noexcept { mm::detail::kfree_sized_from(p, size, CALLER); }

[[gnu::noinline]] void operator delete[](void* p, size_t size) noexcept
{
    mm::detail::kfree_sized_from(p, size, CALLER);
}

[[gnu::noinline]] void operator delete(void* p, std::align_val_t) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete[](void* p, std::align_val_t) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete(void* p, size_t size, std::align_val_t) noexcept
{
    mm::detail::kfree_sized_from(p, size, CALLER);
}

[[gnu::noinline]] void operator delete[](void* p, size_t size, std::align_val_t) noexcept
{
    mm::detail::kfree_sized_from(p, size, CALLER);
}

[[gnu::noinline]] void operator delete(void* p, const std::nothrow_t&) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete[](void* p, const std::nothrow_t&) noexcept { mm::detail::kfree_from(p, CALLER); }

[[gnu::noinline]] void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    mm::detail::kfree_from(p, CALLER);
}

[[gnu::noinline]] void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept
{
    mm::detail::kfree_from(p, CALLER);
}

#undef CALLER

#endif // __AETHELOS_KERNEL__
