#pragma once
// x86_64 register and instruction helpers. Generic code uses src/arch/cpu.h instead.
#include <stdint.h>

#include "arch/cpu.h"
#include "lib/types.h"

namespace arch {

// RFLAGS bits (IF and read_rflags() live in cpu_inline.h, which arch/cpu.h includes).
inline constexpr uint64_t kRflagsCarry = 1ull << 0;
inline constexpr uint64_t kRflagsTrap = 1ull << 8;
inline constexpr uint64_t kRflagsDirection = 1ull << 10;
inline constexpr uint64_t kRflagsResume = 1ull << 16;

// CR0 / CR4 bits the Heartwood cares about.
inline constexpr uint64_t kCr0WriteProtect = 1ull << 16;
inline constexpr uint64_t kCr0Paging = 1ull << 31;
inline constexpr uint64_t kCr4Pae = 1ull << 5;
inline constexpr uint64_t kCr4Pge = 1ull << 7;
inline constexpr uint64_t kCr4Smep = 1ull << 20;
inline constexpr uint64_t kCr4Smap = 1ull << 21;

// Model-specific registers.
inline constexpr uint32_t kMsrApicBase = 0x1b;
inline constexpr uint32_t kMsrEfer = 0xc0000080;
inline constexpr uint32_t kMsrStar = 0xc0000081;
inline constexpr uint32_t kMsrLstar = 0xc0000082;
inline constexpr uint32_t kMsrSfmask = 0xc0000084;
inline constexpr uint32_t kMsrFsBase = 0xc0000100;
inline constexpr uint32_t kMsrGsBase = 0xc0000101;
inline constexpr uint32_t kMsrKernelGsBase = 0xc0000102;
inline constexpr uint64_t kEferSce = 1ull << 0;
inline constexpr uint64_t kEferLme = 1ull << 8;
inline constexpr uint64_t kEferNxe = 1ull << 11;

inline uint64_t read_cr0()
{
    uint64_t v;
    asm volatile("mov %%cr0, %0" : "=r"(v));
    return v;
}

// The faulting linear address of the last page fault.
inline uint64_t read_cr2()
{
    uint64_t v;
    asm volatile("mov %%cr2, %0" : "=r"(v));
    return v;
}

// Raw CR3: the top-level page table's physical address plus flag/PCID bits in the low 12 bits.
inline uint64_t read_cr3()
{
    uint64_t v;
    asm volatile("mov %%cr3, %0" : "=r"(v));
    return v;
}

inline void write_cr3(uint64_t v) { asm volatile("mov %0, %%cr3" : : "r"(v) : "memory"); }

inline uint64_t read_cr4()
{
    uint64_t v;
    asm volatile("mov %%cr4, %0" : "=r"(v));
    return v;
}

inline uint64_t read_dr6()
{
    uint64_t v;
    asm volatile("mov %%dr6, %0" : "=r"(v));
    return v;
}

inline uint64_t rdmsr(uint32_t msr)
{
    uint32_t lo, hi;
    asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

inline void wrmsr(uint32_t msr, uint64_t value)
{
    asm volatile("wrmsr"
                 :
                 : "c"(msr), "a"(static_cast<uint32_t>(value)), "d"(static_cast<uint32_t>(value >> 32))
                 : "memory");
}

struct CpuidResult {
    uint32_t eax, ebx, ecx, edx;
};

inline CpuidResult cpuid(uint32_t leaf, uint32_t subleaf = 0)
{
    CpuidResult r;
    asm volatile("cpuid" : "=a"(r.eax), "=b"(r.ebx), "=c"(r.ecx), "=d"(r.edx) : "a"(leaf), "c"(subleaf));
    return r;
}

// CPUID leaf 7 (structured extended features), sub-leaf 0, EBX bits.
inline constexpr uint32_t kCpuid7EbxSmep = 1u << 7;
inline constexpr uint32_t kCpuid7EbxSmap = 1u << 20;
// Whether the CPU supports SMEP / SMAP (CPUID.(EAX=7,ECX=0):EBX bits 7 and 20).
bool cpu_has_smep();
bool cpu_has_smap();

inline void invlpg(VirtualAddress address) { asm volatile("invlpg (%0)" : : "r"(address.get()) : "memory"); }

inline uint64_t rdtsc()
{
    uint32_t lo, hi;
    asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
    return (static_cast<uint64_t>(hi) << 32) | lo;
}

// The task register's selector (`str`).
inline uint16_t read_task_register()
{
    uint16_t v;
    asm volatile("str %0" : "=r"(v));
    return v;
}

inline uint16_t read_cs()
{
    uint16_t v;
    asm volatile("mov %%cs, %0" : "=r"(v));
    return v;
}

inline uint16_t read_ss()
{
    uint16_t v;
    asm volatile("mov %%ss, %0" : "=r"(v));
    return v;
}

// The operand of lgdt/lidt and result of sgdt/sidt.
struct [[gnu::packed]] DescriptorTablePointer {
    uint16_t limit;
    uint64_t base;
};
static_assert(sizeof(DescriptorTablePointer) == 10);

inline DescriptorTablePointer read_gdtr()
{
    DescriptorTablePointer p;
    asm volatile("sgdt %0" : "=m"(p));
    return p;
}

inline DescriptorTablePointer read_idtr()
{
    DescriptorTablePointer p;
    asm volatile("sidt %0" : "=m"(p));
    return p;
}

} // namespace arch
