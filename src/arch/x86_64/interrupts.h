#pragma once
// Interrupt and exception dispatch. isr.S calls interrupt_dispatch for every vector:
//   0..31   CPU exceptions: an installed exception handler may resolve the exception; otherwise #BP
//           and #DB are logged and resumed, and everything else panics with a decoded diagnosis.
//   32..47  PIC IRQ 0..15: spurious IRQ 7/15 filtered, the registered handler run, EOI sent.
//   255     local APIC spurious vector: counted and ignored.
//   other   a bug (nothing raises them): panic.
#include <stddef.h>
#include <stdint.h>

#include "arch/x86_64/interrupt_frame.h"

namespace arch {

// Exception vectors.
enum ExceptionVector : uint8_t {
    kDivideError = 0,
    kDebug = 1,
    kNmi = 2,
    kBreakpoint = 3,
    kOverflow = 4,
    kBoundRange = 5,
    kInvalidOpcode = 6,
    kDeviceNotAvailable = 7,
    kDoubleFault = 8,
    kInvalidTss = 10,
    kSegmentNotPresent = 11,
    kStackSegmentFault = 12,
    kGeneralProtection = 13,
    kPageFault = 14,
    kX87FloatingPoint = 16,
    kAlignmentCheck = 17,
    kMachineCheck = 18,
    kSimdFloatingPoint = 19,
    kVirtualization = 20,
    kControlProtection = 21,
    kHypervisorInjection = 28,
    kVmmCommunication = 29,
    kSecurity = 30,
};

// Returns true if it dealt with the exception (for example by moving frame.rip past the faulting
// instruction); false passes it on to the default handling. Runs with interrupts disabled.
using ExceptionHandler = bool (*)(InterruptFrame& frame);
// Runs with interrupts disabled; the EOI is sent after it returns.
using IrqHandler = void (*)(InterruptFrame& frame);
// Called when the outermost IRQ handler finishes (after its EOI). Returns the frame to resume.
// The Loom of Fate preempts here by switching stacks inside the hook (thread_arch.cpp), and
// returns the same frame once the interrupted thread runs again.
using IrqExitHook = InterruptFrame* (*)(InterruptFrame* frame);

// Installs (or with nullptr removes) the handler for exception `vector` (< 32); returns the previous one.
ExceptionHandler set_exception_handler(uint8_t vector, ExceptionHandler handler);

// Installs the handler for PIC line `irq` (< 16) and unmasks the line. Returns false, changing
// nothing, if the line is out of range or already has a different handler.
bool register_irq_handler(uint8_t irq, IrqHandler handler);
// Masks the line and removes its handler.
void unregister_irq_handler(uint8_t irq);
bool irq_has_handler(uint8_t irq);

IrqExitHook set_irq_exit_hook(IrqExitHook hook);

// set_irq_observer (the scheduler trace's view of IRQs) is part of the arch interface: arch/cpu.h.

// How many hardware interrupt handlers are running on this CPU: 0 in normal code, 1 inside an IRQ
// handler. Exceptions do not count.
uint32_t interrupt_nesting_depth();
inline bool in_irq() { return interrupt_nesting_depth() != 0; }

// How often each vector has been dispatched since boot.
uint64_t interrupt_count(uint8_t vector);

// "Page Fault", "General Protection", ...; "Reserved" for reserved vectors. Vectors >= 32: "Interrupt".
const char* exception_name(uint8_t vector);
// "#PF", "#GP", "NMI", ...; "" for reserved vectors.
const char* exception_mnemonic(uint8_t vector);
bool exception_has_error_code(uint8_t vector);

// Decoders behind the panic diagnostics, exposed for tests. They write a NUL-terminated
// description into `buf` (truncating to `cap`) and return its untruncated length.
//   page fault:       "not-present page, read, kernel mode"
//                     "protection violation, instruction fetch, user mode, reserved bit set, protection key, ..."
//   selector (#TS #NP #SS #GP): "no selector (error code 0)" / "GDT selector 0x28 (index 5)"
//                     / "IDT vector 0x80 (index 128), external event"
//   control protection (#CP): "near RET", "far RET/IRET", "ENDBRANCH", "RSTORSSP", "SETSSBSY"
size_t describe_page_fault_error(char* buf, size_t cap, uint64_t error_code);
size_t describe_selector_error(char* buf, size_t cap, uint64_t error_code);
size_t describe_control_protection_error(char* buf, size_t cap, uint64_t error_code);

} // namespace arch

// Called by isr.S for every interrupt and exception with IF clear.
extern "C" arch::InterruptFrame* interrupt_dispatch(arch::InterruptFrame* frame);
