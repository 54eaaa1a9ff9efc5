// Host tests for lib/array.h.
#include <catch2/catch.hpp>

#include "lib/array.h"

TEST_CASE("lib::Array is an aggregate with the usual accessors", "[lib][array]")
{
    lib::Array<int, 4> a{1, 2, 3, 4};
    STATIC_REQUIRE(std::is_aggregate_v<lib::Array<int, 4>>);
    STATIC_REQUIRE(sizeof(a) == 4 * sizeof(int));
    STATIC_REQUIRE(lib::Array<int, 4>::size() == 4);
    CHECK(a.size() == 4);
    CHECK_FALSE(a.empty());
    CHECK(a[0] == 1);
    CHECK(a[3] == 4);
    CHECK(a.data() == &a[0]);
    a[2] = 30;
    int sum = 0;
    for (int v : a)
        sum += v;
    CHECK(sum == 37);
    CHECK(a.end() - a.begin() == 4);

    a.fill(7);
    CHECK(a == lib::Array<int, 4>{7, 7, 7, 7});
    CHECK_FALSE(a == lib::Array<int, 4>{7, 7, 7, 8});
}

TEST_CASE("lib::Array deduction, const access, zero size and constexpr", "[lib][array]")
{
    lib::Array b{1u, 2u, 3u};
    STATIC_REQUIRE(std::is_same_v<decltype(b), lib::Array<unsigned, 3>>);

    const lib::Array<char, 2> c{'a', 'b'};
    CHECK(c[1] == 'b');
    STATIC_REQUIRE(std::is_same_v<decltype(c[0]), const char&>);

    lib::Array<int, 0> z{};
    CHECK(z.size() == 0);
    CHECK(z.empty());
    CHECK(z.begin() == z.end());

    constexpr lib::Array<int, 3> k{5, 6, 7};
    STATIC_REQUIRE(k[1] == 6);

    lib::Array<int, 3> zeroed{};
    CHECK(zeroed == lib::Array<int, 3>{0, 0, 0});
}
