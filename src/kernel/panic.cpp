// x86_64 implementation of the panic path. (The host tests link test/support/host_panic.cpp.)
#include "kernel/panic.h"

#include "arch/cpu.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/interrupt_frame.h"
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/io.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/qemu.h"
#include "arch/x86_64/recovery.h"
#include "drivers/console.h"
#include "kernel/symbols.h"
#include "kernel/test_mode.h"
#include "lib/log.h"
#include "lib/string.h"
#include "sched/scheduler.h"
#include "sync/preempt.h"

namespace kernel {

namespace {

constexpr int kMaxFrames = 32;

// How many panics have started; the first one reports, a second one (a panic while panicking)
// gets one line, any later one just stops.
int g_panic_depth = 0;

// COM1 by polling, for a panic that comes before any console is registered.
class EmergencySerial final : public lib::log::Sink {
public:
    void init()
    {
        arch::outb(kPort + 1, 0x00); // no interrupts
        arch::outb(kPort + 3, 0x80); // DLAB
        arch::outb(kPort + 0, 0x01); // 115200 baud
        arch::outb(kPort + 1, 0x00);
        arch::outb(kPort + 3, 0x03); // 8N1
        arch::outb(kPort + 2, 0xc7); // FIFO on
    }
    void write(const char* s, size_t n) override
    {
        for (size_t i = 0; i < n; ++i) {
            if (s[i] == '\n')
                put('\r');
            put(s[i]);
        }
    }

private:
    static constexpr uint16_t kPort = 0x3f8;
    static void put(char c)
    {
        for (int spins = 0; spins < 100000 && (arch::inb(kPort + 5) & 0x20) == 0; ++spins)
            arch::cpu_relax();
        arch::outb(kPort, static_cast<uint8_t>(c));
    }
};

constinit EmergencySerial g_emergency_serial;

void write(const char* s) { lib::log::write_raw(s, strlen(s)); }

bool is_canonical(uint64_t addr) { return static_cast<uint64_t>(static_cast<int64_t>(addr << 16) >> 16) == addr; }

// Whether `virt` is mapped, read from the live page tables through the physmap, so that following
// a corrupt frame pointer ends the backtrace instead of faulting inside the panic.
bool is_mapped(uint64_t virt)
{
    if (!is_canonical(virt))
        return false;
    uint64_t table = arch::read_cr3() & arch::kPteAddressMask;
    for (int level = 3; level >= 0; --level) {
        if (!arch::is_physmapped(PhysicalAddress(table)))
            return false;
        const uint64_t index = (virt >> (12 + 9 * level)) & 511;
        const uint64_t entry =
            *arch::phys_to_virt(PhysicalAddress(table + index * 8)).as_ptr<const volatile uint64_t>();
        if ((entry & arch::kPtePresent) == 0)
            return false;
        if ((level == 1 || level == 2) && (entry & arch::kPteLargePage) != 0)
            return true;
        table = entry & arch::kPteAddressMask;
    }
    return true;
}

// "0xffffffff80101234  kernel::foo()+0x1c". A return address points after its call, which may be
// past the end of a noreturn function, so it is looked up one byte earlier.
void print_code_address(const char* prefix, uint64_t addr, bool is_return_address)
{
    const uint64_t lookup = is_return_address && addr != 0 ? addr - 1 : addr;
    uint64_t offset = 0;
    const char* name = symbolize(lookup, &offset);
    if (name != nullptr)
        lib::log::print("{}{:#018x}  {}+{:#x}\n", prefix, addr, name, offset + (lookup != addr ? 1 : 0));
    else
        lib::log::print("{}{:#018x}  ?\n", prefix, addr);
}

void print_frame_registers(const arch::InterruptFrame& f)
{
    lib::log::print("Registers at the fault (vector {}, error code {:#x}):\n", f.vector, f.error_code);
    lib::log::print("  rax={:#018x} rbx={:#018x} rcx={:#018x}\n", f.rax, f.rbx, f.rcx);
    lib::log::print("  rdx={:#018x} rsi={:#018x} rdi={:#018x}\n", f.rdx, f.rsi, f.rdi);
    lib::log::print("  rbp={:#018x} rsp={:#018x} r8 ={:#018x}\n", f.rbp, f.rsp, f.r8);
    lib::log::print("  r9 ={:#018x} r10={:#018x} r11={:#018x}\n", f.r9, f.r10, f.r11);
    lib::log::print("  r12={:#018x} r13={:#018x} r14={:#018x}\n", f.r12, f.r13, f.r14);
    lib::log::print("  r15={:#018x} rip={:#018x} rflags={:#x}\n", f.r15, f.rip, f.rflags);
    lib::log::print("  cs={:#x} ss={:#x} cr2={:#018x} cr3={:#018x}\n", f.cs, f.ss, arch::read_cr2(), arch::read_cr3());
}

void print_current_registers(uint64_t rbp)
{
    uint64_t rsp = 0;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    lib::log::print("Registers:\n");
    lib::log::print("  rsp={:#018x} rbp={:#018x} rflags={:#x}\n", rsp, rbp, arch::read_rflags());
    lib::log::print("  cr0={:#018x} cr2={:#018x} cr3={:#018x}\n", arch::read_cr0(), arch::read_cr2(), arch::read_cr3());
    lib::log::print("  cr4={:#018x} efer={:#x}\n", arch::read_cr4(), arch::rdmsr(arch::kMsrEfer));
}

// One step of the saved-rbp chain: [rbp] = the caller's rbp, [rbp + 8] = the return address.
struct StackFrame {
    uint64_t next_rbp;
    uint64_t return_address;
};

// Reads the frame at rbp; false where the chain ends (boot.S starts it with rbp = 0) or cannot be
// trusted, with the reason in *why when there is one worth printing.
bool read_frame(uint64_t rbp, StackFrame& out, const char** why)
{
    *why = nullptr;
    if (rbp == 0)
        return false;
    if ((rbp & 7) != 0 || !is_mapped(rbp) || !is_mapped(rbp + 8)) {
        *why = "is not a mapped stack address";
        return false;
    }
    const auto* slot = reinterpret_cast<const volatile uint64_t*>(rbp);
    out = {slot[0], slot[1]};
    if (out.return_address == 0)
        return false;
    // Stacks grow down, so each caller's frame lies above its callee's.
    if (out.next_rbp != 0 && out.next_rbp <= rbp)
        *why = "does not lead up the stack";
    return true;
}

// The frame pointer of the frame that returns to `caller`, so a backtrace can leave out the
// panic machinery (panic<>, UBSan handlers); rbp unchanged if caller is not on the chain.
uint64_t skip_to_caller(uint64_t rbp, uint64_t caller)
{
    uint64_t at = rbp;
    StackFrame f;
    const char* why = nullptr;
    for (int i = 0; i < kMaxFrames && read_frame(at, f, &why) && why == nullptr; ++i) {
        if (f.return_address == caller)
            return at;
        at = f.next_rbp;
    }
    return rbp;
}

void print_backtrace(uint64_t rbp, int first_index)
{
    StackFrame f;
    const char* why = nullptr;
    for (int i = first_index; i < kMaxFrames; ++i) {
        const bool ok = read_frame(rbp, f, &why);
        if (ok) {
            char prefix[16];
            lib::format(prefix, sizeof(prefix), "  #{:<2} ", i);
            print_code_address(prefix, f.return_address, true);
        }
        if (why != nullptr) {
            lib::log::print("  (frame pointer {:#x} {}; stopping)\n", ok ? f.next_rbp : rbp, why);
            return;
        }
        if (!ok)
            return;
        rbp = f.next_rbp;
    }
    lib::log::print("  (stopping after {} frames)\n", kMaxFrames);
}

[[noreturn]] void stop()
{
    if (test_mode())
        arch::qemu_exit(kExitPanic);
    arch::interrupts_disable();
    arch::halt_forever();
}

// The armed fault probe (see panic.h), living in run_fault_probe's frame.
struct ArmedProbe {
    arch::RecoveryPoint point;
    int expected_vector;
    CaughtFault* out;
    // The thread and this CPU's state when the probe was armed; a fault elsewhere (another thread
    // the prober was preempted for) or one that changed that state cannot be recovered.
    const sched::Thread* thread;
    uint32_t preempt_count;
    uint32_t irq_nesting;
    uint32_t held_spinlocks;
};

ArmedProbe* g_probe = nullptr;

uint32_t held_spinlocks()
{
#if AETHELOS_SYNC_CHECKS
    return sync::this_cpu().held_count;
#else
    return 0;
#endif
}

const char* fault_kind(int vector) { return vector == kProbeSoftwarePanic ? "panic" : arch::exception_name(vector); }

// Resumes at the armed probe if this fault is the one it expects and the CPU is as the probe left
// it; otherwise says why not (once the probe is disarmed, the panic goes on as usual).
void try_recover(const char* msg, const arch::InterruptFrame* frame, uint64_t caller)
{
    ArmedProbe* probe = g_probe;
    if (probe == nullptr)
        return;
    g_probe = nullptr; // one fault per probe; anything from here on is real

    const int vector = frame != nullptr ? static_cast<int>(frame->vector) : kProbeSoftwarePanic;
    const char* refusal = nullptr;
    if (sched::current() != probe->thread)
        refusal = "it happened on another thread than the one that armed the probe";
    else if (vector != probe->expected_vector)
        refusal = "it is not the fault the probe expects";
    else if (sync::preempt_count() != probe->preempt_count)
        refusal = "the preempt count changed since the probe was armed";
    else if (arch::interrupt_nesting_depth() != probe->irq_nesting)
        refusal = "the IRQ nesting depth changed since the probe was armed";
    else if (held_spinlocks() != probe->held_spinlocks)
        refusal = "this CPU holds other spinlocks than when the probe was armed";

    if (!lib::log::has_sinks()) {
        g_emergency_serial.init();
        lib::log::add_sink(&g_emergency_serial);
    }
    if (refusal != nullptr) {
        lib::log::print("\nfault probe (expecting a {}) cannot recover from this {}: {}\n",
                        fault_kind(probe->expected_vector), fault_kind(vector), refusal);
        return;
    }

    CaughtFault& out = *probe->out;
    out.vector = vector;
    out.rip = frame != nullptr ? frame->rip : caller;
    out.error_code = frame != nullptr ? frame->error_code : 0;
    out.cr2 = vector == arch::kPageFault ? arch::read_cr2() : 0;
    const size_t length = strlen(msg);
    const size_t kept = length < sizeof(out.message) - 1 ? length : sizeof(out.message) - 1;
    memcpy(out.message, msg, kept);
    out.message[kept] = '\0';

    write("fault probe: caught the expected ");
    write(fault_kind(vector));
    write(": ");
    write(out.message);
    write("\n");
    print_code_address("  at ", out.rip, frame == nullptr || caller != frame->rip);
    write("  resuming at the probe's recovery point\n");
    arch_recovery_resume(&probe->point);
}

} // namespace

bool run_fault_probe(int expected_vector, void (*fn)(void*), void* arg, CaughtFault& out)
{
    if (g_probe != nullptr)
        panic("fault probes do not nest");
    out = CaughtFault{};
    ArmedProbe probe;
    probe.expected_vector = expected_vector;
    probe.out = &out;
    probe.thread = sched::current();
    probe.preempt_count = sync::preempt_count();
    probe.irq_nesting = arch::interrupt_nesting_depth();
    probe.held_spinlocks = held_spinlocks();
    if (arch_recovery_save(&probe.point) != 0)
        return true; // resumed by try_recover, which disarmed the probe
    __atomic_store_n(&g_probe, &probe, __ATOMIC_SEQ_CST);
    fn(arg);
    __atomic_store_n(&g_probe, static_cast<ArmedProbe*>(nullptr), __ATOMIC_SEQ_CST);
    return false;
}

[[noreturn, gnu::noinline]] void panic_message(const char* msg, const arch::InterruptFrame* frame, uint64_t caller)
{
    arch::interrupts_disable();
    // A fault inside a console write leaves the console lock held by the context it interrupted,
    // which never runs again: the report bypasses the lock from here on (see console.cpp). A fault
    // probe cannot resume such a context either (its preempt count changed), so this is for good.
    if (drivers::console_lock_held())
        drivers::take_over_consoles_for_panic();
    if (caller == 0)
        caller = reinterpret_cast<uint64_t>(__builtin_return_address(0));
    if (msg == nullptr)
        msg = "(no message)";

    if (__atomic_load_n(&g_panic_depth, __ATOMIC_SEQ_CST) == 0)
        try_recover(msg, frame, caller); // returns only when there is no probe or it cannot recover

    const int depth = __atomic_fetch_add(&g_panic_depth, 1, __ATOMIC_SEQ_CST);
    if (depth == 1) {
        write("\nPANIC (while already panicking): ");
        write(msg);
        write("\n");
    }
    if (depth != 0)
        stop();

    if (!lib::log::has_sinks()) {
        g_emergency_serial.init();
        lib::log::add_sink(&g_emergency_serial);
    }

    // CAN first: a console cut off inside an escape sequence would otherwise swallow the heading.
    write("\x18\n================================================================================\n");
    write("PANIC: ");
    write(msg);
    write("\nThe Heartwood has faltered and AethelOS cannot go on.\n");
    // An exception handler blames the faulting rip itself, which is not a return address.
    print_code_address("Called from ", caller, frame == nullptr || caller != frame->rip);

    const auto rbp = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
    if (frame != nullptr) {
        print_frame_registers(*frame);
        lib::log::print("Backtrace of the interrupted code:\n");
        print_code_address("  #0  ", frame->rip, false);
        print_backtrace(frame->rbp, 1);
        lib::log::print("Backtrace of the panic itself:\n");
        print_backtrace(rbp, 0);
    } else {
        print_current_registers(rbp);
        lib::log::print("Backtrace (from the caller):\n");
        print_backtrace(skip_to_caller(rbp, caller), 0);
    }
    write("================================================================================\n");
    stop();
}

} // namespace kernel
