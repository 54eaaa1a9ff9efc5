// UBSan runtime for debug builds (-fsanitize=undefined): GCC 12 calls these handlers when a check
// fails. Every report names the kind of undefined behaviour, the source location and the values
// involved, then panics. The data layouts are the compiler's ABI (shared by GCC and Clang).
//
// Covered: every handler GCC 12 emits for -fsanitize=undefined, plus float-cast-overflow; each
// also in its _abort form (-fno-sanitize-recover). Not covered: dynamic_type_cache_miss
// (-fsanitize=vptr needs RTTI, which the Heartwood builds without).
#include <stddef.h>
#include <stdint.h>

#include "kernel/panic.h"
#include "lib/format.h"

// The handlers must not be instrumented themselves, or a bad report would recurse.
#define UBSAN_RUNTIME __attribute__((no_sanitize("undefined"), noinline, cold))

namespace kernel::ubsan {

namespace {

struct SourceLocation {
    const char* file;
    uint32_t line;
    uint32_t column;
};

struct TypeDescriptor {
    uint16_t kind; // 0 integer, 1 float, 0xffff unknown
    uint16_t info; // integer: bit 0 signed, bits 1.. log2(bit width)
    char name[1];  // quoted, e.g. "'int'"
};

using ValueHandle = uintptr_t;

struct TypeMismatchData {
    SourceLocation location;
    const TypeDescriptor* type;
    uint8_t log_alignment;
    uint8_t type_check_kind;
};

struct OverflowData {
    SourceLocation location;
    const TypeDescriptor* type;
};

struct ShiftOutOfBoundsData {
    SourceLocation location;
    const TypeDescriptor* lhs_type;
    const TypeDescriptor* rhs_type;
};

struct OutOfBoundsData {
    SourceLocation location;
    const TypeDescriptor* array_type;
    const TypeDescriptor* index_type;
};

struct LocationData {
    SourceLocation location;
};

struct InvalidValueData {
    SourceLocation location;
    const TypeDescriptor* type;
};

struct NonNullArgData {
    SourceLocation location;
    SourceLocation attribute_location;
    int argument_index;
};

struct NonNullReturnData {
    SourceLocation attribute_location;
};

struct InvalidBuiltinData {
    SourceLocation location;
    uint8_t kind; // 0: ctz of zero, 1: clz of zero
};

struct VlaBoundData {
    SourceLocation location;
    const TypeDescriptor* type;
};

struct FloatCastOverflowData {
    SourceLocation location;
    const TypeDescriptor* from_type;
    const TypeDescriptor* to_type;
};

constexpr const char* kTypeCheckKinds[] = {
    "load of",
    "store to",
    "reference binding to",
    "member access within",
    "member call on",
    "constructor call on",
    "downcast of",
    "downcast of",
    "upcast of",
    "cast to virtual base of",
    "_Nonnull binding to",
    "dynamic operation on",
};

// Reports are built here rather than on the (possibly nearly exhausted) stack.
char g_detail[256];
char g_message[detail::kPanicBufferSize];

struct ValueText {
    char text[48];
};

const char* type_name(const TypeDescriptor* type) { return type != nullptr ? type->name : "'?'"; }

bool is_integer(const TypeDescriptor* type) { return type != nullptr && type->kind == 0; }
bool is_signed(const TypeDescriptor* type) { return is_integer(type) && (type->info & 1) != 0; }
unsigned bit_width(const TypeDescriptor* type) { return 1u << (type->info >> 1); }

// Values up to 64 bits are passed inline in the handle; wider ones by pointer.
bool is_negative(const TypeDescriptor* type, ValueHandle value)
{
    if (!is_signed(type))
        return false;
    const unsigned width = bit_width(type);
    if (width > 64)
        return (reinterpret_cast<const uint64_t*>(value)[1] >> 63) != 0;
    return ((value >> (width - 1)) & 1) != 0;
}

uint64_t as_unsigned(const TypeDescriptor* type, ValueHandle value)
{
    return bit_width(type) > 64 ? reinterpret_cast<const uint64_t*>(value)[0] : value;
}

int64_t as_signed(const TypeDescriptor* type, ValueHandle value)
{
    const unsigned width = bit_width(type);
    if (width >= 64)
        return static_cast<int64_t>(as_unsigned(type, value));
    const unsigned shift = 64 - width;
    return static_cast<int64_t>(static_cast<uint64_t>(value) << shift) >> shift;
}

ValueText describe(const TypeDescriptor* type, ValueHandle value)
{
    ValueText out;
    if (!is_integer(type)) {
        lib::format(out.text, sizeof(out.text), "<value of {}>", type_name(type));
    } else if (bit_width(type) > 64) {
        const auto* words = reinterpret_cast<const uint64_t*>(value);
        lib::format(out.text, sizeof(out.text), "{:#x}{:016x}", words[1], words[0]);
    } else if (is_signed(type)) {
        lib::format(out.text, sizeof(out.text), "{}", as_signed(type, value));
    } else {
        lib::format(out.text, sizeof(out.text), "{}", as_unsigned(type, value));
    }
    return out;
}

template <typename... Args>
[[noreturn]] UBSAN_RUNTIME void report(uint64_t caller, const SourceLocation& where, const char* fmt,
                                       const Args&... args)
{
    lib::format(g_detail, sizeof(g_detail), fmt, args...);
    lib::format(g_message, sizeof(g_message), "UBSan: {} at {}:{}:{}", g_detail,
                where.file != nullptr ? where.file : "<unknown file>", where.line, where.column);
    panic_message(g_message, nullptr, caller);
}

[[noreturn]] UBSAN_RUNTIME void arithmetic_overflow(uint64_t caller, const OverflowData* data, ValueHandle lhs,
                                                    ValueHandle rhs, char op)
{
    report(caller, data->location, "{} integer overflow: {} {} {} cannot be represented in type {}",
           is_signed(data->type) ? "signed" : "unsigned", describe(data->type, lhs).text, op,
           describe(data->type, rhs).text, type_name(data->type));
}

} // namespace

#define CALLER reinterpret_cast<uint64_t>(__builtin_return_address(0))

// Declares a handler and its -fno-sanitize-recover twin with one body.
#define UBSAN_HANDLER(name, params, args)                                                                              \
    [[noreturn]] UBSAN_RUNTIME static void name##_impl(uint64_t caller, UBSAN_UNPAREN params);                         \
    extern "C" [[noreturn]] UBSAN_RUNTIME void __ubsan_handle_##name params                                            \
    {                                                                                                                  \
        name##_impl(CALLER, UBSAN_UNPAREN args);                                                                       \
    }                                                                                                                  \
    extern "C" [[noreturn]] UBSAN_RUNTIME void __ubsan_handle_##name##_abort params                                    \
    {                                                                                                                  \
        name##_impl(CALLER, UBSAN_UNPAREN args);                                                                       \
    }                                                                                                                  \
    [[noreturn]] UBSAN_RUNTIME static void name##_impl(uint64_t caller, UBSAN_UNPAREN params)
#define UBSAN_UNPAREN(...) __VA_ARGS__

UBSAN_HANDLER(type_mismatch_v1, (TypeMismatchData * data, ValueHandle pointer), (data, pointer))
{
    const char* what = data->type_check_kind < sizeof(kTypeCheckKinds) / sizeof(kTypeCheckKinds[0])
        ? kTypeCheckKinds[data->type_check_kind]
        : "access to";
    const uint64_t alignment = data->log_alignment < 64 ? uint64_t{1} << data->log_alignment : 0;
    if (pointer == 0)
        report(caller, data->location, "{} null pointer of type {}", what, type_name(data->type));
    if (alignment != 0 && (pointer & (alignment - 1)) != 0)
        report(caller, data->location, "{} misaligned address {:#x} for type {}, which requires {}-byte alignment",
               what, pointer, type_name(data->type), alignment);
    report(caller, data->location, "{} address {:#x} with insufficient space for an object of type {}", what, pointer,
           type_name(data->type));
}

UBSAN_HANDLER(add_overflow, (OverflowData * data, ValueHandle lhs, ValueHandle rhs), (data, lhs, rhs))
{
    arithmetic_overflow(caller, data, lhs, rhs, '+');
}

UBSAN_HANDLER(sub_overflow, (OverflowData * data, ValueHandle lhs, ValueHandle rhs), (data, lhs, rhs))
{
    arithmetic_overflow(caller, data, lhs, rhs, '-');
}

UBSAN_HANDLER(mul_overflow, (OverflowData * data, ValueHandle lhs, ValueHandle rhs), (data, lhs, rhs))
{
    arithmetic_overflow(caller, data, lhs, rhs, '*');
}

UBSAN_HANDLER(negate_overflow, (OverflowData * data, ValueHandle old_value), (data, old_value))
{
    report(caller, data->location, "negation of {} cannot be represented in type {}",
           describe(data->type, old_value).text, type_name(data->type));
}

UBSAN_HANDLER(divrem_overflow, (OverflowData * data, ValueHandle lhs, ValueHandle rhs), (data, lhs, rhs))
{
    if (is_integer(data->type) && as_unsigned(data->type, rhs) == 0 && !(bit_width(data->type) > 64))
        report(caller, data->location, "division by zero ({} / 0) in type {}", describe(data->type, lhs).text,
               type_name(data->type));
    report(caller, data->location, "division of {} by {} cannot be represented in type {}",
           describe(data->type, lhs).text, describe(data->type, rhs).text, type_name(data->type));
}

UBSAN_HANDLER(shift_out_of_bounds, (ShiftOutOfBoundsData * data, ValueHandle lhs, ValueHandle rhs), (data, lhs, rhs))
{
    const ValueText rhs_text = describe(data->rhs_type, rhs);
    if (is_negative(data->rhs_type, rhs))
        report(caller, data->location, "shift exponent {} is negative", rhs_text.text);
    if (is_integer(data->lhs_type) && is_integer(data->rhs_type) &&
        as_unsigned(data->rhs_type, rhs) >= bit_width(data->lhs_type))
        report(caller, data->location, "shift exponent {} is too large for {}-bit type {}", rhs_text.text,
               bit_width(data->lhs_type), type_name(data->lhs_type));
    if (is_negative(data->lhs_type, lhs))
        report(caller, data->location, "left shift of negative value {}", describe(data->lhs_type, lhs).text);
    report(caller, data->location, "left shift of {} by {} places cannot be represented in type {}",
           describe(data->lhs_type, lhs).text, rhs_text.text, type_name(data->lhs_type));
}

UBSAN_HANDLER(out_of_bounds, (OutOfBoundsData * data, ValueHandle index), (data, index))
{
    report(caller, data->location, "index {} out of bounds for type {}", describe(data->index_type, index).text,
           type_name(data->array_type));
}

UBSAN_HANDLER(pointer_overflow, (LocationData * data, ValueHandle base, ValueHandle result), (data, base, result))
{
    if (base == 0 && result == 0)
        report(caller, data->location, "applying zero offset to null pointer");
    if (base == 0)
        report(caller, data->location, "applying non-zero offset {:#x} to null pointer", result);
    if (result == 0)
        report(caller, data->location, "applying non-zero offset to non-null pointer {:#x} produced null", base);
    report(caller, data->location, "pointer arithmetic on {:#x} overflowed to {:#x}", base, result);
}

UBSAN_HANDLER(load_invalid_value, (InvalidValueData * data, ValueHandle value), (data, value))
{
    report(caller, data->location, "load of value {}, which is not a valid value for type {}",
           describe(data->type, value).text, type_name(data->type));
}

UBSAN_HANDLER(nonnull_arg, (NonNullArgData * data), (data))
{
    report(caller, data->location, "null pointer passed as argument {}, which is declared never null",
           data->argument_index);
}

UBSAN_HANDLER(nonnull_return_v1, (NonNullReturnData * data, SourceLocation* location), (data, location))
{
    (void)data;
    static const SourceLocation unknown{nullptr, 0, 0};
    report(caller, location != nullptr ? *location : unknown,
           "null pointer returned from a function declared never to return null");
}

UBSAN_HANDLER(invalid_builtin, (InvalidBuiltinData * data), (data))
{
    report(caller, data->location, "passing zero to {}, which is not a valid argument",
           data->kind == 0 ? "ctz()" : "clz()");
}

UBSAN_HANDLER(vla_bound_not_positive, (VlaBoundData * data, ValueHandle bound), (data, bound))
{
    report(caller, data->location, "variable length array bound evaluates to non-positive value {}",
           describe(data->type, bound).text);
}

UBSAN_HANDLER(float_cast_overflow, (FloatCastOverflowData * data, ValueHandle from), (data, from))
{
    (void)from;
    report(caller, data->location, "{} value is outside the range of representable values of type {}",
           type_name(data->from_type), type_name(data->to_type));
}

// These two have no recoverable form.
extern "C" [[noreturn]] UBSAN_RUNTIME void __ubsan_handle_builtin_unreachable(LocationData* data)
{
    report(CALLER, data->location, "execution reached an unreachable program point");
}

extern "C" [[noreturn]] UBSAN_RUNTIME void __ubsan_handle_missing_return(LocationData* data)
{
    report(CALLER, data->location, "execution reached the end of a value-returning function without returning a value");
}

} // namespace kernel::ubsan
