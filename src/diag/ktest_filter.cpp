#include "diag/ktest.h"

namespace kernel::ktest {

namespace {

// Iterative glob with single-star backtracking: linear in practice, no recursion.
bool glob(const char* pattern, const char* text)
{
    const char* star = nullptr;
    const char* resume = nullptr;
    while (*text) {
        if (*pattern == '*') {
            star = pattern++;
            resume = text;
        } else if (*pattern == *text) {
            ++pattern;
            ++text;
        } else if (star) {
            pattern = star + 1;
            text = ++resume;
        } else {
            return false;
        }
    }
    while (*pattern == '*')
        ++pattern;
    return *pattern == '\0';
}

} // namespace

bool matches_filter(const char* filter, const char* suite, const char* name)
{
    if (!filter || !*filter)
        return true;
    char full[128];
    lib::format(full, sizeof(full), "{}.{}", suite, name);
    // A bare suite name ("boot") selects the whole suite.
    char suite_only[128];
    lib::format(suite_only, sizeof(suite_only), "{}.*", filter);
    return glob(filter, full) || glob(suite_only, full);
}

} // namespace kernel::ktest
