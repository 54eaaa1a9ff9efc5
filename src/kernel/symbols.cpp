#include "kernel/symbols.h"

// Format of .ksyms (all little-endian, 8-byte aligned; written by scripts/gen-ksyms.sh):
//   char     magic[8]   "AEKSYMS1"
//   uint64_t count
//   Entry    entries[count], sorted by address
//   names, NUL-terminated, pointed to by the entries
// The linker script brackets the section with __ksyms_start / __ksyms_end.

extern "C" const char __ksyms_start[];
extern "C" const char __ksyms_end[];

namespace kernel {

namespace {

struct Header {
    char magic[8];
    uint64_t count;
};

struct Entry {
    uint64_t address;
    uint64_t size; // 0: unknown (assembly labels); then the symbol runs to the next one
    const char* name;
};

static_assert(sizeof(Header) == 16 && sizeof(Entry) == 24);

constexpr char kMagic[8] = {'A', 'E', 'K', 'S', 'Y', 'M', 'S', '1'};

struct Table {
    const Entry* entries;
    size_t count;
};

// Validates the header against the section bounds; an unusable table reads as empty.
Table table()
{
    const auto start = reinterpret_cast<uintptr_t>(__ksyms_start);
    const auto end = reinterpret_cast<uintptr_t>(__ksyms_end);
    if (end < start || end - start < sizeof(Header) || start % alignof(Header) != 0)
        return {nullptr, 0};
    const auto* header = reinterpret_cast<const Header*>(__ksyms_start);
    for (size_t i = 0; i < sizeof(kMagic); ++i) {
        if (header->magic[i] != kMagic[i])
            return {nullptr, 0};
    }
    const uint64_t room = (end - start - sizeof(Header)) / sizeof(Entry);
    if (header->count > room)
        return {nullptr, 0};
    return {reinterpret_cast<const Entry*>(__ksyms_start + sizeof(Header)), static_cast<size_t>(header->count)};
}

bool equal(const char* a, const char* b)
{
    while (*a != '\0' && *a == *b) {
        ++a;
        ++b;
    }
    return *a == *b;
}

} // namespace

const char* symbolize(uint64_t addr, uint64_t* offset_out)
{
    const Table t = table();
    if (t.count == 0 || addr < t.entries[0].address)
        return nullptr;

    // The last entry whose address is <= addr.
    size_t lo = 0;
    size_t hi = t.count;
    while (hi - lo > 1) {
        const size_t mid = lo + (hi - lo) / 2;
        if (t.entries[mid].address <= addr)
            lo = mid;
        else
            hi = mid;
    }
    const Entry& e = t.entries[lo];
    const uint64_t offset = addr - e.address;
    if (e.size != 0 && offset >= e.size)
        return nullptr; // padding between functions, or an address past the image
    if (e.size == 0 && lo + 1 == t.count)
        return nullptr; // an unsized last symbol says nothing about what follows it
    if (offset_out != nullptr)
        *offset_out = offset;
    return e.name;
}

uint64_t symbol_address(const char* name)
{
    if (name == nullptr)
        return 0;
    const Table t = table();
    for (size_t i = 0; i < t.count; ++i) {
        if (equal(t.entries[i].name, name))
            return t.entries[i].address;
    }
    return 0;
}

size_t symbol_count() { return table().count; }

} // namespace kernel
