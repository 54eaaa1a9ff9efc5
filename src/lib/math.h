#pragma once
// Integer arithmetic the freestanding kernel cannot take from a library.
#include <stdint.h>

namespace lib {

// floor(a * b / c) without overflow in the product; UINT64_MAX if the quotient does not fit or
// c == 0. `remainder` (optional) receives (a * b) % c. A 64x64->128 multiply, then a division by
// hand: a 128-bit division would be a libgcc call.
uint64_t mul_div(uint64_t a, uint64_t b, uint64_t c, uint64_t* remainder = nullptr);

} // namespace lib
