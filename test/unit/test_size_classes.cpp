// Host tests for the kmalloc size classes.
#include <catch2/catch.hpp>

#include <cstdio>
#include <string>

#include "mm/size_classes.h"

TEST_CASE("size classes: 16 B to 2 KiB, multiples of 16, increasing", "[size_classes]")
{
    REQUIRE(mm::kSizeClassCount == 24);
    CHECK(mm::size_class_size(0) == mm::kSmallestSizeClass);
    CHECK(mm::size_class_size(mm::kSizeClassCount - 1) == mm::kLargestSizeClass);
    for (unsigned i = 0; i < mm::kSizeClassCount; ++i) {
        CHECK(mm::size_class_size(i) % 16 == 0);
        if (i > 0)
            CHECK(mm::size_class_size(i) > mm::size_class_size(i - 1));
        CHECK(std::string(mm::size_class_name(i)) == "kmalloc-" + std::to_string(mm::size_class_size(i)));
    }
    CHECK(std::string(mm::size_class_name(mm::kSizeClassCount)) == "kmalloc-?");
}

TEST_CASE("size classes: lookup gives the smallest class that holds the request", "[size_classes]")
{
    for (size_t size = 0; size <= mm::kLargestSizeClass; ++size) {
        unsigned expected = 0;
        while (mm::size_class_size(expected) < size)
            ++expected;
        INFO("size " << size);
        REQUIRE(mm::size_class_index(size) == expected);
        REQUIRE(mm::size_class_round_up(size) == mm::size_class_size(expected));
        REQUIRE(mm::size_class_fits(size));
    }
    CHECK_FALSE(mm::size_class_fits(mm::kLargestSizeClass + 1));
    static_assert(mm::size_class_index(1) == 0);
    static_assert(mm::size_class_index(17) == 1);
    static_assert(mm::size_class_index(257) == 12); // 320
    static_assert(mm::size_class_round_up(1025) == 1280);
    static_assert(mm::size_class_round_up(2048) == 2048);
}

TEST_CASE("size classes: average internal waste is under 12.5% for uniform requests", "[size_classes]")
{
    // Independent floating-point computation over requests 1..2048.
    double fraction_sum = 0;
    double requested = 0;
    double allocated = 0;
    double worst_above_128 = 0;
    for (size_t size = 1; size <= mm::kLargestSizeClass; ++size) {
        const double cls = static_cast<double>(mm::size_class_round_up(size));
        fraction_sum += (cls - static_cast<double>(size)) / cls;
        requested += static_cast<double>(size);
        allocated += cls;
        if (size > 128)
            worst_above_128 = std::max(worst_above_128, (cls - static_cast<double>(size)) / cls);
    }
    const double mean = fraction_sum / mm::kLargestSizeClass;
    const double by_bytes = 1.0 - requested / allocated;
    CHECK(mean < 0.125);
    CHECK(by_bytes < 0.125);
    CHECK(worst_above_128 < 0.20);

    // The integer figures the kernel can report agree.
    const mm::SizeClassWaste w = mm::size_class_waste();
    CHECK(w.requests == 2048);
    CHECK(w.requested_bytes == static_cast<uint64_t>(requested));
    CHECK(w.allocated_bytes == static_cast<uint64_t>(allocated));
    CHECK(std::abs(static_cast<double>(w.mean_waste_ppm) - mean * 1e6) <= 1.0);
    CHECK(std::abs(static_cast<double>(w.bytes_waste_ppm) - by_bytes * 1e6) <= 1.0);
    CHECK(w.mean_waste_ppm < 125000);
    CHECK(w.bytes_waste_ppm < 125000);
    CHECK(w.max_waste_ppm == 937500); // 1 byte in the 16-byte class
    // Recorded in the header comment: 8.37% mean, 7.66% by bytes.
    CHECK(w.mean_waste_ppm / 100 == 836);
    CHECK(w.bytes_waste_ppm / 100 == 766);

    CHECK(mm::size_class_waste(0).requests == 0);
    CHECK(mm::size_class_waste(mm::kLargestSizeClass + 1).requests == 0);
    CHECK(mm::size_class_waste(16).mean_waste_ppm == 468750); // (15 + 14 + ... + 0) / 16 / 16
}
