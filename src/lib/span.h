#pragma once
// Non-owning view of a contiguous range (std::span with a dynamic extent only).
//
// first/last/subspan clamp out-of-range arguments to the available elements
// rather than producing a view past the end: callers parsing untrusted data
// (Multiboot2 tags, ACPI tables) then see a short span instead of UB.
#include <stddef.h>
#include <stdint.h>

#include <type_traits>

#include "lib/check.h"

namespace lib {

template <typename T>
class Span {
public:
    using ElementType = T;
    static constexpr size_t npos = static_cast<size_t>(-1);

    constexpr Span() = default;
    constexpr Span(T* data, size_t size) : m_data(data), m_size(size) { }

    template <size_t N>
    constexpr Span(T (&array)[N]) : m_data(array), m_size(N)
    { }

    // Span<T> -> Span<const T> (the array-pointer test rejects derived->base).
    template <typename U>
    requires(!std::is_same_v<U, T> && std::is_convertible_v<U (*)[], T (*)[]>) constexpr Span(const Span<U>& other)
        : m_data(other.data()), m_size(other.size())
    { }

    constexpr T* data() const { return m_data; }
    constexpr size_t size() const { return m_size; }
    constexpr size_t size_bytes() const { return m_size * sizeof(T); }
    constexpr bool empty() const { return m_size == 0; }

    constexpr T& operator[](size_t i) const
    {
        LIB_DEBUG_CHECK(i < m_size);
        return m_data[i];
    }
    constexpr T& front() const { return (*this)[0]; }
    constexpr T& back() const { return (*this)[m_size - 1]; }

    constexpr T* begin() const { return m_data; }
    constexpr T* end() const { return m_data + m_size; }

    constexpr Span first(size_t n) const { return Span(m_data, n < m_size ? n : m_size); }
    constexpr Span last(size_t n) const
    {
        const size_t count = n < m_size ? n : m_size;
        return Span(m_data + (m_size - count), count);
    }
    // Elements [offset, offset + count), clamped to the span.
    constexpr Span subspan(size_t offset, size_t count = npos) const
    {
        if (offset > m_size)
            offset = m_size;
        const size_t avail = m_size - offset;
        return Span(m_data + offset, count < avail ? count : avail);
    }

private:
    T* m_data = nullptr;
    size_t m_size = 0;
};

template <typename T, size_t N>
Span(T (&)[N]) -> Span<T>;

// View any object's bytes, e.g. for checksums.
template <typename T>
Span<const uint8_t> as_bytes(Span<T> span)
{
    return Span<const uint8_t>(reinterpret_cast<const uint8_t*>(span.data()), span.size_bytes());
}

} // namespace lib
