// ACPI table parsing for power-off. See acpi_tables.h.
#include "kernel/acpi_tables.h"

#include "lib/format.h"

namespace kernel::acpi {

namespace {

// Offsets from the ACPI specification (6.5, sections 5.2.5 to 5.2.9).
constexpr size_t kRsdpV1Bytes = 20;
constexpr size_t kRsdpV2Bytes = 36;
constexpr size_t kRsdpRevision = 15;
constexpr size_t kRsdpRsdt = 16;
constexpr size_t kRsdpLength = 20;
constexpr size_t kRsdpXsdt = 24;

constexpr size_t kTableLength = 4;

constexpr size_t kFadtMinBytes = 116; // ACPI 1.0's FADT: everything up to and including Flags
constexpr size_t kFadtDsdt = 40;
constexpr size_t kFadtSmiCommand = 48;
constexpr size_t kFadtAcpiEnable = 52;
constexpr size_t kFadtPm1aControl = 64;
constexpr size_t kFadtPm1bControl = 68;
constexpr size_t kFadtFlags = 112;
constexpr size_t kFadtXDsdt = 140;
constexpr size_t kFadtXPm1aControl = 172;
constexpr size_t kFadtXPm1bControl = 184;
constexpr size_t kGasBytes = 12;
constexpr uint8_t kGasSystemIo = 1;
constexpr uint32_t kFlagHardwareReduced = 1u << 20;

constexpr uint8_t kAmlZero = 0x00;
constexpr uint8_t kAmlOne = 0x01;
constexpr uint8_t kAmlName = 0x08;
constexpr uint8_t kAmlBytePrefix = 0x0A;
constexpr uint8_t kAmlWordPrefix = 0x0B;
constexpr uint8_t kAmlDWordPrefix = 0x0C;
constexpr uint8_t kAmlQWordPrefix = 0x0E;
constexpr uint8_t kAmlPackage = 0x12;
constexpr uint8_t kAmlRootChar = 0x5C; // '\'
constexpr uint8_t kAmlOnes = 0xFF;

// Little-endian reads; the caller has checked the bounds.
uint64_t read_le(Bytes bytes, size_t offset, size_t width)
{
    uint64_t value = 0;
    for (size_t i = 0; i < width; ++i)
        value |= uint64_t{bytes[offset + i]} << (8 * i);
    return value;
}
uint32_t read_u32(Bytes bytes, size_t offset) { return static_cast<uint32_t>(read_le(bytes, offset, 4)); }
uint64_t read_u64(Bytes bytes, size_t offset) { return read_le(bytes, offset, 8); }

bool sums_to_zero(Bytes bytes)
{
    uint8_t sum = 0;
    for (uint8_t b : bytes)
        sum = static_cast<uint8_t>(sum + b);
    return sum == 0;
}

bool has_signature(Bytes bytes, const char* signature, size_t length)
{
    if (bytes.size() < length)
        return false;
    for (size_t i = 0; i < length; ++i)
        if (bytes[i] != static_cast<uint8_t>(signature[i]))
            return false;
    return true;
}

lib::Unexpected<Error> fail(Problem problem, const char* where)
{
    Error error;
    error.problem = problem;
    for (size_t i = 0; i < 4 && where[i] != '\0'; ++i)
        error.where[i] = where[i];
    return lib::unexpected(error);
}

// Looks through the entries of an RSDT (4-byte addresses) or XSDT (8-byte addresses).
Result<Bytes> find_in_root(const PhysicalReader& reader, Bytes root, size_t entry_bytes, const char* signature)
{
    const size_t count = (root.size() - kHeaderBytes) / entry_bytes;
    for (size_t i = 0; i < count; ++i) {
        const uint64_t address = read_le(root, kHeaderBytes + i * entry_bytes, entry_bytes);
        if (address == 0)
            continue;
        // Only the signature is looked at before choosing; the chosen table is then validated.
        const Bytes header = reader(address, kHeaderBytes);
        if (header.size() < kHeaderBytes || !has_signature(header, signature, 4))
            continue;
        return read_table(reader, address, signature);
    }
    return fail(Problem::Missing, signature);
}

// One AML integer element (ZeroOp, OneOp, OnesOp or a prefixed constant) at `offset`, not past
// `end`; advances offset.
bool decode_integer(Bytes aml, size_t& offset, size_t end, uint64_t& value)
{
    if (offset >= end)
        return false;
    const uint8_t op = aml[offset++];
    size_t width = 0;
    switch (op) {
    case kAmlZero: value = 0; return true;
    case kAmlOne: value = 1; return true;
    case kAmlOnes: value = ~uint64_t{0}; return true;
    case kAmlBytePrefix: width = 1; break;
    case kAmlWordPrefix: width = 2; break;
    case kAmlDWordPrefix: width = 4; break;
    case kAmlQWordPrefix: width = 8; break;
    default: return false;
    }
    if (end - offset < width)
        return false;
    value = read_le(aml, offset, width);
    offset += width;
    return true;
}

// The package after "_S5_" (at `offset`, which points at PackageOp).
Result<SleepType> decode_s5_package(Bytes aml, size_t offset)
{
    const size_t pkg_start = offset + 1; // PkgLength counts from its own first byte
    uint32_t length = 0;
    size_t encoding = 0;
    if (!decode_pkg_length(aml.subspan(pkg_start), length, encoding))
        return fail(Problem::Malformed, "_S5_");
    if (length < encoding + 1 || length > aml.size() - pkg_start)
        return fail(Problem::Malformed, "_S5_");
    const size_t end = pkg_start + length;
    size_t at = pkg_start + encoding;
    const uint8_t elements = aml[at++];
    if (elements == 0)
        return fail(Problem::Malformed, "_S5_");
    uint64_t a = 0;
    uint64_t b = 0;
    if (!decode_integer(aml, at, end, a))
        return fail(Problem::Malformed, "_S5_");
    if (elements >= 2) {
        if (!decode_integer(aml, at, end, b))
            return fail(Problem::Malformed, "_S5_");
    } else {
        b = a;
    }
    if (a > 7 || b > 7)
        return fail(Problem::Malformed, "_S5_"); // SLP_TYP has three bits
    return SleepType{static_cast<uint8_t>(a), static_cast<uint8_t>(b)};
}

} // namespace

const char* to_string(Problem problem)
{
    switch (problem) {
    case Problem::Missing: return "not found";
    case Problem::OutOfReach: return "lies outside the memory the Heartwood can read";
    case Problem::BadSignature: return "has the wrong signature";
    case Problem::BadLength: return "has an impossible length";
    case Problem::BadChecksum: return "checksum does not sum to zero";
    case Problem::Malformed: return "is not a package of small integers";
    case Problem::Unsupported: return "describes hardware this power-off cannot drive";
    }
    return "unknown problem";
}

const char* describe(const Error& error, char* out, size_t capacity)
{
    lib::format(out, capacity, "{}: {}", static_cast<const char*>(error.where), to_string(error.problem));
    return out;
}

Result<Rsdp> parse_rsdp(Bytes bytes)
{
    if (bytes.empty())
        return fail(Problem::Missing, "RSDP");
    if (bytes.size() < kRsdpV1Bytes)
        return fail(Problem::BadLength, "RSDP");
    if (!has_signature(bytes, "RSD PTR ", 8))
        return fail(Problem::BadSignature, "RSDP");
    if (!sums_to_zero(bytes.first(kRsdpV1Bytes)))
        return fail(Problem::BadChecksum, "RSDP");
    Rsdp rsdp;
    rsdp.revision = bytes[kRsdpRevision];
    rsdp.rsdt = read_u32(bytes, kRsdpRsdt);
    if (rsdp.revision >= 2) {
        if (bytes.size() < kRsdpV2Bytes)
            return fail(Problem::BadLength, "RSDP");
        const uint32_t length = read_u32(bytes, kRsdpLength);
        if (length < kRsdpV2Bytes || length > bytes.size())
            return fail(Problem::BadLength, "RSDP");
        if (!sums_to_zero(bytes.first(length)))
            return fail(Problem::BadChecksum, "RSDP");
        rsdp.xsdt = read_u64(bytes, kRsdpXsdt);
    }
    if (rsdp.rsdt == 0 && rsdp.xsdt == 0)
        return fail(Problem::Missing, "RSDT");
    return rsdp;
}

Result<Bytes> read_table(const PhysicalReader& reader, uint64_t phys, const char* signature)
{
    if (phys == 0)
        return fail(Problem::Missing, signature);
    const Bytes header = reader(phys, kHeaderBytes);
    if (header.size() < kHeaderBytes)
        return fail(Problem::OutOfReach, signature);
    if (!has_signature(header, signature, 4))
        return fail(Problem::BadSignature, signature);
    const uint32_t length = read_u32(header, kTableLength);
    if (length < kHeaderBytes || length > kMaxTableBytes)
        return fail(Problem::BadLength, signature);
    const Bytes table = reader(phys, length);
    if (table.size() < length)
        return fail(Problem::OutOfReach, signature);
    if (!sums_to_zero(table))
        return fail(Problem::BadChecksum, signature);
    return table;
}

Result<Bytes> find_table(const PhysicalReader& reader, const Rsdp& rsdp, const char* signature)
{
    if (rsdp.xsdt != 0) {
        auto xsdt = read_table(reader, rsdp.xsdt, "XSDT");
        if (xsdt)
            return find_in_root(reader, *xsdt, 8, signature);
        if (rsdp.rsdt == 0)
            return lib::unexpected(xsdt.error());
    }
    auto rsdt = read_table(reader, rsdp.rsdt, "RSDT");
    if (!rsdt)
        return lib::unexpected(rsdt.error());
    return find_in_root(reader, *rsdt, 4, signature);
}

Result<Fadt> parse_fadt(Bytes table)
{
    if (table.size() < kFadtMinBytes)
        return fail(Problem::BadLength, "FACP");
    Fadt fadt;
    fadt.revision = table[8];
    fadt.smi_command = read_u32(table, kFadtSmiCommand);
    fadt.acpi_enable = table[kFadtAcpiEnable];
    fadt.hardware_reduced = (read_u32(table, kFadtFlags) & kFlagHardwareReduced) != 0;
    fadt.dsdt = read_u32(table, kFadtDsdt);
    if (table.size() >= kFadtXDsdt + 8 && read_u64(table, kFadtXDsdt) != 0)
        fadt.dsdt = read_u64(table, kFadtXDsdt);

    // X_PM1x_CNT_BLK (a Generic Address Structure) wins when it is present and non-zero.
    struct Choice {
        Pm1Control control;
        bool unsupported = false;
    };
    auto choose = [&](size_t legacy_offset, size_t gas_offset) {
        Choice choice;
        const uint32_t legacy = read_u32(table, legacy_offset);
        if (table.size() >= gas_offset + kGasBytes) {
            const uint64_t address = read_u64(table, gas_offset + 4);
            if (address != 0) {
                if (table[gas_offset] == kGasSystemIo && address <= 0xFFFF) {
                    choice.control.port = static_cast<uint16_t>(address);
                    return choice;
                }
                choice.unsupported = true; // memory-mapped or out of the port range
            }
        }
        if (legacy != 0 && legacy <= 0xFFFF) {
            choice.control.port = static_cast<uint16_t>(legacy);
            choice.unsupported = false;
        } else if (legacy != 0) {
            choice.unsupported = true;
        }
        return choice;
    };
    const Choice a = choose(kFadtPm1aControl, kFadtXPm1aControl);
    const Choice b = choose(kFadtPm1bControl, kFadtXPm1bControl);
    fadt.pm1a_control = a.control;
    fadt.pm1b_control = b.control;
    if (!fadt.hardware_reduced) {
        if (!a.control.present())
            return fail(a.unsupported ? Problem::Unsupported : Problem::Missing, "FACP");
        if (b.unsupported)
            return fail(Problem::Unsupported, "FACP");
    }
    return fadt;
}

bool decode_pkg_length(Bytes bytes, uint32_t& length, size_t& encoding_bytes)
{
    if (bytes.empty())
        return false;
    const uint8_t lead = bytes[0];
    const size_t follow = lead >> 6;
    if (follow == 0) {
        length = lead & 0x3F;
        encoding_bytes = 1;
        return true;
    }
    if ((lead & 0x30) != 0 || bytes.size() < 1 + follow)
        return false; // bits 5..4 are reserved
    uint32_t value = lead & 0x0F;
    for (size_t i = 0; i < follow; ++i)
        value |= uint32_t{bytes[1 + i]} << (4 + 8 * i);
    length = value;
    encoding_bytes = 1 + follow;
    return true;
}

Result<SleepType> find_s5(Bytes dsdt)
{
    if (dsdt.size() < kHeaderBytes)
        return fail(Problem::BadLength, "DSDT");
    bool seen_name = false;
    for (size_t i = kHeaderBytes; i + 5 <= dsdt.size(); ++i) {
        if (!has_signature(dsdt.subspan(i), "_S5_", 4))
            continue;
        // `Name (_S5_, ...)` or `Name (\_S5_, ...)`; other uses of the name are not the object.
        const bool named =
            (i >= 1 && dsdt[i - 1] == kAmlName) || (i >= 2 && dsdt[i - 1] == kAmlRootChar && dsdt[i - 2] == kAmlName);
        if (!named)
            continue;
        seen_name = true;
        if (dsdt[i + 4] != kAmlPackage)
            continue;
        return decode_s5_package(dsdt, i + 4);
    }
    return fail(seen_name ? Problem::Malformed : Problem::Missing, "_S5_");
}

Result<PowerOffPlan> plan_power_off(const PhysicalReader& reader, Bytes rsdp_bytes)
{
    PowerOffPlan plan;
    auto rsdp = parse_rsdp(rsdp_bytes);
    if (!rsdp)
        return lib::unexpected(rsdp.error());
    plan.rsdp = *rsdp;
    auto facp = find_table(reader, plan.rsdp, "FACP");
    if (!facp)
        return lib::unexpected(facp.error());
    auto fadt = parse_fadt(*facp);
    if (!fadt)
        return lib::unexpected(fadt.error());
    plan.fadt = *fadt;
    if (plan.fadt.hardware_reduced)
        return fail(Problem::Unsupported, "FACP");
    auto dsdt = read_table(reader, plan.fadt.dsdt, "DSDT");
    if (!dsdt)
        return lib::unexpected(dsdt.error());
    auto s5 = find_s5(*dsdt);
    if (!s5)
        return lib::unexpected(s5.error());
    plan.s5 = *s5;
    return plan;
}

} // namespace kernel::acpi
