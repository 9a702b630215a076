// extern "C" entry points through which the tests (ctypes) launch the test kernels on the twin.
// Each returns 0, or non-zero with the twin's message in err[0 .. cap).
#include "kernel_operator.h"

using AscendC::twin::Guard;
using AscendC::twin::RunKernel;

extern "C" {
void add_custom_float(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength, uint32_t tileLength);
void add_custom_half(GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t totalLength, uint32_t tileLength);
void softmax_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols);
void scale_unaligned(GM_ADDR x, GM_ADDR y, uint32_t total, uint32_t tile, float scale);
void pad_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols, uint32_t gap, uint32_t isPad,
              uint32_t rightPadding, float paddingValue);
void cast_to_half(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n, uint32_t tile, int32_t mode);
void cast_to_bf16(GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n, uint32_t tile, int32_t mode);
void strided_rows(GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols, uint32_t srcGap,
                  uint32_t dstGap);
void rule_case(const char* name, GM_ADDR x, uint32_t n);
void take_memory(const char* memory, uint32_t bytes);
void block_info(GM_ADDR out);
void mix_matmul_softmax(GM_ADDR x, GM_ADDR w, GM_ADDR ws, GM_ADDR y, GM_ADDR info, uint32_t m,
                        uint32_t k, uint32_t n);
void mix_rule_case(const char* name, GM_ADDR x, uint32_t n);
void sync_all_case(const char* name, GM_ADDR x, uint32_t n);

// Mixed launch: blocks x (1 AIC + 2 AIV); x [blocks * m, k], w [k, n], ws and y [blocks * m, n]
// half, info int32 [blocks * 3 * 8].
int twin_mix_matmul_softmax(uint32_t blocks, GM_ADDR x, GM_ADDR w, GM_ADDR ws, GM_ADDR y,
                            GM_ADDR info, uint32_t m, uint32_t k, uint32_t n, char* err,
                            size_t cap)
{
    const uint64_t rows = static_cast<uint64_t>(blocks) * m;
    return Guard(err, cap, [&] {
        AscendC::twin::RunMixKernel(blocks, {{"x", x, rows * k * 2}, {"w", w, k * n * 2ull},
                                    {"ws", ws, rows * n * 2}, {"y", y, rows * n * 2},
                                    {"info", info, blocks * 3 * 8 * 4ull}},
                                    mix_matmul_softmax, x, w, ws, y, info, m, k, n);
    });
}

// Mixed launch of sync_all.cpp's case `name` on blocks x (1 AIC + 2 AIV); x int32 [n].
int twin_sync_all(const char* name, uint32_t blocks, GM_ADDR x, uint32_t n, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        AscendC::twin::RunMixKernel(blocks, {{"x", x, n * 4ull}}, sync_all_case, name, x, n);
    });
}

int twin_mix_rule(const char* name, uint32_t blocks, GM_ADDR x, uint32_t n, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        AscendC::twin::RunMixKernel(blocks, {{"x", x, n * 4ull}}, mix_rule_case, name, x, n);
    });
}

int twin_add(int32_t isHalf, uint32_t blocks, GM_ADDR x, GM_ADDR y, GM_ADDR z, uint32_t total,
             uint32_t tile, char* err, size_t cap)
{
    const uint64_t bytes = static_cast<uint64_t>(total) * (isHalf ? 2 : 4);
    return Guard(err, cap, [&] {
        RunKernel(blocks, {{"x", x, bytes}, {"y", y, bytes}, {"z", z, bytes}},
                  isHalf ? add_custom_half : add_custom_float, x, y, z, total, tile);
    });
}

int twin_softmax_rows(uint32_t blocks, GM_ADDR x, GM_ADDR y, uint32_t rows, uint32_t cols,
                      char* err, size_t cap)
{
    const uint64_t bytes = static_cast<uint64_t>(rows) * cols * 2;
    return Guard(err, cap, [&] {
        RunKernel(blocks, {{"x", x, bytes}, {"y", y, bytes}}, softmax_rows, x, y, rows, cols);
    });
}

int twin_scale_unaligned(uint32_t blocks, GM_ADDR x, GM_ADDR y, uint32_t total, uint32_t tile,
                         float scale, char* err, size_t cap)
{
    const uint64_t bytes = static_cast<uint64_t>(total) * 4;
    return Guard(err, cap, [&] {
        RunKernel(blocks, {{"x", x, bytes}, {"y", y, bytes}}, scale_unaligned, x, y, total, tile,
                  scale);
    });
}

int twin_pad_rows(GM_ADDR x, uint64_t xBytes, GM_ADDR y, uint64_t yBytes, uint32_t rows,
                  uint32_t cols, uint32_t gap, uint32_t isPad, uint32_t rightPadding,
                  float paddingValue, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        RunKernel(1, {{"x", x, xBytes}, {"y", y, yBytes}}, pad_rows, x, y, rows, cols, gap, isPad,
                  rightPadding, paddingValue);
    });
}

int twin_strided_rows(GM_ADDR x, uint64_t xBytes, GM_ADDR y, uint64_t yBytes, uint32_t rows,
                      uint32_t cols, uint32_t srcGap, uint32_t dstGap, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        RunKernel(1, {{"x", x, xBytes}, {"y", y, yBytes}}, strided_rows, x, y, rows, cols, srcGap,
                  dstGap);
    });
}

int twin_cast(int32_t toBf16, uint32_t blocks, GM_ADDR x, GM_ADDR y, GM_ADDR back, uint32_t n,
              uint32_t tile, int32_t mode, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        RunKernel(blocks, {{"x", x, n * 4ull}, {"y", y, n * 2ull}, {"back", back, n * 4ull}},
                  toBf16 ? cast_to_bf16 : cast_to_half, x, y, back, n, tile, mode);
    });
}

int twin_rule(const char* name, uint32_t blocks, GM_ADDR x, uint32_t n, char* err, size_t cap)
{
    return Guard(err, cap, [&] { RunKernel(blocks, {{"x", x, n * 4ull}}, rule_case, name, x, n); });
}

int twin_take_memory(const char* memory, uint32_t bytes, char* err, size_t cap)
{
    return Guard(err, cap, [&] { RunKernel(1, take_memory, memory, bytes); });
}

int twin_block_info(uint32_t blocks, GM_ADDR out, char* err, size_t cap)
{
    return Guard(err, cap, [&] {
        RunKernel(blocks, {{"out", out, blocks * 32ull}}, block_info, out);
    });
}

// Misuse of the launch itself: twin API called outside a kernel, or a bad launch.
int twin_misuse(const char* what, char* err, size_t cap)
{
    const std::string name = what;
    return Guard(err, cap, [&] {
        if (name == "block_idx_outside_kernel") {
            AscendC::GetBlockIdx();
        } else if (name == "tpipe_outside_kernel") {
            AscendC::TPipe pipe;
        } else if (name == "zero_blocks") {
            RunKernel(0, [] {});
        } else if (name == "cross_flag_in_plain_launch") {
            RunKernel(1, [] { AscendC::CrossCoreSetFlag<2, PIPE_MTE3>(0); });
        } else if (name == "sync_all_in_plain_launch") {
            RunKernel(2, [] { AscendC::SyncAll<true>(); });
        } else if (name == "mix_zero_blocks") {
            AscendC::twin::RunMixKernel(0, {}, [] {});
        } else if (name == "nested_launch") {
            RunKernel(1, [] { RunKernel(1, [] {}); });
        } else {
            AscendC::twin::Fail("twin_misuse: no case named '", name, "'");
        }
    });
}

// Capacity in bytes of one memory as the twin models it (0 for an unknown name).
uint32_t twin_capacity(const char* memory)
{
    using AscendC::twin::Memory;
    for (int m = 0; m < static_cast<int>(Memory::COUNT); ++m) {
        const auto& info = AscendC::twin::Info(static_cast<Memory>(m));
        if (std::string(info.name) == memory) return info.capacity;
    }
    return 0;
}
}
