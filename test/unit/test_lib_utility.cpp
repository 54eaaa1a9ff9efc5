// Host tests for lib/utility.h and lib/types.h.
#include <catch2/catch.hpp>

#include <random>

#include "lib/types.h"
#include "lib/utility.h"

namespace {

struct MoveOnly {
    int value = 0;
    bool moved_from = false;
    explicit MoveOnly(int v) : value(v) { }
    MoveOnly(const MoveOnly&) = delete;
    MoveOnly& operator=(const MoveOnly&) = delete;
    MoveOnly(MoveOnly&& other) noexcept : value(other.value) { other.moved_from = true; }
    MoveOnly& operator=(MoveOnly&& other) noexcept
    {
        value = other.value;
        other.moved_from = true;
        return *this;
    }
};

int classify(int&) { return 1; }
int classify(int&&) { return 2; }
template <typename T>
int forwarded(T&& v)
{
    return classify(lib::forward<T>(v));
}

} // namespace

TEST_CASE("lib::move and forward preserve value categories", "[lib][utility]")
{
    int x = 1;
    STATIC_REQUIRE(std::is_same_v<decltype(lib::move(x)), int&&>);
    CHECK(forwarded(x) == 1);
    CHECK(forwarded(5) == 2);
    MoveOnly a(7);
    MoveOnly b(lib::move(a));
    CHECK(b.value == 7);
    CHECK(a.moved_from);
}

TEST_CASE("lib::swap and exchange work on move-only types", "[lib][utility]")
{
    MoveOnly a(1), b(2);
    lib::swap(a, b);
    CHECK(a.value == 2);
    CHECK(b.value == 1);

    int v = 3;
    CHECK(lib::exchange(v, 9) == 3);
    CHECK(v == 9);
}

TEST_CASE("lib::min/max/clamp", "[lib][utility]")
{
    STATIC_REQUIRE(lib::min(3, 4) == 3);
    STATIC_REQUIRE(lib::max(3, 4) == 4);
    STATIC_REQUIRE(lib::clamp(5, 0, 3) == 3);
    STATIC_REQUIRE(lib::clamp(-5, 0, 3) == 0);
    STATIC_REQUIRE(lib::clamp(2, 0, 3) == 2);
    CHECK(lib::min<uint64_t>(UINT64_MAX, 1) == 1);
}

TEST_CASE("lib alignment helpers", "[lib][utility]")
{
    STATIC_REQUIRE(lib::is_power_of_two(1u));
    STATIC_REQUIRE(lib::is_power_of_two(uint64_t{1} << 63));
    STATIC_REQUIRE(!lib::is_power_of_two(0));
    STATIC_REQUIRE(!lib::is_power_of_two(6));
    STATIC_REQUIRE(!lib::is_power_of_two(-8));
    STATIC_REQUIRE(lib::align_up(uint64_t{4097}, 4096) == 8192);
    STATIC_REQUIRE(lib::align_up(uint64_t{4096}, 4096) == 4096);
    STATIC_REQUIRE(lib::align_up(size_t{0}, 16) == 0);
    STATIC_REQUIRE(lib::align_down(uint64_t{8191}, 4096) == 4096);

    // Randomised: the result is aligned, within one step, and idempotent.
    std::mt19937_64 rng(1234);
    for (int i = 0; i < 2000; ++i) {
        const uint64_t align = uint64_t{1} << (rng() % 30);
        const uint64_t value = rng() >> 2; // headroom so align_up cannot wrap
        const uint64_t up = lib::align_up(value, align);
        const uint64_t down = lib::align_down(value, align);
        REQUIRE(up % align == 0);
        REQUIRE(down % align == 0);
        REQUIRE(down <= value);
        REQUIRE(value <= up);
        REQUIRE(up - down == (value % align == 0 ? 0 : align));
        REQUIRE(lib::align_up(up, align) == up);
    }
}

TEST_CASE("PhysicalAddress and VirtualAddress", "[lib][types]")
{
    constexpr PhysicalAddress pa(0x12345);
    STATIC_REQUIRE(pa.get() == 0x12345);
    STATIC_REQUIRE(pa.page_base().get() == 0x12000);
    STATIC_REQUIRE(pa.page_offset() == 0x345);
    STATIC_REQUIRE(pa.offset(0x10).get() == 0x12355);
    STATIC_REQUIRE(pa.is_aligned(1) && pa.page_base().is_aligned(kPageSize) && !pa.is_aligned(2));
    STATIC_REQUIRE(pa.align_up(kPageSize).get() == 0x13000);
    STATIC_REQUIRE(PhysicalAddress().get() == 0 && PhysicalAddress().is_null());
    STATIC_REQUIRE(PhysicalAddress(1) < PhysicalAddress(2));
    STATIC_REQUIRE(PhysicalAddress(2) == PhysicalAddress(2));
    STATIC_REQUIRE(std::is_same_v<decltype(pa.offset(1)), const PhysicalAddress> ||
                   std::is_same_v<decltype(pa.offset(1)), PhysicalAddress>);

    // Strong types: no implicit conversions between them or from integers.
    STATIC_REQUIRE(!std::is_convertible_v<uint64_t, PhysicalAddress>);
    STATIC_REQUIRE(!std::is_convertible_v<PhysicalAddress, VirtualAddress>);
    STATIC_REQUIRE(!std::is_convertible_v<VirtualAddress, PhysicalAddress>);
    STATIC_REQUIRE(!std::is_convertible_v<PhysicalAddress, uint64_t>);
    STATIC_REQUIRE(std::is_trivially_copyable_v<PhysicalAddress>);

    int object = 42;
    const VirtualAddress va = VirtualAddress::from_ptr(&object);
    CHECK(va.as_ptr<int>() == &object);
    CHECK(*va.as_ptr<int>() == 42);
    CHECK(va.get() == reinterpret_cast<uintptr_t>(&object));
}
