// Host tests for lib/expected.h.
#include <catch2/catch.hpp>

#include <random>

#include "lib/expected.h"

namespace {

enum class Err { Bad, Worse };

// Counts live instances so every construct is matched by one destroy.
struct Tracked {
    static inline int live = 0;
    int value;
    explicit Tracked(int v) : value(v) { ++live; }
    Tracked(const Tracked& o) : value(o.value) { ++live; }
    Tracked(Tracked&& o) noexcept : value(o.value)
    {
        ++live;
        o.value = -1;
    }
    Tracked& operator=(const Tracked&) = default;
    Tracked& operator=(Tracked&&) = default;
    ~Tracked() { --live; }
};

lib::Expected<int, Err> half(int v)
{
    if (v % 2 != 0)
        return lib::unexpected(Err::Bad);
    return v / 2;
}

lib::Expected<void, Err> check_positive(int v)
{
    if (v <= 0)
        return lib::unexpected(Err::Worse);
    return {};
}

} // namespace

TEST_CASE("Expected holds a value or an error", "[lib][expected]")
{
    auto ok = half(8);
    REQUIRE(ok.has_value());
    REQUIRE(static_cast<bool>(ok));
    CHECK(ok.value() == 4);
    CHECK(*ok == 4);
    CHECK(ok.value_or(-1) == 4);

    auto bad = half(3);
    REQUIRE_FALSE(bad.has_value());
    REQUIRE_FALSE(bad);
    CHECK(bad.error() == Err::Bad);
    CHECK(bad.value_or(-1) == -1);

    STATIC_REQUIRE(!std::is_convertible_v<lib::Expected<int, Err>, bool>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<lib::Expected<int, Err>>);
    STATIC_REQUIRE(std::is_trivially_destructible_v<lib::Expected<int, Err>>);
}

TEST_CASE("Expected with the same value and error type", "[lib][expected]")
{
    lib::Expected<int, int> v = 5;
    lib::Expected<int, int> e = lib::unexpected(5);
    CHECK(v.has_value());
    CHECK(*v == 5);
    CHECK_FALSE(e.has_value());
    CHECK(e.error() == 5);
}

TEST_CASE("Expected<void, E>", "[lib][expected]")
{
    CHECK(check_positive(1).has_value());
    auto r = check_positive(0);
    REQUIRE_FALSE(r);
    CHECK(r.error() == Err::Worse);
    lib::Expected<void, Err> copy = r;
    CHECK(copy.error() == Err::Worse);
    copy = check_positive(3);
    CHECK(copy.has_value());
}

TEST_CASE("Expected operator-> and move-out", "[lib][expected]")
{
    struct Point {
        int x, y;
    };
    lib::Expected<Point, Err> p = Point{1, 2};
    CHECK(p->x == 1);
    p->y = 5;
    CHECK(p.value().y == 5);

    Tracked::live = 0;
    {
        lib::Expected<Tracked, Err> t = Tracked(3);
        Tracked moved = lib::move(t).value();
        CHECK(moved.value == 3);
        CHECK(t->value == -1);
    }
    CHECK(Tracked::live == 0);
}

TEST_CASE("Expected is constexpr for trivial types", "[lib][expected]")
{
    constexpr lib::Expected<int, Err> c = 7;
    STATIC_REQUIRE(c.has_value());
    STATIC_REQUIRE(*c == 7);
    constexpr lib::Expected<int, Err> d = lib::unexpected(Err::Worse);
    STATIC_REQUIRE(d.error() == Err::Worse);
}

TEST_CASE("Expected lifetimes balance under random assignments", "[lib][expected]")
{
    Tracked::live = 0;
    {
        using E = lib::Expected<Tracked, Tracked>;
        std::mt19937 rng(7);
        E slots[6] = {Tracked(0), lib::unexpected(Tracked(1)), Tracked(2), lib::unexpected(Tracked(3)), Tracked(4),
                      Tracked(5)};
        // Model: which slots hold values, and their payloads.
        bool model_has[6] = {true, false, true, false, true, true};
        int model_val[6] = {0, 1, 2, 3, 4, 5};
        for (int i = 0; i < 5000; ++i) {
            const int a = static_cast<int>(rng() % 6), b = static_cast<int>(rng() % 6);
            const int v = static_cast<int>(rng() % 1000);
            switch (rng() % 4) {
            case 0:
                slots[a] = slots[b];
                model_has[a] = model_has[b];
                model_val[a] = model_val[b];
                break;
            case 1:
                slots[a] = E(Tracked(v));
                model_has[a] = true;
                model_val[a] = v;
                break;
            case 2:
                slots[a] = E(lib::unexpected(Tracked(v)));
                model_has[a] = false;
                model_val[a] = v;
                break;
            case 3: {
                if (a == b)
                    break;
                E taken(lib::move(slots[b]));
                slots[a] = lib::move(taken);
                model_has[a] = model_has[b];
                model_val[a] = model_val[b];
                model_val[b] = -1; // moved-from payload
                break;
            }
            }
            REQUIRE(Tracked::live == 6);
            for (int s = 0; s < 6; ++s) {
                REQUIRE(slots[s].has_value() == model_has[s]);
                REQUIRE((model_has[s] ? slots[s]->value : slots[s].error().value) == model_val[s]);
            }
        }
    }
    CHECK(Tracked::live == 0);
}
