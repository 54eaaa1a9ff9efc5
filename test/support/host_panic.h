#pragma once
#include <stdexcept>
#include <string>

namespace kernel {
struct HostPanic : std::runtime_error {
    explicit HostPanic(const std::string& msg) : std::runtime_error(msg) { }
};
} // namespace kernel
