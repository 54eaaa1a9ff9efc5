// In-kernel tests of the Attunement: descriptor tables, exception delivery and recovery, IRQ
// dispatch and kernel time. Faults are raised on purpose and recovered through the exception hook,
// which moves rip to a label placed right after the faulting instruction.
//
// Timing assertions are structural only (ticks advance, uptime equals ticks times the period):
// under TCG the guest's sense of time is too noisy to assert rates.
#include "arch/cpu.h"
#include "arch/x86_64/cpu.h"
#include "arch/x86_64/gdt.h"
#include "arch/x86_64/idt.h"
#include "arch/x86_64/interrupts.h"
#include "arch/x86_64/pic.h"
#include "arch/x86_64/pit.h"
#include "diag/ktest.h"
#include "lib/log.h"
#include "lib/string.h"
#include "time/time.h"

namespace {

// What the recovery hook saw. Written in exception context, read by the test afterwards.
struct TrapRecord {
    uint32_t hits;
    uint64_t vector;
    uint64_t error_code;
    uint64_t rip;
    uint64_t cs;
    uint64_t ss;
    uint64_t rflags;
    uint64_t rsp;
    uint64_t cr2;
    bool frame_aligned;
    bool handler_stack_aligned;
    uint32_t nesting_depth;
};

volatile TrapRecord g_trap;
// Where the hook resumes; each trigger below stores the address of its label "1:" here.
uint64_t g_resume_rip;

void reset_trap()
{
    g_trap.hits = 0;
    g_trap.vector = ~0ull;
    g_trap.error_code = ~0ull;
    g_trap.rip = 0;
    g_trap.cr2 = 0;
}

[[gnu::noinline]] void record(const arch::InterruptFrame& frame)
{
    g_trap.hits = g_trap.hits + 1;
    g_trap.vector = frame.vector;
    g_trap.error_code = frame.error_code;
    g_trap.rip = frame.rip;
    g_trap.cs = frame.cs;
    g_trap.ss = frame.ss;
    g_trap.rflags = frame.rflags;
    g_trap.rsp = frame.rsp;
    if (frame.vector == arch::kPageFault)
        g_trap.cr2 = arch::read_cr2();
    g_trap.frame_aligned = (reinterpret_cast<uint64_t>(&frame) & 15) == 0;
    // With frame pointers, rbp is 16-aligned in every function iff the stub kept the ABI alignment.
    g_trap.handler_stack_aligned = (reinterpret_cast<uint64_t>(__builtin_frame_address(0)) & 15) == 0;
    g_trap.nesting_depth = arch::interrupt_nesting_depth();
}

bool resume_after_fault(arch::InterruptFrame& frame)
{
    record(frame);
    frame.rip = g_resume_rip;
    return true;
}

bool record_and_decline(arch::InterruptFrame& frame)
{
    record(frame);
    return false;
}

// Installs `handler` for `vector` for one scope.
class [[nodiscard]] ScopedExceptionHandler {
public:
    ScopedExceptionHandler(uint8_t vector, arch::ExceptionHandler handler)
        : m_vector(vector), m_previous(arch::set_exception_handler(vector, handler))
    {
        reset_trap();
    }
    ~ScopedExceptionHandler() { arch::set_exception_handler(m_vector, m_previous); }
    ScopedExceptionHandler(const ScopedExceptionHandler&) = delete;
    ScopedExceptionHandler& operator=(const ScopedExceptionHandler&) = delete;

private:
    uint8_t m_vector;
    arch::ExceptionHandler m_previous;
};

bool text_is(const char* actual, const char* expected) { return lib::StringView(actual) == lib::StringView(expected); }

// Sleeps until `count` more timer ticks have been counted, with interrupts on, then restores the
// caller's interrupt state.
void wait_ticks(uint64_t count)
{
    const bool were_enabled = arch::interrupts_enabled();
    const uint64_t target = kernel::time::ticks() + count;
    while (kernel::time::ticks() < target)
        arch::wait_for_interrupt();
    if (!were_enabled)
        arch::interrupts_disable();
}

} // namespace

// ---- descriptor tables -------------------------------------------------------------------------

KTEST(interrupts, gdt_and_tss_loaded)
{
    KEXPECT_EQ(arch::read_task_register(), arch::kTssSelector);
    KEXPECT_EQ(arch::read_cs(), arch::kKernelCodeSelector);
    KEXPECT_EQ(arch::read_ss(), arch::kKernelDataSelector);

    const arch::DescriptorTablePointer gdtr = arch::read_gdtr();
    KEXPECT_EQ(gdtr.base, reinterpret_cast<uint64_t>(arch::gdt_entries()));
    KEXPECT_EQ(gdtr.limit, uint16_t(arch::kGdtEntries * 8 - 1));

    // `ltr` marked the descriptor busy: type 0xb, present.
    const uint64_t tss_low = arch::gdt_entries()[arch::kTssSelector / 8];
    KEXPECT_EQ((tss_low >> 40) & 0xf, uint64_t(0xb));
    KEXPECT((tss_low >> 47) & 1);
    const uint64_t tss_high = arch::gdt_entries()[arch::kTssSelector / 8 + 1];
    const uint64_t base = ((tss_low >> 16) & 0xffffff) | (((tss_low >> 56) & 0xff) << 24) | (tss_high << 32);
    KEXPECT_EQ(base, reinterpret_cast<uint64_t>(&arch::tss()));

    for (uint8_t ist = 1; ist <= 3; ++ist) {
        const arch::StackRange stack = arch::ist_stack(ist);
        KEXPECT_EQ(stack.top - stack.bottom, arch::kIstStackSize);
        KEXPECT_EQ(arch::tss().ist[ist - 1], stack.top);
        KEXPECT((stack.top & 15) == 0);
    }
}

KTEST(interrupts, idt_loaded)
{
    const arch::DescriptorTablePointer idtr = arch::read_idtr();
    KEXPECT_EQ(idtr.limit, uint16_t(256 * 16 - 1));
    KEXPECT_EQ(idtr.base, reinterpret_cast<uint64_t>(&arch::idt_gate(0)));
    unsigned bad_gates = 0;
    for (unsigned v = 0; v < 256; ++v) {
        const arch::IdtGate& gate = arch::idt_gate(static_cast<uint8_t>(v));
        if (gate.type_attributes != 0x8e || gate.selector != arch::kKernelCodeSelector || gate.offset() == 0)
            ++bad_gates;
    }
    KEXPECT_EQ(bad_gates, 0u);
    KEXPECT_EQ(arch::idt_gate(arch::kDoubleFault).ist, arch::kIstDoubleFault);
    KEXPECT_EQ(arch::idt_gate(arch::kNmi).ist, arch::kIstNmi);
    KEXPECT_EQ(arch::idt_gate(arch::kMachineCheck).ist, arch::kIstMachineCheck);
    KEXPECT_EQ(arch::idt_gate(arch::kPageFault).ist, uint8_t(0));
    KEXPECT_EQ(arch::idt_gate(arch::kIrqBase).ist, uint8_t(0));
}

// ---- exceptions --------------------------------------------------------------------------------

KTEST(interrupts, int3_returns)
{
    const uint64_t before = arch::interrupt_count(arch::kBreakpoint);
    asm volatile("int3" ::: "memory");
    KEXPECT_EQ(arch::interrupt_count(arch::kBreakpoint), before + 1);
}

KTEST(interrupts, breakpoint_frame_contents)
{
    ScopedExceptionHandler hook(arch::kBreakpoint, &record_and_decline);
    const bool interrupts_were_on = arch::interrupts_enabled();
    const uint64_t rsp_before = reinterpret_cast<uint64_t>(__builtin_frame_address(0));
    asm volatile("int3" ::: "memory");
    KASSERT(g_trap.hits == 1); // the hook declined, so the default #BP handling resumed us too
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kBreakpoint));
    KEXPECT_EQ(g_trap.error_code, uint64_t(0));
    KEXPECT_EQ(g_trap.cs, uint64_t(arch::kKernelCodeSelector));
    KEXPECT_EQ(g_trap.ss, uint64_t(arch::kKernelDataSelector));
    KEXPECT_EQ((g_trap.rflags & arch::kRflagsInterrupt) != 0, interrupts_were_on);
    // The interrupted rsp lies within this function's frame, a little below its frame pointer.
    KEXPECT(g_trap.rsp <= rsp_before && rsp_before - g_trap.rsp < 4096);
    KEXPECT(g_trap.frame_aligned);
    KEXPECT(g_trap.handler_stack_aligned);
    KEXPECT_EQ(g_trap.nesting_depth, 0u); // exceptions are not IRQs
}

KTEST(interrupts, registers_survive_an_interrupt)
{
    uint64_t a = 0x1111111111111111, c = 0x2222222222222222, d = 0x3333333333333333;
    uint64_t si = 0x4444444444444444, di = 0x5555555555555555;
    register uint64_t r8 asm("r8") = 0x8888888888888888;
    register uint64_t r9 asm("r9") = 0x9999999999999999;
    register uint64_t r10 asm("r10") = 0xaaaaaaaaaaaaaaaa;
    register uint64_t r11 asm("r11") = 0xbbbbbbbbbbbbbbbb;
    asm volatile("int3"
                 : "+a"(a), "+c"(c), "+d"(d), "+S"(si), "+D"(di), "+r"(r8), "+r"(r9), "+r"(r10), "+r"(r11)
                 :
                 : "memory");
    KEXPECT_EQ(a, uint64_t(0x1111111111111111));
    KEXPECT_EQ(c, uint64_t(0x2222222222222222));
    KEXPECT_EQ(d, uint64_t(0x3333333333333333));
    KEXPECT_EQ(si, uint64_t(0x4444444444444444));
    KEXPECT_EQ(di, uint64_t(0x5555555555555555));
    KEXPECT_EQ(uint64_t(r8), uint64_t(0x8888888888888888));
    KEXPECT_EQ(uint64_t(r9), uint64_t(0x9999999999999999));
    KEXPECT_EQ(uint64_t(r10), uint64_t(0xaaaaaaaaaaaaaaaa));
    KEXPECT_EQ(uint64_t(r11), uint64_t(0xbbbbbbbbbbbbbbbb));
}

namespace {
bool set_rax_to_marker(arch::InterruptFrame& frame)
{
    frame.rax = 0x5eed5eed5eed5eed;
    return true;
}
} // namespace

KTEST(interrupts, handler_edits_resumed_registers)
{
    ScopedExceptionHandler hook(arch::kBreakpoint, &set_rax_to_marker);
    uint64_t rax = 0;
    asm volatile("int3" : "+a"(rax) : : "memory");
    KEXPECT_EQ(rax, uint64_t(0x5eed5eed5eed5eed));
}

KTEST(interrupts, invalid_opcode_recovered)
{
    ScopedExceptionHandler hook(arch::kInvalidOpcode, &resume_after_fault);
    uint64_t fault_rip;
    asm volatile("leaq 1f(%%rip), %%r11\n\t"
                 "movq %%r11, %0\n\t"
                 "leaq 2f(%%rip), %1\n"
                 "2: ud2\n"
                 "1:"
                 : "=m"(g_resume_rip), "=&r"(fault_rip)
                 :
                 : "r11", "memory");
    KEXPECT_EQ(g_trap.hits, 1u);
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kInvalidOpcode));
    KEXPECT_EQ(g_trap.rip, fault_rip); // a fault: rip is the faulting instruction itself
    KEXPECT(g_trap.handler_stack_aligned);
}

KTEST(interrupts, divide_error_recovered)
{
    ScopedExceptionHandler hook(arch::kDivideError, &resume_after_fault);
    asm volatile("leaq 1f(%%rip), %%r11\n\t"
                 "movq %%r11, %0\n\t"
                 "movl $1, %%eax\n\t"
                 "xorl %%edx, %%edx\n\t"
                 "xorl %%ecx, %%ecx\n\t"
                 "divl %%ecx\n"
                 "1:"
                 : "=m"(g_resume_rip)
                 :
                 : "rax", "rcx", "rdx", "r11", "memory", "cc");
    KEXPECT_EQ(g_trap.hits, 1u);
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kDivideError));
    KEXPECT_EQ(g_trap.error_code, uint64_t(0)); // the stub's dummy
}

KTEST(interrupts, general_protection_noncanonical_recovered)
{
    ScopedExceptionHandler hook(arch::kGeneralProtection, &resume_after_fault);
    asm volatile("leaq 1f(%%rip), %%r11\n\t"
                 "movq %%r11, %0\n\t"
                 "movabsq $0x8000000000000000, %%rax\n\t"
                 "movq (%%rax), %%rax\n"
                 "1:"
                 : "=m"(g_resume_rip)
                 :
                 : "rax", "r11", "memory");
    KEXPECT_EQ(g_trap.hits, 1u);
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kGeneralProtection));
    KEXPECT_EQ(g_trap.error_code, uint64_t(0));
}

KTEST(interrupts, general_protection_selector_recovered)
{
    // Selector 0x1230 (GDT index 582) is far past the GDT's limit: #GP with the selector as error code.
    ScopedExceptionHandler hook(arch::kGeneralProtection, &resume_after_fault);
    asm volatile("leaq 1f(%%rip), %%r11\n\t"
                 "movq %%r11, %0\n\t"
                 "movl $0x1230, %%eax\n\t"
                 "movw %%ax, %%es\n"
                 "1:"
                 : "=m"(g_resume_rip)
                 :
                 : "rax", "r11", "memory");
    KEXPECT_EQ(g_trap.hits, 1u);
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kGeneralProtection));
    KEXPECT_EQ(g_trap.error_code, uint64_t(0x1230));
    char text[96];
    arch::describe_selector_error(text, sizeof(text), g_trap.error_code);
    KEXPECT(text_is(text, "GDT selector 0x1230 (index 582)"));
}

KTEST(interrupts, page_fault_recovered)
{
    // Canonical lower-half address: nothing is mapped there (the boot identity map is gone).
    constexpr uint64_t kUnmapped = 0x0000700000001238;
    ScopedExceptionHandler hook(arch::kPageFault, &resume_after_fault);
    asm volatile("leaq 1f(%%rip), %%r11\n\t"
                 "movq %%r11, %0\n\t"
                 "movq (%1), %%rax\n"
                 "1:"
                 : "=m"(g_resume_rip)
                 : "r"(kUnmapped)
                 : "rax", "r11", "memory");
    KEXPECT_EQ(g_trap.hits, 1u);
    KEXPECT_EQ(g_trap.vector, uint64_t(arch::kPageFault));
    KEXPECT_EQ(g_trap.cr2, kUnmapped);
    KEXPECT_EQ(g_trap.error_code, uint64_t(0)); // not present, read, kernel mode
}

KTEST(interrupts, exception_names_and_decoders)
{
    KEXPECT(text_is(arch::exception_name(arch::kPageFault), "Page Fault"));
    KEXPECT(text_is(arch::exception_mnemonic(arch::kGeneralProtection), "#GP"));
    KEXPECT(text_is(arch::exception_mnemonic(arch::kNmi), "NMI"));
    KEXPECT(text_is(arch::exception_name(15), "Reserved"));
    KEXPECT(text_is(arch::exception_name(31), "Reserved"));
    KEXPECT(text_is(arch::exception_name(arch::kSecurity), "Security Exception"));
    KEXPECT(arch::exception_has_error_code(arch::kDoubleFault));
    KEXPECT(arch::exception_has_error_code(arch::kControlProtection));
    KEXPECT(!arch::exception_has_error_code(arch::kBreakpoint));
    KEXPECT(!arch::exception_has_error_code(arch::kMachineCheck));

    char text[160];
    arch::describe_page_fault_error(text, sizeof(text), 0);
    KEXPECT(text_is(text, "not-present page, read, kernel mode"));
    arch::describe_page_fault_error(text, sizeof(text), 0x7);
    KEXPECT(text_is(text, "protection violation, write, user mode"));
    arch::describe_page_fault_error(text, sizeof(text), 0x11);
    KEXPECT(text_is(text, "protection violation, instruction fetch, kernel mode"));
    arch::describe_page_fault_error(text, sizeof(text), 0x6e);
    KEXPECT(text_is(text, "not-present page, write, user mode, reserved bit set, protection key, shadow stack"));

    arch::describe_selector_error(text, sizeof(text), 0);
    KEXPECT(text_is(text, "no selector (error code 0)"));
    arch::describe_selector_error(text, sizeof(text), 0x28);
    KEXPECT(text_is(text, "GDT selector 0x28 (index 5)"));
    arch::describe_selector_error(text, sizeof(text), (0x80 << 3) | 2 | 1);
    KEXPECT(text_is(text, "IDT vector 0x80 (index 128), external event"));
    arch::describe_selector_error(text, sizeof(text), 0x2c);
    KEXPECT(text_is(text, "LDT selector 0x2c (index 5)"));

    arch::describe_control_protection_error(text, sizeof(text), 3);
    KEXPECT(text_is(text, "ENDBRANCH"));

    // Truncation still terminates and reports the full length.
    char tiny[8];
    const size_t length = arch::describe_page_fault_error(tiny, sizeof(tiny), 0);
    KEXPECT_EQ(length, lib::StringView("not-present page, read, kernel mode").size());
    KEXPECT(text_is(tiny, "not-pre"));
}

// ---- interrupt flag ----------------------------------------------------------------------------

KTEST(interrupts, interrupt_flag_tracks_cli_sti)
{
    const bool were_enabled = arch::interrupts_enabled();
    arch::interrupts_disable();
    KEXPECT(!arch::interrupts_enabled());
    KEXPECT((arch::read_rflags() & arch::kRflagsInterrupt) == 0);
    arch::interrupts_enable();
    KEXPECT(arch::interrupts_enabled());
    KEXPECT((arch::read_rflags() & arch::kRflagsInterrupt) != 0);
    {
        arch::InterruptGuard outer;
        KEXPECT(outer.were_enabled());
        KEXPECT(!arch::interrupts_enabled());
        {
            arch::InterruptGuard inner;
            KEXPECT(!inner.were_enabled());
        }
        KEXPECT(!arch::interrupts_enabled());
    }
    KEXPECT(arch::interrupts_enabled());
    if (!were_enabled)
        arch::interrupts_disable();
}

// ---- IRQs and time -----------------------------------------------------------------------------

namespace {
volatile uint32_t g_depth_in_tick;
volatile bool g_if_in_tick;
volatile uint32_t g_tick_callbacks;

void probe_tick()
{
    g_depth_in_tick = arch::interrupt_nesting_depth();
    g_if_in_tick = arch::interrupts_enabled();
    g_tick_callbacks = g_tick_callbacks + 1;
}

volatile uint32_t g_exit_hook_calls;
volatile uint32_t g_exit_hook_depth;

arch::InterruptFrame* probe_exit_hook(arch::InterruptFrame* frame)
{
    g_exit_hook_calls = g_exit_hook_calls + 1;
    g_exit_hook_depth = arch::interrupt_nesting_depth();
    return frame;
}
} // namespace

KTEST(interrupts, timer_ticks_advance)
{
    KASSERT(kernel::time::initialized()); // needs arch::init_cpu + kernel::time::init before the tests
    const uint64_t irq0_before = arch::interrupt_count(arch::kIrqBase + 0);
    const uint64_t ticks_before = kernel::time::ticks();
    const uint64_t uptime_before = kernel::time::uptime_ns();
    const uint64_t cycles_before = arch::read_cycle_counter();
    wait_ticks(20);
    const uint64_t cycles_after = arch::read_cycle_counter();

    uint64_t ticks, uptime;
    {
        arch::InterruptGuard guard; // read both from the same tick
        ticks = kernel::time::ticks();
        uptime = kernel::time::uptime_ns();
    }
    KEXPECT(ticks >= ticks_before + 20);
    KEXPECT(uptime > uptime_before);
    KEXPECT_EQ(uptime, kernel::time::ticks_to_ns(ticks));
    KEXPECT(arch::interrupt_count(arch::kIrqBase + 0) >= irq0_before + 20);
    KEXPECT(cycles_after > cycles_before);

    // Informational only: TCG's TSC and timer run at host whims.
    const uint64_t elapsed_ns = kernel::time::ticks_to_ns(ticks - ticks_before);
    if (elapsed_ns != 0)
        lib::log::info("Attunement: {} ticks in {} ns; cycle counter ran at about {} MHz", ticks - ticks_before,
                       elapsed_ns, (cycles_after - cycles_before) * 1000 / elapsed_ns);
}

KTEST(interrupts, pit_programmed_as_requested)
{
    KASSERT(kernel::time::initialized());
    const arch::Pit& pit = arch::pit();
    KEXPECT_EQ(pit.divisor(), arch::Pit::divisor_for(kernel::time::hz()));
    KEXPECT_EQ(kernel::time::tick_period_ns(), pit.tick_period_ns());
    // The real period is within half a PIT input clock (~419 ns) of 1e9 / hz.
    const uint64_t nominal = 1'000'000'000ull / kernel::time::hz();
    const uint64_t actual = kernel::time::tick_period_ns();
    const uint64_t difference = actual > nominal ? actual - nominal : nominal - actual;
    KEXPECT(difference <= 1'000'000'000ull / arch::Pit::kBaseFrequencyHz);

    const uint8_t status = arch::Pit::read_status();
    KEXPECT_EQ((status >> 1) & 3, 2); // mode 2 (read-back may report it as 6)
    KEXPECT_EQ((status >> 4) & 3, 3); // lobyte/hibyte access
    if (pit.divisor() < arch::Pit::kMaxDivisor) {
        const uint16_t count = arch::Pit::read_count();
        KEXPECT(count >= 1 && count <= pit.divisor());
    }
    KEXPECT(!arch::pic_is_masked(0));
}

KTEST(interrupts, masked_lines_are_those_without_handlers)
{
    for (uint8_t irq = 0; irq < arch::kIrqCount; ++irq) {
        if (irq == 2)
            continue; // the cascade follows the slave lines
        if (arch::irq_has_handler(irq) == arch::pic_is_masked(irq))
            ktest_ctx.failf(__FILE__, __LINE__, "IRQ {}: handler {} but masked {}", irq, arch::irq_has_handler(irq),
                            arch::pic_is_masked(irq));
    }
    KEXPECT(!arch::register_irq_handler(16, [](arch::InterruptFrame&) {}));
    // IRQ 0 belongs to the PIT: a second, different handler is refused.
    KEXPECT(!arch::register_irq_handler(0, [](arch::InterruptFrame&) {}));
    lib::log::info("Attunement: {} spurious IRQs so far", arch::spurious_irq_count());
}

KTEST(interrupts, nesting_depth_inside_and_outside_irq)
{
    KASSERT(kernel::time::initialized());
    KEXPECT_EQ(arch::interrupt_nesting_depth(), 0u);
    KEXPECT(!arch::in_irq());
    g_tick_callbacks = 0;
    g_depth_in_tick = 0;
    g_if_in_tick = true;
    const kernel::time::TickCallback previous = kernel::time::set_tick_callback(&probe_tick);
    wait_ticks(2);
    kernel::time::set_tick_callback(previous);
    KEXPECT(g_tick_callbacks >= 1);
    KEXPECT_EQ(g_depth_in_tick, 1u);
    KEXPECT(!g_if_in_tick); // interrupt gates clear IF
    KEXPECT_EQ(arch::interrupt_nesting_depth(), 0u);
}

KTEST(interrupts, irq_exit_hook_runs_at_depth_zero)
{
    KASSERT(kernel::time::initialized());
    g_exit_hook_calls = 0;
    g_exit_hook_depth = ~0u;
    const arch::IrqExitHook previous = arch::set_irq_exit_hook(&probe_exit_hook);
    wait_ticks(2);
    arch::set_irq_exit_hook(previous);
    KEXPECT(g_exit_hook_calls >= 1);
    KEXPECT_EQ(g_exit_hook_depth, 0u);
}
