#pragma once
// Fixed-size array (aggregate, like std::array): `lib::Array<int, 3> a{1, 2, 3};`
#include <stddef.h>

#include "lib/check.h"

namespace lib {

template <typename T, size_t N>
struct Array {
    // Public so the type stays an aggregate; do not use directly.
    T m_elements[N];

    constexpr T* data() { return m_elements; }
    constexpr const T* data() const { return m_elements; }
    static constexpr size_t size() { return N; }
    static constexpr bool empty() { return false; }

    constexpr T& operator[](size_t i)
    {
        LIB_DEBUG_CHECK(i < N);
        return m_elements[i];
    }
    constexpr const T& operator[](size_t i) const
    {
        LIB_DEBUG_CHECK(i < N);
        return m_elements[i];
    }

    constexpr T* begin() { return m_elements; }
    constexpr T* end() { return m_elements + N; }
    constexpr const T* begin() const { return m_elements; }
    constexpr const T* end() const { return m_elements + N; }

    constexpr void fill(const T& value)
    {
        for (T& e : m_elements)
            e = value;
    }

    friend constexpr bool operator==(const Array& a, const Array& b)
    {
        for (size_t i = 0; i < N; ++i) {
            if (!(a.m_elements[i] == b.m_elements[i]))
                return false;
        }
        return true;
    }
};

// A zero-length C array is ill-formed, so N == 0 gets its own empty layout.
template <typename T>
struct Array<T, 0> {
    constexpr T* data() { return nullptr; }
    constexpr const T* data() const { return nullptr; }
    static constexpr size_t size() { return 0; }
    static constexpr bool empty() { return true; }
    constexpr T* begin() { return nullptr; }
    constexpr T* end() { return nullptr; }
    constexpr const T* begin() const { return nullptr; }
    constexpr const T* end() const { return nullptr; }
    friend constexpr bool operator==(const Array&, const Array&) { return true; }
};

template <typename T, typename... U>
Array(T, U...) -> Array<T, 1 + sizeof...(U)>;

} // namespace lib
