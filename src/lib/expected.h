#pragma once
// lib::Expected<T, E>: a value or an error, which the caller has to look at.
//
//   lib::Expected<uint64_t, ParseError> r = parse_u64("42");
//   if (!r) return lib::unexpected(r.error());
//   use(*r);
//
// Accessing value() on an error (or error() on a value) is a bug; with
// AETHELOS_DEBUG_CHECKS it traps, otherwise it is undefined.
#include <new>
#include <type_traits>

#include "lib/check.h"
#include "lib/utility.h"

namespace lib {

template <typename E>
class Unexpected {
public:
    constexpr explicit Unexpected(const E& error) : m_error(error) { }
    constexpr explicit Unexpected(E&& error) : m_error(lib::move(error)) { }

    constexpr const E& error() const& { return m_error; }
    constexpr E& error() & { return m_error; }
    constexpr E&& error() && { return lib::move(m_error); }

private:
    E m_error;
};

template <typename E>
constexpr Unexpected<std::decay_t<E>> unexpected(E&& error)
{
    return Unexpected<std::decay_t<E>>(lib::forward<E>(error));
}

template <typename T, typename E>
class [[nodiscard]] Expected {
    static_assert(!std::is_reference_v<T> && !std::is_reference_v<E>, "Expected does not hold references");

public:
    using ValueType = T;
    using ErrorType = E;

    // Default-constructs a value, like std::expected.
    constexpr Expected() requires std::is_default_constructible_v<T> : m_value(), m_has_value(true) { }

    template <typename U = T>
    requires(std::is_constructible_v<T, U&&> && !std::is_same_v<std::remove_cvref_t<U>, Expected> &&
             !std::is_same_v<std::remove_cvref_t<U>, Unexpected<E>>) constexpr Expected(U&& value)
        : m_value(lib::forward<U>(value)), m_has_value(true)
    { }

    template <typename G>
    requires std::is_constructible_v<E, const G&>
    constexpr Expected(const Unexpected<G>& u) : m_error(u.error()), m_has_value(false) { }

    template <typename G>
    requires std::is_constructible_v<E, G&&>
    constexpr Expected(Unexpected<G>&& u) : m_error(lib::move(u).error()), m_has_value(false) { }

    constexpr Expected(const Expected& other) requires(
        std::is_trivially_copy_constructible_v<T>&& std::is_trivially_copy_constructible_v<E>) = default;
    constexpr Expected(const Expected& other) : m_has_value(other.m_has_value) { construct_from(other); }

    constexpr Expected(Expected&& other) requires(
        std::is_trivially_move_constructible_v<T>&& std::is_trivially_move_constructible_v<E>) = default;
    constexpr Expected(Expected&& other) : m_has_value(other.m_has_value) { construct_from(lib::move(other)); }

    // Plain-data Expecteds stay trivially copyable (memcpy-able, register-passed).
    constexpr Expected& operator=(const Expected& other) requires(
        std::is_trivially_copyable_v<T>&& std::is_trivially_copyable_v<E>) = default;
    constexpr Expected& operator=(const Expected& other)
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            construct_from(other);
        }
        return *this;
    }

    constexpr Expected&
    operator=(Expected&& other) requires(std::is_trivially_copyable_v<T>&& std::is_trivially_copyable_v<E>) = default;
    constexpr Expected& operator=(Expected&& other)
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            construct_from(lib::move(other));
        }
        return *this;
    }

    // Trivial destructor when possible keeps Expected usable in constant
    // expressions and free of destructor calls for plain data.
    constexpr ~Expected() requires(std::is_trivially_destructible_v<T>&& std::is_trivially_destructible_v<E>) = default;
    constexpr ~Expected() { destroy(); }

    constexpr bool has_value() const { return m_has_value; }
    constexpr explicit operator bool() const { return m_has_value; }

    constexpr T& value() &
    {
        LIB_DEBUG_CHECK(m_has_value);
        return m_value;
    }
    constexpr const T& value() const&
    {
        LIB_DEBUG_CHECK(m_has_value);
        return m_value;
    }
    constexpr T&& value() &&
    {
        LIB_DEBUG_CHECK(m_has_value);
        return lib::move(m_value);
    }

    constexpr E& error() &
    {
        LIB_DEBUG_CHECK(!m_has_value);
        return m_error;
    }
    constexpr const E& error() const&
    {
        LIB_DEBUG_CHECK(!m_has_value);
        return m_error;
    }
    constexpr E&& error() &&
    {
        LIB_DEBUG_CHECK(!m_has_value);
        return lib::move(m_error);
    }

    constexpr T& operator*() & { return value(); }
    constexpr const T& operator*() const& { return value(); }
    constexpr T&& operator*() && { return lib::move(*this).value(); }
    constexpr T* operator->() { return &value(); }
    constexpr const T* operator->() const { return &value(); }

    template <typename U>
    constexpr T value_or(U&& fallback) const&
    {
        return m_has_value ? m_value : static_cast<T>(lib::forward<U>(fallback));
    }
    template <typename U>
    constexpr T value_or(U&& fallback) &&
    {
        return m_has_value ? lib::move(m_value) : static_cast<T>(lib::forward<U>(fallback));
    }

private:
    template <typename Other>
    constexpr void construct_from(Other&& other)
    {
        if (m_has_value)
            new (&m_value) T(lib::forward<Other>(other).m_value);
        else
            new (&m_error) E(lib::forward<Other>(other).m_error);
    }

    constexpr void destroy()
    {
        if (m_has_value)
            m_value.~T();
        else
            m_error.~E();
    }

    union {
        T m_value;
        E m_error;
    };
    bool m_has_value;
};

template <typename E>
class [[nodiscard]] Expected<void, E> {
public:
    using ValueType = void;
    using ErrorType = E;

    constexpr Expected() : m_has_value(true) { }

    template <typename G>
    requires std::is_constructible_v<E, const G&>
    constexpr Expected(const Unexpected<G>& u) : m_error(u.error()), m_has_value(false) { }

    template <typename G>
    requires std::is_constructible_v<E, G&&>
    constexpr Expected(Unexpected<G>&& u) : m_error(lib::move(u).error()), m_has_value(false) { }

    constexpr Expected(const Expected& other) : m_has_value(other.m_has_value)
    {
        if (!m_has_value)
            new (&m_error) E(other.m_error);
    }
    constexpr Expected(Expected&& other) : m_has_value(other.m_has_value)
    {
        if (!m_has_value)
            new (&m_error) E(lib::move(other.m_error));
    }
    constexpr Expected& operator=(const Expected& other)
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            if (!m_has_value)
                new (&m_error) E(other.m_error);
        }
        return *this;
    }
    constexpr Expected& operator=(Expected&& other)
    {
        if (this != &other) {
            destroy();
            m_has_value = other.m_has_value;
            if (!m_has_value)
                new (&m_error) E(lib::move(other.m_error));
        }
        return *this;
    }

    constexpr ~Expected() requires std::is_trivially_destructible_v<E>
    = default;
    constexpr ~Expected() { destroy(); }

    constexpr bool has_value() const { return m_has_value; }
    constexpr explicit operator bool() const { return m_has_value; }
    constexpr void value() const { LIB_DEBUG_CHECK(m_has_value); }

    constexpr E& error() &
    {
        LIB_DEBUG_CHECK(!m_has_value);
        return m_error;
    }
    constexpr const E& error() const&
    {
        LIB_DEBUG_CHECK(!m_has_value);
        return m_error;
    }

private:
    constexpr void destroy()
    {
        if (!m_has_value)
            m_error.~E();
    }

    union {
        E m_error;
    };
    bool m_has_value;
};

} // namespace lib
