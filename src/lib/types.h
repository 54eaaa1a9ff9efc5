#pragma once
// Strong address types. Physical and virtual addresses are different kinds of
// number; keeping them in distinct types stops one silently becoming the other.
#include <stddef.h>
#include <stdint.h>

#include <compare>

namespace lib {

inline constexpr uint64_t kPageSize = 4096;

namespace detail {

// Shared arithmetic of both address types. CRTP so every helper returns the
// derived type rather than a bare number.
template <typename Derived>
class AddressBase {
public:
    constexpr AddressBase() = default;
    explicit constexpr AddressBase(uint64_t value) : m_value(value) { }

    constexpr uint64_t get() const { return m_value; }
    constexpr bool is_null() const { return m_value == 0; }

    constexpr Derived offset(uint64_t bytes) const { return Derived(m_value + bytes); }
    constexpr Derived page_base() const { return Derived(m_value & ~(kPageSize - 1)); }
    constexpr uint64_t page_offset() const { return m_value & (kPageSize - 1); }
    // `alignment` must be a power of two.
    constexpr bool is_aligned(uint64_t alignment) const { return (m_value & (alignment - 1)) == 0; }
    constexpr Derived align_down(uint64_t alignment) const { return Derived(m_value & ~(alignment - 1)); }
    constexpr Derived align_up(uint64_t alignment) const
    {
        return Derived((m_value + alignment - 1) & ~(alignment - 1));
    }

    auto operator<=>(const AddressBase&) const = default;

private:
    uint64_t m_value = 0;
};

} // namespace detail

class PhysicalAddress : public detail::AddressBase<PhysicalAddress> {
public:
    using AddressBase::AddressBase;
    auto operator<=>(const PhysicalAddress&) const = default;
};

class VirtualAddress : public detail::AddressBase<VirtualAddress> {
public:
    using AddressBase::AddressBase;
    auto operator<=>(const VirtualAddress&) const = default;

    template <typename T>
    T* as_ptr() const
    {
        return reinterpret_cast<T*>(static_cast<uintptr_t>(get()));
    }
    static VirtualAddress from_ptr(const void* ptr)
    {
        return VirtualAddress(static_cast<uint64_t>(reinterpret_cast<uintptr_t>(ptr)));
    }
};

static_assert(sizeof(PhysicalAddress) == 8 && sizeof(VirtualAddress) == 8);

} // namespace lib

using lib::kPageSize;
using lib::PhysicalAddress;
using lib::VirtualAddress;
