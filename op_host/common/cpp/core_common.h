// Shared by the C++ tiling cores (op_host/<op>/tiling_core.cpp): plain C++17, no CANN header.
//
// A core refuses a call the way the Python check does: the message is
// "<op>: <argument>: expected <what>, got <what>" (op_host/common/errors.py), and the kind says
// which Python exception carries it (TypeError for dtypes and Python types, ValueError where
// MindSpore documents one, RuntimeError otherwise).
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <sstream>
#include <string>

namespace cann_attention {

enum class ErrorKind : int32_t { kNone = 0, kRuntime = 1, kType = 2, kValue = 3 };

struct CheckError {
    ErrorKind kind = ErrorKind::kNone;
    std::string message;
};

// Thrown by a core's checks; the C entry point turns it into (kind, message).
struct Refusal {
    ErrorKind kind;
    std::string message;
};

inline std::string Expected(const std::string& op, const std::string& arg,
                            const std::string& expected, const std::string& actual) {
    return op + ": " + arg + ": expected " + expected + ", got " + actual;
}

// Copies a message into a caller's buffer (always NUL-terminated).
inline void WriteMessage(const std::string& message, char* buffer, int64_t size) {
    if (buffer == nullptr || size <= 0) return;
    const size_t n = std::min<size_t>(message.size(), static_cast<size_t>(size - 1));
    std::memcpy(buffer, message.data(), n);
    buffer[n] = '\0';
}

}  // namespace cann_attention
