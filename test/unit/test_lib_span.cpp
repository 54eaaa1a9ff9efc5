// Host tests for lib/span.h.
#include <catch2/catch.hpp>

#include <random>

#include "lib/span.h"

TEST_CASE("lib::Span basics", "[lib][span]")
{
    int raw[5] = {10, 20, 30, 40, 50};
    lib::Span<int> s(raw);
    CHECK(s.size() == 5);
    CHECK(s.size_bytes() == 5 * sizeof(int));
    CHECK_FALSE(s.empty());
    CHECK(s.data() == raw);
    CHECK(s[2] == 30);
    CHECK(s.front() == 10);
    CHECK(s.back() == 50);
    s[2] = 33;
    CHECK(raw[2] == 33);
    int sum = 0;
    for (int v : s)
        sum += v;
    CHECK(sum == 153);

    lib::Span<int> empty;
    CHECK(empty.empty());
    CHECK(empty.size() == 0);
    CHECK(empty.data() == nullptr);
    CHECK(empty.begin() == empty.end());
}

TEST_CASE("lib::Span conversions", "[lib][span]")
{
    int raw[3] = {1, 2, 3};
    lib::Span<int> s(raw);
    lib::Span<const int> cs = s;
    CHECK(cs.data() == raw);
    CHECK(cs.size() == 3);
    STATIC_REQUIRE(!std::is_convertible_v<lib::Span<const int>, lib::Span<int>>);

    lib::Span deduced(raw);
    STATIC_REQUIRE(std::is_same_v<decltype(deduced), lib::Span<int>>);

    auto bytes = lib::as_bytes(s);
    CHECK(bytes.size() == 3 * sizeof(int));
    CHECK(static_cast<const void*>(bytes.data()) == static_cast<const void*>(raw));
}

TEST_CASE("lib::Span first/last/subspan", "[lib][span]")
{
    int raw[6] = {0, 1, 2, 3, 4, 5};
    lib::Span<int> s(raw);
    CHECK(s.first(2).size() == 2);
    CHECK(s.first(2)[1] == 1);
    CHECK(s.last(2).size() == 2);
    CHECK(s.last(2)[0] == 4);
    CHECK(s.subspan(2, 3).size() == 3);
    CHECK(s.subspan(2, 3)[0] == 2);
    CHECK(s.subspan(4).size() == 2);
    CHECK(s.subspan(6).empty());
    // Out-of-range requests are clamped, never past the end.
    CHECK(s.first(100).size() == 6);
    CHECK(s.last(100).data() == raw);
    CHECK(s.subspan(100).empty());
    CHECK(s.subspan(100).data() == raw + 6);
    CHECK(s.subspan(3, 100).size() == 3);
}

TEST_CASE("lib::Span subspan clamping (randomised)", "[lib][span]")
{
    int raw[64];
    std::mt19937 rng(42);
    for (int i = 0; i < 5000; ++i) {
        const size_t size = rng() % 65;
        lib::Span<int> s(raw, size);
        const size_t off = rng() % 80;
        const size_t count = (rng() % 4 == 0) ? lib::Span<int>::npos : rng() % 80;
        auto sub = s.subspan(off, count);
        REQUIRE(sub.data() >= s.begin());
        REQUIRE(sub.end() <= s.end());
        const size_t expected_off = off < size ? off : size;
        REQUIRE(sub.data() == raw + expected_off);
        REQUIRE(sub.size() == (count < size - expected_off ? count : size - expected_off));
    }
}
