// ACPI table parsing for power-off: synthetic RSDP/XSDT/RSDT/FADT/DSDT laid out in a fake physical
// memory, then each kind of damage the parser promises to name, then random bytes it must survive.
#include <catch2/catch.hpp>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "kernel/acpi_tables.h"

using namespace kernel::acpi;

namespace Catch {
template <>
struct StringMaker<Problem> {
    static std::string convert(Problem problem) { return to_string(problem); }
};
} // namespace Catch

namespace {

using ByteVec = std::vector<uint8_t>;

void put_le(ByteVec& v, size_t offset, uint64_t value, size_t width)
{
    if (v.size() < offset + width)
        v.resize(offset + width);
    for (size_t i = 0; i < width; ++i)
        v[offset + i] = static_cast<uint8_t>(value >> (8 * i));
}

uint8_t checksum_fix(const ByteVec& v, size_t begin, size_t end, size_t skip)
{
    uint8_t sum = 0;
    for (size_t i = begin; i < end; ++i)
        if (i != skip)
            sum = static_cast<uint8_t>(sum + v[i]);
    return static_cast<uint8_t>(0x100 - sum);
}

// A whole table: header (signature, length, revision, checksum, OEM fields) + body.
ByteVec table(const char* signature, const ByteVec& body, uint8_t revision = 1)
{
    ByteVec t(kHeaderBytes, 0);
    std::memcpy(t.data(), signature, 4);
    put_le(t, 4, kHeaderBytes + body.size(), 4);
    t[8] = revision;
    std::memcpy(t.data() + 10, "AETHEL", 6);
    std::memcpy(t.data() + 16, "HEARTWD ", 8);
    t.insert(t.end(), body.begin(), body.end());
    t[9] = checksum_fix(t, 0, t.size(), 9);
    return t;
}

ByteVec rsdp_v1(uint32_t rsdt)
{
    ByteVec r(20, 0);
    std::memcpy(r.data(), "RSD PTR ", 8);
    std::memcpy(r.data() + 9, "AETHEL", 6);
    r[15] = 0;
    put_le(r, 16, rsdt, 4);
    r[8] = checksum_fix(r, 0, 20, 8);
    return r;
}

ByteVec rsdp_v2(uint32_t rsdt, uint64_t xsdt)
{
    ByteVec r(36, 0);
    std::memcpy(r.data(), "RSD PTR ", 8);
    std::memcpy(r.data() + 9, "AETHEL", 6);
    r[15] = 2;
    put_le(r, 16, rsdt, 4);
    put_le(r, 20, 36, 4);
    put_le(r, 24, xsdt, 8);
    r[8] = checksum_fix(r, 0, 20, 8);
    r[32] = checksum_fix(r, 0, 36, 32);
    return r;
}

// FADT body (offsets from the table start minus the header). `length` is the whole table's.
struct FadtSpec {
    size_t length = 276; // ACPI 6
    uint32_t dsdt = 0;
    uint64_t x_dsdt = 0;
    uint32_t smi_cmd = 0xB2;
    uint8_t acpi_enable = 0xF1;
    uint32_t pm1a_cnt = 0x604;
    uint32_t pm1b_cnt = 0;
    uint8_t x_pm1a_space = 1;
    uint64_t x_pm1a = 0;
    uint64_t x_pm1b = 0;
    uint32_t flags = 0;
};

ByteVec fadt(const FadtSpec& s)
{
    ByteVec full(s.length, 0);
    put_le(full, 40, s.dsdt, 4);
    put_le(full, 48, s.smi_cmd, 4);
    full[52] = s.acpi_enable;
    put_le(full, 64, s.pm1a_cnt, 4);
    put_le(full, 68, s.pm1b_cnt, 4);
    full[89] = 2; // PM1_CNT_LEN
    put_le(full, 112, s.flags, 4);
    if (s.length >= 148)
        put_le(full, 140, s.x_dsdt, 8);
    if (s.length >= 184) {
        full[172] = s.x_pm1a_space;
        full[173] = 16;
        put_le(full, 176, s.x_pm1a, 8);
    }
    if (s.length >= 196) {
        full[184] = 1;
        put_le(full, 188, s.x_pm1b, 8);
    }
    full.resize(s.length);
    return table("FACP", ByteVec(full.begin() + kHeaderBytes, full.end()), 6);
}

// AML: Name (\_S5_, Package (4) { a, b, Zero, Zero }) with the given element encodings.
ByteVec s5_name(const ByteVec& elements, uint8_t count, bool root = false)
{
    ByteVec aml{0x08};
    if (root)
        aml.push_back('\\');
    aml.insert(aml.end(), {'_', 'S', '5', '_', 0x12});
    const size_t length = 1 + 1 + elements.size(); // PkgLength (one byte) + NumElements + elements
    REQUIRE(length < 64);
    aml.push_back(static_cast<uint8_t>(length));
    aml.push_back(count);
    aml.insert(aml.end(), elements.begin(), elements.end());
    return aml;
}

// Some AML before \_S5_ so the search has to walk: a Scope (\_SB) with a Name inside.
ByteVec dsdt(const ByteVec& s5_aml)
{
    ByteVec body{0x10, 0x0B, '\\', '_', 'S', 'B', '_', 0x08, 'F', 'O', 'O', '_', 0x0A, 0x42};
    body.insert(body.end(), s5_aml.begin(), s5_aml.end());
    body.insert(body.end(), {0x14, 0x06, '_', 'P', 'T', 'S', 0x01, 0xA3}); // Method (_PTS, 1) { Noop }
    return table("DSDT", body, 2);
}

// Fake physical memory: tables placed at fixed addresses; the reader refuses what is outside.
struct Memory {
    ByteVec bytes = ByteVec(0x20000, 0);
    void place(uint64_t phys, const ByteVec& t)
    {
        REQUIRE(phys + t.size() <= bytes.size());
        std::memcpy(bytes.data() + phys, t.data(), t.size());
    }
    static Bytes read(void* context, uint64_t phys, size_t length)
    {
        auto* self = static_cast<Memory*>(context);
        if (phys >= self->bytes.size() || length > self->bytes.size() - phys)
            return {};
        return Bytes(self->bytes.data() + phys, length);
    }
    PhysicalReader reader() { return PhysicalReader{&Memory::read, this}; }
};

constexpr uint64_t kXsdt = 0x1000;
constexpr uint64_t kRsdt = 0x2000;
constexpr uint64_t kApic = 0x3000;
constexpr uint64_t kFacp = 0x4000;
constexpr uint64_t kDsdt = 0x5000;

ByteVec root(const char* signature, std::initializer_list<uint64_t> entries, size_t width)
{
    ByteVec body;
    for (uint64_t e : entries)
        put_le(body, body.size(), e, width);
    return table(signature, body);
}

// A QEMU-like machine: XSDT and RSDT both listing an APIC table and the FADT.
Memory machine(const ByteVec& dsdt_table, FadtSpec spec = {})
{
    Memory m;
    m.place(kXsdt, root("XSDT", {kApic, kFacp}, 8));
    m.place(kRsdt, root("RSDT", {kApic, kFacp}, 4));
    m.place(kApic, table("APIC", ByteVec(8, 0)));
    if (spec.dsdt == 0 && spec.x_dsdt == 0)
        spec.dsdt = kDsdt;
    m.place(kFacp, fadt(spec));
    m.place(kDsdt, dsdt_table);
    return m;
}

ByteVec qemu_dsdt() { return dsdt(s5_name({0x00, 0x00, 0x00, 0x00}, 4)); }

std::string describe_error(const Error& e)
{
    char buf[96];
    return describe(e, buf, sizeof(buf));
}

} // namespace

TEST_CASE("acpi: RSDP revisions and damage", "[acpi]")
{
    const ByteVec v1 = rsdp_v1(0x2000);
    auto r1 = parse_rsdp(Bytes(v1.data(), v1.size()));
    REQUIRE(r1);
    CHECK(r1->revision == 0);
    CHECK(r1->rsdt == 0x2000);
    CHECK(r1->xsdt == 0);

    const ByteVec v2 = rsdp_v2(0x2000, 0x1000);
    auto r2 = parse_rsdp(Bytes(v2.data(), v2.size()));
    REQUIRE(r2);
    CHECK(r2->revision == 2);
    CHECK(r2->xsdt == 0x1000);

    CHECK(parse_rsdp(Bytes()).error().problem == Problem::Missing);
    CHECK(parse_rsdp(Bytes(v1.data(), 19)).error().problem == Problem::BadLength);
    CHECK(parse_rsdp(Bytes(v2.data(), 20)).error().problem == Problem::BadLength); // revision 2 cut short

    ByteVec bad = v1;
    bad[0] = 'X';
    CHECK(parse_rsdp(Bytes(bad.data(), bad.size())).error().problem == Problem::BadSignature);
    bad = v1;
    bad[16] ^= 1;
    auto e = parse_rsdp(Bytes(bad.data(), bad.size()));
    CHECK(e.error().problem == Problem::BadChecksum);
    CHECK(describe_error(e.error()) == "RSDP: checksum does not sum to zero");

    bad = v2;
    bad[24] ^= 1; // only the extended checksum covers the XSDT address
    CHECK(parse_rsdp(Bytes(bad.data(), bad.size())).error().problem == Problem::BadChecksum);

    bad = v2;
    put_le(bad, 20, 40, 4); // claims more bytes than the copy holds
    bad[8] = checksum_fix(bad, 0, 20, 8);
    CHECK(parse_rsdp(Bytes(bad.data(), bad.size())).error().problem == Problem::BadLength);

    const ByteVec none = rsdp_v1(0);
    CHECK(parse_rsdp(Bytes(none.data(), none.size())).error().problem == Problem::Missing);
}

TEST_CASE("acpi: table headers are checked before use", "[acpi]")
{
    Memory m;
    const ByteVec apic = table("APIC", ByteVec(8, 0x11));
    m.place(0x100, apic);
    auto ok = read_table(m.reader(), 0x100, "APIC");
    REQUIRE(ok);
    CHECK(ok->size() == apic.size());

    CHECK(read_table(m.reader(), 0x100, "FACP").error().problem == Problem::BadSignature);
    CHECK(read_table(m.reader(), 0, "APIC").error().problem == Problem::Missing);
    CHECK(read_table(m.reader(), 0x100000, "APIC").error().problem == Problem::OutOfReach);

    ByteVec bad = apic;
    bad[40] ^= 0xFF;
    m.place(0x200, bad);
    auto e = read_table(m.reader(), 0x200, "APIC");
    CHECK(e.error().problem == Problem::BadChecksum);
    CHECK(std::string(e.error().where) == "APIC");

    bad = apic;
    put_le(bad, 4, 20, 4); // shorter than the header
    m.place(0x300, bad);
    CHECK(read_table(m.reader(), 0x300, "APIC").error().problem == Problem::BadLength);
    put_le(bad, 4, kMaxTableBytes + 1, 4);
    m.place(0x300, bad);
    CHECK(read_table(m.reader(), 0x300, "APIC").error().problem == Problem::BadLength);

    // A length running past the end of readable memory.
    bad = apic;
    put_le(bad, 4, 0x1000, 4);
    m.place(m.bytes.size() - bad.size(), bad);
    CHECK(read_table(m.reader(), m.bytes.size() - bad.size(), "APIC").error().problem == Problem::OutOfReach);
}

TEST_CASE("acpi: the FADT is found through the XSDT, else the RSDT", "[acpi]")
{
    Memory m = machine(qemu_dsdt());
    const Rsdp via_xsdt{2, static_cast<uint32_t>(kRsdt), kXsdt};
    auto f = find_table(m.reader(), via_xsdt, "FACP");
    REQUIRE(f);
    CHECK(f->data() == m.bytes.data() + kFacp);

    const Rsdp via_rsdt{0, static_cast<uint32_t>(kRsdt), 0};
    REQUIRE(find_table(m.reader(), via_rsdt, "FACP"));

    CHECK(find_table(m.reader(), via_xsdt, "HPET").error().problem == Problem::Missing);
    CHECK(std::string(find_table(m.reader(), via_xsdt, "HPET").error().where) == "HPET");

    // A damaged XSDT: the RSDT is used instead; without an RSDT the XSDT's error is reported.
    m.bytes[kXsdt + 36] ^= 0x40;
    REQUIRE(find_table(m.reader(), via_xsdt, "FACP"));
    const Rsdp xsdt_only{2, 0, kXsdt};
    auto e = find_table(m.reader(), xsdt_only, "FACP");
    CHECK(e.error().problem == Problem::BadChecksum);
    CHECK(std::string(e.error().where) == "XSDT");

    // Entries that point nowhere (0, or outside memory) are skipped.
    Memory n = machine(qemu_dsdt());
    n.place(kXsdt, root("XSDT", {0, 0x7fff'ffff'0000ull, kFacp}, 8));
    REQUIRE(find_table(n.reader(), xsdt_only, "FACP"));
}

TEST_CASE("acpi: FADT fields, legacy and extended", "[acpi]")
{
    SECTION("ACPI 1.0: 116 bytes, 32-bit DSDT and PM1a_CNT_BLK")
    {
        FadtSpec spec;
        spec.length = 116;
        spec.dsdt = 0x5000;
        spec.pm1a_cnt = 0xB004;
        const ByteVec t = fadt(spec);
        auto f = parse_fadt(Bytes(t.data(), t.size()));
        REQUIRE(f);
        CHECK(f->dsdt == 0x5000);
        CHECK(f->pm1a_control.port == 0xB004);
        CHECK(!f->pm1b_control.present());
        CHECK(f->smi_command == 0xB2);
        CHECK(f->acpi_enable == 0xF1);
        CHECK(!f->hardware_reduced);
    }
    SECTION("X_DSDT and X_PM1a_CNT_BLK win when present")
    {
        FadtSpec spec;
        spec.dsdt = 0x5000;
        spec.x_dsdt = 0x1'2345'0000ull;
        spec.pm1a_cnt = 0x604;
        spec.x_pm1a = 0x404;
        spec.x_pm1b = 0x408;
        const ByteVec t = fadt(spec);
        auto f = parse_fadt(Bytes(t.data(), t.size()));
        REQUIRE(f);
        CHECK(f->dsdt == 0x1'2345'0000ull);
        CHECK(f->pm1a_control.port == 0x404);
        CHECK(f->pm1b_control.port == 0x408);
    }
    SECTION("a memory-space X_PM1a_CNT_BLK falls back to the port, or is unsupported")
    {
        FadtSpec spec;
        spec.x_pm1a_space = 0;
        spec.x_pm1a = 0xFED0'0000;
        spec.pm1a_cnt = 0x604;
        ByteVec t = fadt(spec);
        auto f = parse_fadt(Bytes(t.data(), t.size()));
        REQUIRE(f);
        CHECK(f->pm1a_control.port == 0x604);
        spec.pm1a_cnt = 0;
        t = fadt(spec);
        CHECK(parse_fadt(Bytes(t.data(), t.size())).error().problem == Problem::Unsupported);
    }
    SECTION("no PM1a control block, a short FADT")
    {
        FadtSpec spec;
        spec.pm1a_cnt = 0;
        ByteVec t = fadt(spec);
        CHECK(parse_fadt(Bytes(t.data(), t.size())).error().problem == Problem::Missing);
        spec = {};
        spec.length = 100;
        t = fadt(spec);
        CHECK(parse_fadt(Bytes(t.data(), t.size())).error().problem == Problem::BadLength);
    }
    SECTION("hardware-reduced ACPI has no PM1 ports to write: the plan says so")
    {
        FadtSpec spec;
        spec.flags = 1u << 20;
        spec.pm1a_cnt = 0;
        Memory m = machine(qemu_dsdt(), spec);
        const ByteVec r = rsdp_v2(kRsdt, kXsdt);
        auto plan = plan_power_off(m.reader(), Bytes(r.data(), r.size()));
        CHECK(plan.error().problem == Problem::Unsupported);
        CHECK(std::string(plan.error().where) == "FACP");
    }
}

TEST_CASE("acpi: AML PkgLength encodings", "[acpi]")
{
    uint32_t length = 0;
    size_t used = 0;
    const uint8_t one[] = {0x3F};
    REQUIRE(decode_pkg_length(Bytes(one, 1), length, used));
    CHECK(length == 0x3F);
    CHECK(used == 1);
    const uint8_t two[] = {0x4A, 0x12}; // 0xA | 0x12 << 4
    REQUIRE(decode_pkg_length(Bytes(two, 2), length, used));
    CHECK(length == 0x12A);
    CHECK(used == 2);
    const uint8_t three[] = {0x85, 0x34, 0x12};
    REQUIRE(decode_pkg_length(Bytes(three, 3), length, used));
    CHECK(length == 0x12345);
    CHECK(used == 3);
    const uint8_t four[] = {0xC1, 0xEF, 0xCD, 0xAB};
    REQUIRE(decode_pkg_length(Bytes(four, 4), length, used));
    CHECK(length == 0xABCDEF1);
    CHECK(used == 4);
    const uint8_t reserved[] = {0x5A, 0x12}; // bits 5..4 set with following bytes
    CHECK(!decode_pkg_length(Bytes(reserved, 2), length, used));
    CHECK(!decode_pkg_length(Bytes(three, 2), length, used)); // cut off
    CHECK(!decode_pkg_length(Bytes(), length, used));
}

TEST_CASE("acpi: \\_S5_ in every integer encoding", "[acpi]")
{
    struct Case {
        const char* what;
        ByteVec aml;
        uint8_t a, b;
    };
    const Case cases[] = {
        {"QEMU: Zero, Zero", s5_name({0x00, 0x00, 0x00, 0x00}, 4), 0, 0},
        {"BytePrefix 5, BytePrefix 5", s5_name({0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00}, 4), 5, 5},
        {"One, BytePrefix 7", s5_name({0x01, 0x0A, 0x07, 0x00, 0x00}, 4), 1, 7},
        {"root prefix \\_S5_", s5_name({0x0A, 0x06, 0x00, 0x00, 0x00}, 4, true), 6, 0},
        {"WordPrefix and DWordPrefix", s5_name({0x0B, 0x03, 0x00, 0x0C, 0x04, 0, 0, 0}, 2), 3, 4},
        {"QWordPrefix", s5_name({0x0E, 2, 0, 0, 0, 0, 0, 0, 0, 0x00}, 2), 2, 0},
        {"one element: SLP_TYPb = SLP_TYPa", s5_name({0x0A, 0x05}, 1), 5, 5},
    };
    for (const Case& c : cases) {
        INFO(c.what);
        const ByteVec t = dsdt(c.aml);
        auto s5 = find_s5(Bytes(t.data(), t.size()));
        REQUIRE(s5);
        CHECK(s5->slp_typa == c.a);
        CHECK(s5->slp_typb == c.b);
    }

    SECTION("a two-byte PkgLength")
    {
        ByteVec aml{0x08, '_', 'S', '5', '_', 0x12};
        ByteVec elements{0x0A, 0x05, 0x0A, 0x05};
        elements.resize(70, 0x00); // pad with Zero elements past 63 bytes
        const size_t length = 2 + 1 + elements.size();
        aml.push_back(static_cast<uint8_t>(0x40 | (length & 0x0F)));
        aml.push_back(static_cast<uint8_t>(length >> 4));
        aml.push_back(static_cast<uint8_t>(elements.size()));
        aml.insert(aml.end(), elements.begin(), elements.end());
        const ByteVec t = dsdt(aml);
        auto s5 = find_s5(Bytes(t.data(), t.size()));
        REQUIRE(s5);
        CHECK(s5->slp_typa == 5);
    }
    SECTION("the name elsewhere than in Name() is not the object")
    {
        // A string "_S5_" and a reference to it (Store (\_S5_, Local0)) before the real Name.
        ByteVec aml{0x0D, '_', 'S', '5', '_', 0x00, 0x70, '_', 'S', '5', '_', 0x60};
        const ByteVec real = s5_name({0x0A, 0x03, 0x0A, 0x04}, 2);
        aml.insert(aml.end(), real.begin(), real.end());
        const ByteVec t = dsdt(aml);
        auto s5 = find_s5(Bytes(t.data(), t.size()));
        REQUIRE(s5);
        CHECK(s5->slp_typa == 3);
        CHECK(s5->slp_typb == 4);
    }
}

TEST_CASE("acpi: malformed \\_S5_ packages are errors", "[acpi]")
{
    auto problem_of = [](const ByteVec& aml) {
        const ByteVec t = dsdt(aml);
        auto s5 = find_s5(Bytes(t.data(), t.size()));
        REQUIRE(!s5);
        CHECK(std::string(s5.error().where) == "_S5_");
        return s5.error().problem;
    };
    CHECK(problem_of({}) == Problem::Missing);
    CHECK(problem_of(s5_name({0x0A, 0x08, 0x00}, 2)) == Problem::Malformed);         // 8 > 3 bits
    CHECK(problem_of(s5_name({0x0B, 0x00, 0x01, 0x00}, 2)) == Problem::Malformed);   // 0x100
    CHECK(problem_of(s5_name({}, 0)) == Problem::Malformed);                         // no elements
    CHECK(problem_of(s5_name({0x0D, 'x', 0x00, 0x00}, 2)) == Problem::Malformed);    // a string
    CHECK(problem_of({0x08, '_', 'S', '5', '_', 0x0A, 0x05}) == Problem::Malformed); // not a package
    // PkgLength claims more than the table holds; and an element cut by the package's end.
    CHECK(problem_of({0x08, '_', 'S', '5', '_', 0x12, 0x3F, 0x02, 0x0A}) == Problem::Malformed);
    CHECK(problem_of({0x08, '_', 'S', '5', '_', 0x12, 0x03, 0x02, 0x0A, 0x05, 0x0A, 0x05}) == Problem::Malformed);

    // The package at the very end of the table, its element bytes cut off by the table's end.
    ByteVec t = table("DSDT", {0x08, '_', 'S', '5', '_', 0x12, 0x04, 0x02, 0x0A});
    auto s5 = find_s5(Bytes(t.data(), t.size()));
    CHECK(s5.error().problem == Problem::Malformed);
    CHECK(find_s5(Bytes(t.data(), 20)).error().problem == Problem::BadLength);
}

TEST_CASE("acpi: the whole walk gives the PM1 values to write", "[acpi]")
{
    SECTION("QEMU-like: SLP_TYPa 0 -> 0x2000 at 0x604, through the XSDT")
    {
        Memory m = machine(qemu_dsdt());
        const ByteVec r = rsdp_v2(kRsdt, kXsdt);
        auto plan = plan_power_off(m.reader(), Bytes(r.data(), r.size()));
        REQUIRE(plan);
        CHECK(plan->fadt.pm1a_control.port == 0x604);
        CHECK(plan->pm1a_value() == 0x2000);
        CHECK(!plan->fadt.pm1b_control.present());
    }
    SECTION("SLP_TYP 5 and a PM1b block, ACPI 1.0 through the RSDT")
    {
        FadtSpec spec;
        spec.length = 116;
        spec.pm1a_cnt = 0x4004;
        spec.pm1b_cnt = 0x4104;
        Memory m = machine(dsdt(s5_name({0x0A, 0x05, 0x0A, 0x06, 0x00, 0x00}, 4)), spec);
        const ByteVec r = rsdp_v1(kRsdt);
        auto plan = plan_power_off(m.reader(), Bytes(r.data(), r.size()));
        REQUIRE(plan);
        CHECK(plan->pm1a_value() == 0x3400);
        CHECK(plan->pm1b_value() == 0x3800);
        CHECK(plan->fadt.pm1b_control.port == 0x4104);
    }
    SECTION("each broken link is named")
    {
        const ByteVec r = rsdp_v2(kRsdt, kXsdt);
        Memory m = machine(qemu_dsdt());
        m.bytes[kDsdt + 40] ^= 1;
        auto plan = plan_power_off(m.reader(), Bytes(r.data(), r.size()));
        CHECK(describe_error(plan.error()) == "DSDT: checksum does not sum to zero");

        m = machine(qemu_dsdt());
        m.bytes[kFacp + 50] ^= 1;
        CHECK(std::string(plan_power_off(m.reader(), Bytes(r.data(), r.size())).error().where) == "FACP");

        m = machine(dsdt({}));
        CHECK(describe_error(plan_power_off(m.reader(), Bytes(r.data(), r.size())).error()) == "_S5_: not found");

        FadtSpec spec;
        spec.x_dsdt = 0x8000'0000ull; // outside the readable memory
        m = machine(qemu_dsdt(), spec);
        CHECK(plan_power_off(m.reader(), Bytes(r.data(), r.size())).error().problem == Problem::OutOfReach);

        CHECK(plan_power_off(m.reader(), Bytes()).error().problem == Problem::Missing);
    }
}

TEST_CASE("acpi: random bytes and random damage never read out of bounds", "[acpi]")
{
    std::mt19937_64 rng(0xAE7E105);
    // Random AML after a valid header, with "_S5_" names planted at random places to reach the
    // package decoder often.
    for (int round = 0; round < 20000; ++round) {
        ByteVec body(rng() % 96);
        for (auto& b : body)
            b = static_cast<uint8_t>(rng());
        if (body.size() > 8 && rng() % 2 == 0) {
            const size_t at = rng() % (body.size() - 6);
            const uint8_t name[] = {0x08, '_', 'S', '5', '_', 0x12};
            std::memcpy(body.data() + at, name, 6);
        }
        const ByteVec t = table("DSDT", body);
        auto s5 = find_s5(Bytes(t.data(), t.size()));
        if (s5) {
            CHECK(s5->slp_typa <= 7);
            CHECK(s5->slp_typb <= 7);
        }
        uint32_t length = 0;
        size_t used = 0;
        if (decode_pkg_length(Bytes(body.data(), body.size()), length, used))
            CHECK(used <= body.size());
    }
    // A valid machine with random bytes flipped anywhere in its tables, the RSDP included.
    const Memory pristine = machine(dsdt(s5_name({0x0A, 0x05, 0x0A, 0x05, 0x00, 0x00}, 4)));
    const ByteVec pristine_rsdp = rsdp_v2(kRsdt, kXsdt);
    const uint64_t regions[] = {kXsdt, kRsdt, kApic, kFacp, kDsdt};
    int planned = 0;
    for (int round = 0; round < 5000; ++round) {
        Memory m = pristine;
        ByteVec r = pristine_rsdp;
        const int flips = 1 + static_cast<int>(rng() % 4);
        for (int i = 0; i < flips; ++i) {
            if (rng() % 8 == 0) {
                r[rng() % r.size()] = static_cast<uint8_t>(rng());
            } else {
                const uint64_t base = regions[rng() % 5];
                m.bytes[base + rng() % 300] = static_cast<uint8_t>(rng());
            }
        }
        auto plan = plan_power_off(m.reader(), Bytes(r.data(), r.size()));
        if (plan) {
            ++planned;
            CHECK(plan->fadt.pm1a_control.present());
            CHECK(plan->s5.slp_typa <= 7);
        } else {
            CHECK(!describe_error(plan.error()).empty());
        }
    }
    // Flips in the unused parts of tables (padding past their ends) leave a valid walk.
    CHECK(planned > 0);
}
