#include "lib/math.h"

namespace lib {

uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c, uint64_t* remainder)
{
    if (c == 0)
        return UINT64_MAX;
    // A 64x64->128 multiply is one instruction; a 128-bit division would be a libgcc call, so the
    // division is done by hand, one quotient bit at a time.
    const unsigned __int128 product = static_cast<unsigned __int128>(a) * b;
    const uint64_t high = static_cast<uint64_t>(product >> 64);
    const uint64_t low = static_cast<uint64_t>(product);
    if (high >= c)
        return UINT64_MAX;
    if (high == 0) {
        if (remainder)
            *remainder = low % c;
        return low / c;
    }
    uint64_t quotient = 0;
    uint64_t rest = high; // invariant: rest < c
    for (int bit = 63; bit >= 0; --bit) {
        const bool carry = (rest >> 63) != 0; // rest * 2 would need 65 bits
        rest = (rest << 1) | ((low >> bit) & 1);
        if (carry || rest >= c) {
            rest -= c; // exact modulo 2^64 even when the true value had a carry
            quotient |= 1ull << bit;
        }
    }
    if (remainder)
        *remainder = rest;
    return quotient;
}

} // namespace lib
