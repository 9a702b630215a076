// AscendC twin: the 16-bit float types (half, bfloat16_t), RoundMode, and rounding float to them.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_NUMERIC_H
#define CANN_ATTENTION_ASCENDC_TWIN_NUMERIC_H

#include <cmath>
#include <cstdint>
#include <cstring>

namespace AscendC {

// Cast page: CAST_NONE rounds like CAST_RINT when the conversion loses precision.
enum class RoundMode {
    CAST_NONE = 0, CAST_RINT, CAST_FLOOR, CAST_CEIL, CAST_ROUND, CAST_TRUNC, CAST_ODD,
};

namespace twin {

inline const char* RoundModeName(RoundMode mode)
{
    static const char* const names[] = {"CAST_NONE", "CAST_RINT", "CAST_FLOOR", "CAST_CEIL",
        "CAST_ROUND", "CAST_TRUNC", "CAST_ODD"};
    return names[static_cast<int>(mode)];
}

// The bits of a binary float with E exponent and M mantissa bits (half: 5/10, bfloat16: 8/7)
// nearest to x in `mode` (the Cast page's rounding rules, applied to the bits that are dropped).
// An overflow saturates to the largest finite value when `saturate` (what Cast does), else it
// follows IEEE (to infinity when rounding away from zero). NaN stays NaN, infinities stay.
template <int E, int M>
uint16_t RoundFloatBits(float x, RoundMode mode, bool saturate)
{
    constexpr int bias = (1 << (E - 1)) - 1;
    constexpr int emin = 1 - bias;
    constexpr uint16_t inf = static_cast<uint16_t>(((1u << E) - 1) << M);
    const bool negative = std::signbit(x);
    const uint16_t sign = negative ? static_cast<uint16_t>(1u << (E + M)) : 0;
    if (std::isnan(x)) {
        return static_cast<uint16_t>(sign | inf | (1u << (M - 1)));
    }
    if (std::isinf(x)) {
        return static_cast<uint16_t>(sign | inf);
    }
    const double v = std::fabs(static_cast<double>(x));
    int e = 0;
    std::frexp(v, &e);                                   // v = f * 2^e, f in [0.5, 1)
    const int exponent = e - 1 < emin ? emin : e - 1;    // subnormals share emin
    const double quantum = std::ldexp(1.0, exponent - M);
    const double n = v / quantum;                        // exact: a power-of-two scaling
    const double low = std::floor(n);
    const double frac = n - low;
    const bool lowIsOdd = std::fmod(low, 2.0) != 0.0;
    double units = low;
    switch (mode) {
        case RoundMode::CAST_NONE:
        case RoundMode::CAST_RINT:
            units = frac > 0.5 || (frac == 0.5 && lowIsOdd) ? low + 1 : low;
            break;
        case RoundMode::CAST_ROUND: units = frac >= 0.5 ? low + 1 : low; break;
        case RoundMode::CAST_TRUNC: units = low; break;
        case RoundMode::CAST_FLOOR: units = negative && frac > 0 ? low + 1 : low; break;
        case RoundMode::CAST_CEIL: units = !negative && frac > 0 ? low + 1 : low; break;
        case RoundMode::CAST_ODD: units = frac == 0 || lowIsOdd ? low : low + 1; break;
    }
    const double rounded = units * quantum;
    const double largest = std::ldexp(2.0 - std::ldexp(1.0, -M), bias);
    if (rounded > largest) {
        const bool awayFromZero = mode == RoundMode::CAST_NONE || mode == RoundMode::CAST_RINT ||
            mode == RoundMode::CAST_ROUND || (mode == RoundMode::CAST_CEIL && !negative) ||
            (mode == RoundMode::CAST_FLOOR && negative);
        return static_cast<uint16_t>(sign | (awayFromZero && !saturate ? inf : inf - 1));
    }
    if (rounded < std::ldexp(1.0, emin)) {               // subnormal (or zero)
        return static_cast<uint16_t>(sign | static_cast<uint16_t>(rounded / std::ldexp(1.0, emin - M)));
    }
    std::frexp(rounded, &e);
    const int unbiased = e - 1;
    const auto mantissa = static_cast<uint32_t>(rounded / std::ldexp(1.0, unbiased - M)) - (1u << M);
    return static_cast<uint16_t>(sign | ((unbiased + bias) << M) | mantissa);
}

template <int E, int M>
float FloatFromBits(uint16_t bits)
{
    constexpr int bias = (1 << (E - 1)) - 1;
    const int exponent = (bits >> M) & ((1 << E) - 1);
    const uint32_t mantissa = bits & ((1u << M) - 1);
    const float sign = (bits >> (E + M)) ? -1.0f : 1.0f;
    if (exponent == (1 << E) - 1) {
        return mantissa ? std::nanf("") : sign * INFINITY;
    }
    if (exponent == 0) {
        return sign * static_cast<float>(std::ldexp(static_cast<double>(mantissa), 1 - bias - M));
    }
    return sign * static_cast<float>(
        std::ldexp(static_cast<double>(mantissa | (1u << M)), exponent - bias - M));
}

}  // namespace twin
}  // namespace AscendC

// ---- half: IEEE binary16, the device compiler's builtin type -------------------------------------
// _Float16 where the compiler has it (g++ 12 on x86-64 and aarch64), else a small struct that
// stores the bits and converts through float (-DASCENDC_TWIN_HALF_STRUCT forces the struct).
#if defined(__FLT16_MAX__) && !defined(ASCENDC_TWIN_HALF_STRUCT)
using half = _Float16;
#else
struct half {
    uint16_t bits = 0;
    half() = default;
    half(float value)
        : bits(AscendC::twin::RoundFloatBits<5, 10>(value, AscendC::RoundMode::CAST_RINT, false)) {}
    operator float() const { return AscendC::twin::FloatFromBits<5, 10>(bits); }
};
#endif

// ---- bfloat16_t: 8 exponent and 7 mantissa bits ------------------------------------------------------
struct bfloat16_t {
    uint16_t bits = 0;
    bfloat16_t() = default;
    bfloat16_t(float value)
        : bits(AscendC::twin::RoundFloatBits<8, 7>(value, AscendC::RoundMode::CAST_RINT, false)) {}
    operator float() const
    {
        const uint32_t word = static_cast<uint32_t>(bits) << 16;
        float value;
        std::memcpy(&value, &word, sizeof(value));
        return value;
    }
};

namespace AscendC {
namespace twin {

// float -> a 16-bit float type in `mode`, saturating (the Cast page: overflow saturates).
template <typename T>
T RoundTo(float value, RoundMode mode);

template <>
inline half RoundTo<half>(float value, RoundMode mode)
{
    const uint16_t bits = RoundFloatBits<5, 10>(value, mode, true);
    half out;
    std::memcpy(static_cast<void*>(&out), &bits, sizeof(out));
    return out;
}

template <>
inline bfloat16_t RoundTo<bfloat16_t>(float value, RoundMode mode)
{
    bfloat16_t out;
    out.bits = RoundFloatBits<8, 7>(value, mode, true);
    return out;
}

}  // namespace twin
}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_NUMERIC_H
