#include "arch/x86_64/interrupts.h"

#include <atomic>

#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/idt.h"
#include "arch/x86_64/memory_layout.h"
#include "arch/x86_64/pic.h"
#include "arch/x86_64/thread_arch.h"
#include "lib/format.h"
#include "lib/log.h"
#include "lib/panic.h"
#include "sync/preempt.h"

namespace arch {

namespace {

struct ExceptionInfo {
    const char* mnemonic;
    const char* name;
    bool has_error_code;
};

// Intel SDM vol. 3A, table 6-1, plus AMD's #VC and #SX.
constexpr ExceptionInfo kExceptions[kExceptionVectors] = {
    {"#DE", "Divide Error", false},
    {"#DB", "Debug", false},
    {"NMI", "Non-Maskable Interrupt", false},
    {"#BP", "Breakpoint", false},
    {"#OF", "Overflow", false},
    {"#BR", "BOUND Range Exceeded", false},
    {"#UD", "Invalid Opcode", false},
    {"#NM", "Device Not Available", false},
    {"#DF", "Double Fault", true},
    {"", "Coprocessor Segment Overrun", false},
    {"#TS", "Invalid TSS", true},
    {"#NP", "Segment Not Present", true},
    {"#SS", "Stack-Segment Fault", true},
    {"#GP", "General Protection", true},
    {"#PF", "Page Fault", true},
    {"", "Reserved", false},
    {"#MF", "x87 Floating-Point Error", false},
    {"#AC", "Alignment Check", true},
    {"#MC", "Machine Check", false},
    {"#XM", "SIMD Floating-Point Exception", false},
    {"#VE", "Virtualization Exception", false},
    {"#CP", "Control Protection", true},
    {"", "Reserved", false},
    {"", "Reserved", false},
    {"", "Reserved", false},
    {"", "Reserved", false},
    {"", "Reserved", false},
    {"", "Reserved", false},
    {"#HV", "Hypervisor Injection", false},
    {"#VC", "VMM Communication", true},
    {"#SX", "Security Exception", true},
    {"", "Reserved", false},
};

constinit std::atomic<ExceptionHandler> g_exception_handlers[kExceptionVectors]{};
constinit std::atomic<IrqHandler> g_irq_handlers[kIrqCount]{};
constinit std::atomic<IrqExitHook> g_irq_exit_hook{nullptr};
constinit std::atomic<IrqObserver> g_irq_observer{nullptr};
constinit std::atomic<uint32_t> g_nesting_depth{0};
constinit std::atomic<uint64_t> g_counts[256]{};

// Appends formatted text to a fixed buffer; keeps counting past the end so callers learn the
// untruncated length, like lib::format.
class TextBuilder {
public:
    TextBuilder(char* buf, size_t cap) : m_buf(buf), m_cap(cap)
    {
        if (cap != 0)
            buf[0] = '\0';
    }

    template <typename... Args>
    void add(const char* fmt, const Args&... args)
    {
        char overflow[1];
        if (m_len + 1 < m_cap)
            m_len += lib::format(m_buf + m_len, m_cap - m_len, fmt, args...);
        else
            m_len += lib::format(overflow, sizeof(overflow), fmt, args...);
    }

    size_t length() const { return m_len; }

private:
    char* m_buf;
    size_t m_cap;
    size_t m_len = 0;
};

// Panic messages are built here rather than on the stack: a fault may have hit because the stack
// is nearly exhausted. Only one CPU panics, and a nested fault during the panic is the panic
// code's business.
char g_message[512];

uint64_t current_rsp()
{
    uint64_t rsp;
    asm volatile("mov %%rsp, %0" : "=r"(rsp));
    return rsp;
}

const char* ist_stack_name(uint64_t address)
{
    if (ist_stack(kIstDoubleFault).contains(address))
        return "the IST1 double-fault stack";
    if (ist_stack(kIstNmi).contains(address))
        return "the IST2 NMI stack";
    if (ist_stack(kIstMachineCheck).contains(address))
        return "the IST3 machine-check stack";
    return nullptr;
}

void describe_double_fault(TextBuilder& text, const InterruptFrame& frame)
{
    const uint64_t rsp = current_rsp();
    const StackRange own = ist_stack(kIstDoubleFault);
    if (own.contains(rsp))
        text.add("; handled on the IST1 double-fault stack [{:#x}, {:#x})", own.bottom, own.top);
    else
        text.add("; NOT on the IST1 double-fault stack (rsp {:#x}): the IDT gate lost its IST index", rsp);
    text.add("; interrupted rsp {:#x}", frame.rsp);
    if (const char* name = ist_stack_name(frame.rsp))
        text.add(" (on {})", name);
    // A fault while delivering a fault: on a kernel stack overflow the #PF could not push its
    // frame, which is why CR2 is worth printing here.
    text.add("; cr2 {:#x} (a stack overflow shows as cr2 just below the interrupted rsp); saved rip is "
             "architecturally undefined for #DF",
             read_cr2());
    // The Loom of Fate's kernel stacks have unmapped guards: a #PF there could not push its frame.
    uint32_t slot = 0;
    if (kernel_stack_guard_hit(read_cr2(), &slot) || kernel_stack_guard_hit(frame.rsp, &slot))
        text.add("; KERNEL STACK OVERFLOW into the guard page of stack slot {}", slot);
    text.add("; thread '{}'", kernel::sync::current_owner_name());
}

// What a page fault most likely means, when the address or the error code tells.
void describe_page_fault_cause(TextBuilder& text, uint64_t error_code, uint64_t cr2)
{
    constexpr uint64_t kPresent = 1u << 0, kUser = 1u << 2, kFetch = 1u << 4;
    uint32_t slot = 0;
    if ((error_code & kFetch) != 0 && (error_code & kPresent) != 0)
        text.add("; executing a no-execute page (NX: data, stack or heap), or a user page under SMEP");
    else if (cr2 < 4096)
        text.add("; a null pointer dereference");
    else if (kernel_stack_guard_hit(cr2, &slot))
        text.add("; in the guard page of kernel stack slot {} (a stack overflow)", slot);
    else if (cr2 - reinterpret_cast<uint64_t>(boot_stack_guard) < 4096)
        text.add("; in the boot stack's guard page (a stack overflow)");
    else if ((error_code & (kPresent | kUser)) == kPresent && (read_cr4() & kCr4Smap) != 0 && cr2 < (1ull << 47))
        text.add("; possibly SMAP: the kernel touched a user page");
}

[[noreturn]] void fatal_exception(const InterruptFrame& frame)
{
    const uint8_t vector = static_cast<uint8_t>(frame.vector);
    const uint64_t cr2 = vector == kPageFault ? read_cr2() : 0;
    TextBuilder text(g_message, sizeof(g_message));
    text.add("{} (", exception_name(vector));
    if (exception_mnemonic(vector)[0] != '\0')
        text.add("{}, ", exception_mnemonic(vector));
    text.add("vector {}) at rip {:#x}", vector, frame.rip);
    if ((frame.cs & 3) == 3)
        text.add(" in user mode");

    char detail[160];
    switch (vector) {
    case kPageFault:
        describe_page_fault_error(detail, sizeof(detail), frame.error_code);
        text.add(": {} at address {:#x} (error code {:#x})", static_cast<const char*>(detail), cr2, frame.error_code);
        describe_page_fault_cause(text, frame.error_code, cr2);
        break;
    case kInvalidTss:
    case kSegmentNotPresent:
    case kStackSegmentFault:
    case kGeneralProtection:
        describe_selector_error(detail, sizeof(detail), frame.error_code);
        text.add(": {} (error code {:#x})", static_cast<const char*>(detail), frame.error_code);
        if (vector == kGeneralProtection && frame.error_code == 0)
            text.add("; e.g. a non-canonical address, a privileged instruction or a bad MSR");
        break;
    case kDoubleFault: describe_double_fault(text, frame); break;
    case kControlProtection:
        describe_control_protection_error(detail, sizeof(detail), frame.error_code);
        text.add(": {} (error code {:#x})", static_cast<const char*>(detail), frame.error_code);
        break;
    case kNmi: text.add(": non-maskable interrupt (hardware error or watchdog)"); break;
    case kMachineCheck: text.add(": the processor reported an uncorrectable hardware error"); break;
    default:
        if (exception_has_error_code(vector))
            text.add(" (error code {:#x})", frame.error_code);
        break;
    }
    kernel::panic_message(g_message, &frame, frame.rip);
}

void handle_exception(InterruptFrame& frame)
{
    const uint8_t vector = static_cast<uint8_t>(frame.vector);
    if (ExceptionHandler handler = g_exception_handlers[vector].load(std::memory_order_acquire))
        if (handler(frame))
            return;

    switch (vector) {
    case kBreakpoint:
        // A trap: rip already points past the int3.
        lib::log::info("Attunement: breakpoint (#BP) trap, resuming at rip {:#x}", frame.rip);
        return;
    case kDebug:
        lib::log::info("Attunement: debug exception (#DB) at rip {:#x}, dr6 {:#x}; resuming", frame.rip, read_dr6());
        // RF stops an instruction breakpoint from firing again on the same instruction.
        frame.rflags |= kRflagsResume;
        return;
    default: fatal_exception(frame);
    }
}

InterruptFrame* handle_irq(InterruptFrame* frame)
{
    const uint8_t irq = static_cast<uint8_t>(frame->vector - kIrqBase);
    if (pic_handle_spurious(irq))
        return frame;

    g_nesting_depth.fetch_add(1, std::memory_order_relaxed);
    if (IrqObserver observer = g_irq_observer.load(std::memory_order_relaxed))
        observer(irq, true);
    if (IrqHandler handler = g_irq_handlers[irq].load(std::memory_order_acquire)) {
        handler(*frame);
    } else {
        // Only lines with handlers are unmasked, so this is a registration race or a confused PIC.
        lib::log::warn("Attunement: IRQ {} has no handler; masking it", irq);
        pic_mask(irq);
    }
    pic_send_eoi(irq);
    if (IrqObserver observer = g_irq_observer.load(std::memory_order_relaxed))
        observer(irq, false);
    const uint32_t depth = g_nesting_depth.fetch_sub(1, std::memory_order_relaxed) - 1;

    if (depth == 0)
        if (IrqExitHook hook = g_irq_exit_hook.load(std::memory_order_acquire))
            return hook(frame);
    return frame;
}

} // namespace

ExceptionHandler set_exception_handler(uint8_t vector, ExceptionHandler handler)
{
    if (vector >= kExceptionVectors)
        return nullptr;
    return g_exception_handlers[vector].exchange(handler, std::memory_order_acq_rel);
}

bool register_irq_handler(uint8_t irq, IrqHandler handler)
{
    if (irq >= kIrqCount || handler == nullptr)
        return false;
    InterruptGuard guard;
    IrqHandler current = g_irq_handlers[irq].load(std::memory_order_relaxed);
    if (current != nullptr && current != handler)
        return false;
    g_irq_handlers[irq].store(handler, std::memory_order_release);
    pic_unmask(irq);
    return true;
}

void unregister_irq_handler(uint8_t irq)
{
    if (irq >= kIrqCount)
        return;
    InterruptGuard guard;
    pic_mask(irq);
    g_irq_handlers[irq].store(nullptr, std::memory_order_release);
}

bool irq_has_handler(uint8_t irq)
{
    return irq < kIrqCount && g_irq_handlers[irq].load(std::memory_order_relaxed) != nullptr;
}

IrqExitHook set_irq_exit_hook(IrqExitHook hook) { return g_irq_exit_hook.exchange(hook, std::memory_order_acq_rel); }

IrqObserver set_irq_observer(IrqObserver observer)
{
    return g_irq_observer.exchange(observer, std::memory_order_acq_rel);
}

uint32_t interrupt_nesting_depth() { return g_nesting_depth.load(std::memory_order_relaxed); }

uint64_t interrupt_count(uint8_t vector) { return g_counts[vector].load(std::memory_order_relaxed); }

const char* exception_name(uint8_t vector)
{
    return vector < kExceptionVectors ? kExceptions[vector].name : "Interrupt";
}

const char* exception_mnemonic(uint8_t vector)
{
    return vector < kExceptionVectors ? kExceptions[vector].mnemonic : "";
}

bool exception_has_error_code(uint8_t vector)
{
    return vector < kExceptionVectors && kExceptions[vector].has_error_code;
}

size_t describe_page_fault_error(char* buf, size_t cap, uint64_t error_code)
{
    TextBuilder text(buf, cap);
    text.add("{}", (error_code & (1u << 0)) ? "protection violation" : "not-present page");
    if (error_code & (1u << 4))
        text.add(", instruction fetch");
    else
        text.add("{}", (error_code & (1u << 1)) ? ", write" : ", read");
    text.add("{}", (error_code & (1u << 2)) ? ", user mode" : ", kernel mode");
    if (error_code & (1u << 3))
        text.add(", reserved bit set");
    if (error_code & (1u << 5))
        text.add(", protection key");
    if (error_code & (1u << 6))
        text.add(", shadow stack");
    if (error_code & (1u << 7))
        text.add(", HLAT paging");
    if (error_code & (1u << 15))
        text.add(", SGX");
    return text.length();
}

size_t describe_selector_error(char* buf, size_t cap, uint64_t error_code)
{
    TextBuilder text(buf, cap);
    if (error_code == 0) {
        text.add("no selector (error code 0)");
        return text.length();
    }
    const uint64_t index = (error_code >> 3) & 0x1fff;
    if (error_code & 2)
        text.add("IDT vector {:#x} (index {})", index, index);
    else
        text.add("{} selector {:#x} (index {})", (error_code & 4) ? "LDT" : "GDT", error_code & 0xfffc, index);
    if (error_code & 1)
        text.add(", external event");
    return text.length();
}

size_t describe_control_protection_error(char* buf, size_t cap, uint64_t error_code)
{
    TextBuilder text(buf, cap);
    switch (error_code & 0x7fff) {
    case 1: text.add("near RET"); break;
    case 2: text.add("far RET/IRET"); break;
    case 3: text.add("ENDBRANCH"); break;
    case 4: text.add("RSTORSSP"); break;
    case 5: text.add("SETSSBSY"); break;
    default: text.add("unknown cause {}", error_code & 0x7fff); break;
    }
    if (error_code & (1u << 15))
        text.add(", in an enclave");
    return text.length();
}

} // namespace arch

extern "C" arch::InterruptFrame* interrupt_dispatch(arch::InterruptFrame* frame)
{
    using namespace arch;
    const uint64_t vector = frame->vector;
    g_counts[vector & 0xff].fetch_add(1, std::memory_order_relaxed);

    if (vector < kExceptionVectors) {
        handle_exception(*frame);
        return frame;
    }
    if (vector < kIrqBase + kIrqCount)
        return handle_irq(frame);
    if (vector == kSpuriousVector) {
        // The local APIC's spurious vector needs no EOI.
        count_spurious_irq();
        return frame;
    }
    lib::format(g_message, sizeof(g_message), "unexpected interrupt vector {} at rip {:#x}: nothing should raise it",
                vector, frame->rip);
    kernel::panic_message(g_message, frame, frame->rip);
}
