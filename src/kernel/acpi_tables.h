#pragma once
// ACPI table parsing for the Heartwood's power-off: from the RSDP to the FADT's PM1 control ports
// and the DSDT's \_S5_ sleep type. Generic code: everything is read through a PhysicalReader, so
// the kernel reads the physmap (kernel/acpi.cpp) and the host tests read synthetic tables.
//
//   auto plan = kernel::acpi::plan_power_off(reader, boot_info().rsdp.data());
//   if (!plan) print(kernel::acpi::describe(plan.error()))   // e.g. "DSDT: checksum is not zero"
//   else       write plan->s5.slp_typa << 10 | SLP_EN to plan->pm1a_control ...
//
// Every length, offset and checksum is checked before a byte is trusted: a bad table is an Error,
// never a read out of bounds.
//
// ## The walk
//   RSDP (from Multiboot2): "RSD PTR ", checksum of the first 20 bytes; revision >= 2 adds the
//     Length field, the XSDT address and an extended checksum over Length bytes.
//   XSDT (64-bit entries) when the RSDP has one, else RSDT (32-bit entries); an XSDT that fails
//     validation falls back to the RSDT when there is one.
//   FADT ("FACP"): SMI_CMD, ACPI_ENABLE, PM1a/PM1b_CNT_BLK, PM1_CNT_LEN, Flags (HW_REDUCED_ACPI);
//     X_DSDT and X_PM1a/b_CNT_BLK (System I/O space) replace the 32-bit fields when present.
//   DSDT: its AML is searched for `Name (\_S5_, Package (n) { SLP_TYPa, SLP_TYPb, ... })`, i.e.
//     NameOp 0x08, optional root prefix '\', "_S5_", PackageOp 0x12, PkgLength, NumElements, then
//     integers as ZeroOp 0x00, OneOp 0x01, OnesOp 0xFF, or BytePrefix 0x0A / WordPrefix 0x0B /
//     DWordPrefix 0x0C / QWordPrefix 0x0E followed by the little-endian value.
#include <stddef.h>
#include <stdint.h>

#include "lib/expected.h"
#include "lib/span.h"

namespace kernel::acpi {

using Bytes = lib::Span<const uint8_t>;

inline constexpr size_t kHeaderBytes = 36;            // every system description table's header
inline constexpr uint32_t kMaxTableBytes = 16u << 20; // anything longer is taken for garbage
inline constexpr uint16_t kSlpEn = 1u << 13;          // PM1_CNT.SLP_EN
inline constexpr uint16_t kSciEn = 1u << 0;           // PM1_CNT.SCI_EN
inline constexpr unsigned kSlpTypShift = 10;          // PM1_CNT.SLP_TYP, bits 10..12

// What went wrong, and where ("RSDP", "XSDT", "RSDT", "FACP", "DSDT" or "_S5_").
enum class Problem : uint8_t {
    Missing,    // there is no such table / object
    OutOfReach, // its address (or address + length) is outside what the reader can see
    BadSignature,
    BadLength,   // shorter than its fixed fields, longer than kMaxTableBytes, or cut off
    BadChecksum, // the bytes do not sum to zero (mod 256)
    Malformed,   // AML that does not decode as the expected package of integers
    Unsupported, // valid, but nothing this code can drive (e.g. hardware-reduced ACPI)
};
const char* to_string(Problem problem);

struct Error {
    Problem problem = Problem::Missing;
    char where[5] = {};
};
// Writes e.g. "DSDT: checksum does not sum to zero" into `out` (truncated to `capacity`); returns out.
const char* describe(const Error& error, char* out, size_t capacity);

template <typename T>
using Result = lib::Expected<T, Error>;

// Reads physical memory: `length` bytes at `phys`, or an empty span when any of it is out of
// reach (the kernel: outside the physmap).
struct PhysicalReader {
    Bytes (*read)(void* context, uint64_t phys, size_t length) = nullptr;
    void* context = nullptr;
    Bytes operator()(uint64_t phys, size_t length) const { return read(context, phys, length); }
};

struct Rsdp {
    uint8_t revision = 0;
    uint32_t rsdt = 0;
    uint64_t xsdt = 0; // 0 unless revision >= 2
};
// Validates an RSDP copy (20 bytes for revision 0, at least 36 for revision >= 2).
Result<Rsdp> parse_rsdp(Bytes bytes);

// Reads the table at `phys` and checks its header: signature `signature` (4 characters), a
// length between kHeaderBytes and kMaxTableBytes that the reader can supply, and the checksum.
Result<Bytes> read_table(const PhysicalReader& reader, uint64_t phys, const char* signature);

// Looks `signature` up through the XSDT (falling back to the RSDT) and validates it.
Result<Bytes> find_table(const PhysicalReader& reader, const Rsdp& rsdp, const char* signature);

// A PM1 control register: an I/O port (the only address space supported here).
struct Pm1Control {
    uint16_t port = 0;
    bool present() const { return port != 0; }
};

struct Fadt {
    uint8_t revision = 0;
    uint32_t smi_command = 0; // 0: ACPI cannot be (and need not be) enabled through SMI
    uint8_t acpi_enable = 0;
    uint64_t dsdt = 0; // X_DSDT when present and non-zero, else DSDT
    Pm1Control pm1a_control;
    Pm1Control pm1b_control; // optional
    bool hardware_reduced = false;
};
// Decodes a validated FADT (read_table(..., "FACP")).
Result<Fadt> parse_fadt(Bytes table);

struct SleepType {
    uint8_t slp_typa = 0;
    uint8_t slp_typb = 0;
};
// Finds \_S5_ in a validated DSDT (header included) and decodes its first two elements (a
// one-element package gives slp_typb = slp_typa). Values must fit SLP_TYP's three bits.
Result<SleepType> find_s5(Bytes dsdt);

// Decodes an AML PkgLength at `bytes` (its lead byte first): the encoded length (which counts the
// encoding itself) and how many bytes the encoding took. False when it is cut off or malformed.
bool decode_pkg_length(Bytes bytes, uint32_t& length, size_t& encoding_bytes);

// Everything power-off needs, in one walk.
struct PowerOffPlan {
    Rsdp rsdp;
    Fadt fadt;
    SleepType s5;
    // The PM1 control values to write: SLP_TYPx << 10 | SLP_EN.
    uint16_t pm1a_value() const { return static_cast<uint16_t>(s5.slp_typa << kSlpTypShift | kSlpEn); }
    uint16_t pm1b_value() const { return static_cast<uint16_t>(s5.slp_typb << kSlpTypShift | kSlpEn); }
};
Result<PowerOffPlan> plan_power_off(const PhysicalReader& reader, Bytes rsdp_bytes);

} // namespace kernel::acpi
