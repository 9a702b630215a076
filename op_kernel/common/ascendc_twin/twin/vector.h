// AscendC twin: vector operations over the first `count` elements of LocalTensors in UB
// (Add, Sub, Mul, Div, Max, Min, Adds, Muls, Maxs, Mins, Exp, Ln, Abs, Sqrt, Duplicate, Cast).
// Operands must be live UB tensors starting 32-byte aligned and holding `count` elements.
// 16-bit float operations are computed in float and rounded to nearest even once.
#ifndef CANN_ATTENTION_ASCENDC_TWIN_VECTOR_H
#define CANN_ATTENTION_ASCENDC_TWIN_VECTOR_H

#include <cmath>
#include <type_traits>

#include "pipe.h"

namespace AscendC {
namespace twin {

template <typename T, typename... Allowed>
constexpr bool kOneOf = (std::is_same_v<T, Allowed> || ...);

template <typename T>
constexpr bool kFloating = kOneOf<T, half, bfloat16_t, float>;

// Arithmetic happens in float (float types) or int64_t (integers), then narrows back to T.
template <typename T>
using Wide = std::conditional_t<kFloating<T>, float, int64_t>;

template <typename T>
Wide<T> Widen(T value) { return static_cast<Wide<T>>(value); }

template <typename T>
T Narrow(Wide<T> value) { return static_cast<T>(value); }

template <>
inline bfloat16_t Narrow<bfloat16_t>(float value) { return bfloat16_t(value); }

inline void CheckCount(const char* api, int64_t count)
{
    if (count < 0) {
        Fail(api, ": count ", count, " is negative");
    }
}

// An operand of a vector operation, checked, as a pointer to its first element.
template <typename T>
T* VecOperand(const char* api, const char* role, const LocalTensor<T>& tensor, int64_t count)
{
    tensor.twin_live(api);
    if (tensor.twin_memory() != Memory::UB) {
        Fail(api, ": the ", role, " ", tensor.twin_name(), " is in ", Info(tensor.twin_memory()).name,
             "; vector operations work on VECIN / VECOUT / VECCALC tensors (UB)");
    }
    if (tensor.twin_address() % ONE_BLK_SIZE != 0) {
        Fail(api, ": the ", role, " ", tensor.twin_name(), " does not start 32-byte aligned "
             "(vector operands must)");
    }
    return tensor.twin_data(0, static_cast<uint64_t>(count), api);
}

template <typename T, typename F>
void Binary(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src0,
            const LocalTensor<T>& src1, int32_t count, F f)
{
    CheckCount(api, count);
    const T* a = VecOperand(api, "src0", src0, count);
    const T* b = VecOperand(api, "src1", src1, count);
    T* out = VecOperand(api, "dst", dst, count);
    for (int32_t i = 0; i < count; ++i) out[i] = Narrow<T>(f(Widen(a[i]), Widen(b[i])));
}

template <typename T, typename F>
void Unary(const char* api, const LocalTensor<T>& dst, const LocalTensor<T>& src, int32_t count, F f)
{
    CheckCount(api, count);
    const T* a = VecOperand(api, "src", src, count);
    T* out = VecOperand(api, "dst", dst, count);
    for (int32_t i = 0; i < count; ++i) out[i] = Narrow<T>(f(Widen(a[i])));
}

}  // namespace twin

#define ASCENDC_TWIN_BINARY(NAME, EXPR, ...)                                                     \
    template <typename T>                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& src0,         \
                                const LocalTensor<T>& src1, const int32_t& count)              \
    {                                                                                          \
        static_assert(twin::kOneOf<T, __VA_ARGS__>, #NAME ": unsupported element type");       \
        twin::Binary(#NAME, dst, src0, src1, count, [](auto a, auto b) { return EXPR; });      \
    }

#define ASCENDC_TWIN_SCALAR(NAME, EXPR, ...)                                                     \
    template <typename T>                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& src,          \
                                const T& scalarValue, const int32_t& count)                    \
    {                                                                                          \
        static_assert(twin::kOneOf<T, __VA_ARGS__>, #NAME ": unsupported element type");       \
        const auto b = twin::Widen(scalarValue);                                               \
        twin::Unary(#NAME, dst, src, count, [b](auto a) { return EXPR; });                     \
    }

#define ASCENDC_TWIN_UNARY(NAME, EXPR, ...)                                                      \
    template <typename T>                                                                      \
    __aicore__ inline void NAME(const LocalTensor<T>& dst, const LocalTensor<T>& src,          \
                                const int32_t& count)                                          \
    {                                                                                          \
        static_assert(twin::kOneOf<T, __VA_ARGS__>, #NAME ": unsupported element type");       \
        twin::Unary(#NAME, dst, src, count, [](auto a) { return EXPR; });                      \
    }

ASCENDC_TWIN_BINARY(Add, a + b, half, float, int16_t, int32_t)
ASCENDC_TWIN_BINARY(Sub, a - b, half, float, int16_t, int32_t)
ASCENDC_TWIN_BINARY(Mul, a * b, half, float, int16_t, int32_t)
ASCENDC_TWIN_BINARY(Div, a / b, half, float)
ASCENDC_TWIN_BINARY(Max, a > b ? a : b, half, float, int16_t, int32_t)
ASCENDC_TWIN_BINARY(Min, a < b ? a : b, half, float, int16_t, int32_t)
ASCENDC_TWIN_SCALAR(Adds, a + b, half, float, int16_t, int32_t)
ASCENDC_TWIN_SCALAR(Muls, a * b, half, float, int16_t, int32_t)
ASCENDC_TWIN_SCALAR(Maxs, a > b ? a : b, half, float, int16_t, int32_t)
ASCENDC_TWIN_SCALAR(Mins, a < b ? a : b, half, float, int16_t, int32_t)
ASCENDC_TWIN_UNARY(Exp, std::exp(a), half, float)
ASCENDC_TWIN_UNARY(Ln, std::log(a), half, float)
ASCENDC_TWIN_UNARY(Sqrt, std::sqrt(a), half, float)
ASCENDC_TWIN_UNARY(Abs, std::fabs(a), half, float)

#undef ASCENDC_TWIN_BINARY
#undef ASCENDC_TWIN_SCALAR
#undef ASCENDC_TWIN_UNARY

template <typename T>
__aicore__ inline void Duplicate(const LocalTensor<T>& dst, const T& scalarValue, const int32_t& count)
{
    twin::CheckCount("Duplicate", count);
    T* out = twin::VecOperand("Duplicate", "dst", dst, count);
    for (int32_t i = 0; i < count; ++i) out[i] = scalarValue;
}

// Cast: float -> half / bfloat16_t in any RoundMode (overflow saturates, as the Cast page states);
// half / bfloat16_t -> float is exact and takes RoundMode::CAST_NONE.
template <typename T, typename U>
__aicore__ inline void Cast(const LocalTensor<T>& dst, const LocalTensor<U>& src,
                            const RoundMode& roundMode, const uint32_t count)
{
    constexpr bool narrowing = std::is_same_v<U, float> && twin::kOneOf<T, half, bfloat16_t>;
    constexpr bool widening = std::is_same_v<T, float> && twin::kOneOf<U, half, bfloat16_t>;
    static_assert(narrowing || widening,
                  "Cast: the AscendC twin models float <-> half / bfloat16_t only");
    const char* api = "Cast";
    if (widening && roundMode != RoundMode::CAST_NONE) {
        twin::Fail(api, ": ", twin::TypeName<U>(), " -> float is exact and takes "
                   "RoundMode::CAST_NONE, not ", twin::RoundModeName(roundMode));
    }
    const U* in = twin::VecOperand(api, "src", src, count);
    T* out = twin::VecOperand(api, "dst", dst, count);
    for (uint32_t i = 0; i < count; ++i) {
        if constexpr (narrowing) out[i] = twin::RoundTo<T>(in[i], roundMode);
        else out[i] = static_cast<float>(in[i]);
    }
}

}  // namespace AscendC

#endif  // CANN_ATTENTION_ASCENDC_TWIN_VECTOR_H
