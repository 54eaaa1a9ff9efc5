#pragma once
// The small pieces of <utility>/<algorithm> that freestanding C++ lacks.
#include <stddef.h>
#include <stdint.h>

#include <concepts>
#include <type_traits>

namespace lib {

template <typename T>
constexpr std::remove_reference_t<T>&& move(T&& value) noexcept
{
    return static_cast<std::remove_reference_t<T>&&>(value);
}

template <typename T>
constexpr T&& forward(std::remove_reference_t<T>& value) noexcept
{
    return static_cast<T&&>(value);
}

template <typename T>
constexpr T&& forward(std::remove_reference_t<T>&& value) noexcept
{
    static_assert(!std::is_lvalue_reference_v<T>, "forwarding an rvalue as an lvalue");
    return static_cast<T&&>(value);
}

template <typename T>
constexpr void swap(T& a, T& b) noexcept
{
    T tmp = lib::move(a);
    a = lib::move(b);
    b = lib::move(tmp);
}

template <typename T, typename U = T>
constexpr T exchange(T& target, U&& replacement)
{
    T old = lib::move(target);
    target = lib::forward<U>(replacement);
    return old;
}

// Return by value: these are used on small scalars, and a value cannot dangle
// when an argument is a temporary.
template <typename T>
constexpr T min(const T& a, const T& b)
{
    return b < a ? b : a;
}

template <typename T>
constexpr T max(const T& a, const T& b)
{
    return a < b ? b : a;
}

template <typename T>
constexpr T clamp(const T& value, const T& low, const T& high)
{
    return value < low ? low : (high < value ? high : value);
}

template <std::integral T>
constexpr bool is_power_of_two(T value)
{
    return value > 0 && (value & (value - 1)) == 0;
}

// `alignment` must be a power of two. The second parameter is non-deduced so
// align_up(size, 4096) works without casting the literal.
template <std::integral T>
constexpr T align_down(T value, std::type_identity_t<T> alignment)
{
    return value & ~(alignment - 1);
}

template <std::integral T>
constexpr T align_up(T value, std::type_identity_t<T> alignment)
{
    return (value + alignment - 1) & ~(alignment - 1);
}

} // namespace lib
