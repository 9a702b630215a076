// The AscendC twin: the subset of the AscendC kernel API our kernels use, for g++ on a CPU.
//
// A kernel written against the real AscendC API (#include "kernel_operator.h") compiles unchanged
// with `g++ -std=c++17 -I op_kernel/common/ascendc_twin` and runs on the CPU, block by block, with
// the hardware's rules enforced: a broken rule throws AscendC::twin::TwinError with a message that
// names the API, the tensor and the numbers. The twin is our own code, written from Huawei's public
// AscendC documentation (pages listed below); no CANN source is copied.
//
// Launch:  AscendC::twin::RunKernel(numBlocks, {{"x", x, bytes}, ...}, kernel, args...) runs
//          kernel(args...) once per block index, each block on a fresh core, GM accesses checked
//          against the named buffers; AscendC::twin::Guard(message, capacity, fn) turns a
//          TwinError into a return code and a message for extern "C" entry points (harness.h).
//          The macro ASCENDC_TWIN is defined, for twin-only code next to a kernel.
// Examples: tests/*.cpp (kernels written as for the device, and entries.cpp), driven by
//          tests/op_kernel/test_ascendc_twin.py.
//
// API subset
//   keywords      __aicore__, __global__, __gm__, GM_ADDR (empty / plain-pointer CPU forms)
//   types         half (_Float16, else an IEEE binary16 struct: -DASCENDC_TWIN_HALF_STRUCT forces
//                 it), bfloat16_t, TPosition / QuePosition, HardEvent,
//                 pipe_t, RoundMode, TEventID, ONE_BLK_SIZE
//   tensors       GlobalTensor<T>: SetGlobalBuffer(ptr[, size]), GetValue, SetValue, operator[],
//                 GetSize, GetPhyAddr.  LocalTensor<T>: GetValue, SetValue, operator(), operator[],
//                 GetSize, GetLength, GetPosition, ReinterpretCast
//   memory        TPipe: InitBuffer(que, num, len), InitBuffer(buf, len), Reset, Destroy,
//                 AllocEventID / ReleaseEventID / FetchEventID.  TQue<pos, depth> and
//                 TQueBind<src, dst, depth>: AllocTensor, EnQue, DeQue, FreeTensor,
//                 GetTensorCountInQue, HasTensorInQue, VacantInQue, HasIdleBuffer.
//                 TBuf<pos>: Get(), Get(len), GetWithOffset(size, bufOffset)
//   data moves    DataCopy(dst, src, count | DataCopyParams) for GM -> UB/L1, UB -> GM, UB -> UB;
//                 DataCopyPad(dst, src, DataCopyExtParams[, DataCopyPadExtParams<T>]) GM <-> UB
//   vector        Add Sub Mul Div Max Min, Adds Muls Maxs Mins, Exp Ln Sqrt Abs, Duplicate,
//                 Cast (float <-> half / bfloat16_t): the "first count elements" form
//   sync          SetFlag<HardEvent>(id), WaitFlag<HardEvent>(id), PipeBarrier<pipe_t>()
//   cores         GetBlockIdx(), GetBlockNum()
//
// Rules enforced, and the documentation page each comes from
//   * Position -> memory: VECIN/VECOUT/VECCALC in UB, A1/B1/C1/TSCM in L1, A2 in L0A, B2 in L0B,
//     CO1 in L0C, GM/CO2 in Global Memory; start addresses aligned per memory (UB and L1 32 B,
//     L0A/L0B 512 B, L0C 64 B).  "General Restrictions" (通用约束),
//     https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0004.html
//   * Capacities per core, for everything InitBuffer places in a memory: UB 192 KiB (per vector
//     core), L1 512 KiB, L0A / L0B 64 KiB, L0C 128 KiB (per cube core): the figures of
//     op_host/common/platform.py (Ascend 910B / A3).  InitBuffer rounds len up to 32 B; all buffer
//     nums of a kernel add up to at most 64; a queue or TBuf is initialised again only after
//     TPipe::Reset.  "InitBuffer",
//     https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/82RC1alpha002/API/ascendcopapi/atlasascendc_api_07_0110.html
//   * One TPipe per kernel.  pyasc's TPipe documentation ("一个Kernel函数必须且只能初始化一个TPipe对象"),
//     https://gitcode.com/cann/pyasc/blob/master/docs/python-api/language/fwk.md
//   * Queues: AllocTensor takes a free buffer (none free: an error, where the device would wait
//     forever); EnQue takes an allocated tensor of the same queue, at most `depth` in the queue;
//     DeQue of an empty queue is an error (the device would wait forever); FreeTensor of a tensor
//     already freed or still in the queue is an error; a tensor used after FreeTensor, while in
//     its queue, or after its TPipe is gone is an error.  "Memory Management and Synchronization
//     Control", https://www.hiascend.com/document/detail/en/canncommercial/800/opdevg/Ascendcopdevg/atlas_ascendc_10_0027.html
//     and "AllocTensor", https://www.hiascend.com/doc_center/source/zh/CANNCommunityEdition/82RC1/API/ascendcopapi/atlasascendc_api_07_0149.html
//     and "Introduction to TBuf" (TBuf tensors are not enqueued or freed),
//     https://www.hiascend.com/document/detail/en/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0160.html
//   * GlobalTensor bounds: SetGlobalBuffer(buffer, bufferSize) gives the elements the tensor may
//     access; every access is checked against them and against the kernel argument (GM buffer of
//     the launch) it lies in.  "SetGlobalBuffer",
//     https://www.hiascend.com/document/detail/en/CANNCommunityEdition/900/API/ascendcopapi/atlasascendc_api_07_00024.html
//     A GM access must also lie inside one of the GM buffers the launch names (the twin's own
//     check: on the device a stray base pointer reads or overwrites another tensor).
//   * DataCopy: the length moved and the UB / L1 start address are multiples of 32 bytes
//     (DataCopyPad serves unaligned lengths); DataCopyParams counts 32-byte blocks; data paths
//     GM -> UB or L1, UB -> GM, UB -> UB.  "Overview" of the vector
//     operator sample, https://www.hiascend.com/doc_center/source/en/CANNCommunityEdition/900/programug/Ascendcopdevg/atlas_ascendc_10_10001.html
//     and "基础数据搬运" (DataCopy), https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/900beta1/API/ascendcopapi/atlasascendc_api_07_0103.html
//     and the burst units of the copy intrinsics, https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/83RC1alpha002/API/cceintrinsicapi/cceapi_0067.html
//   * DataCopyPad: GM <-> VECIN/VECOUT; local start 32-byte aligned, GM unaligned; blockCount in
//     [1, 4095], blockLen in bytes in [1, 2^21 - 1] and a whole number of elements; padding at
//     most 32 B a side; GM strides are byte gaps, UB strides 32-byte-block gaps; each block takes
//     a whole number of 32-byte blocks in UB; padding / dummy values as the pages state.
//     "DataCopyPad(ISASI)", https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0265.html
//     and the intrinsic's units, https://www.hiascend.com/document/detail/zh/canncommercial/83RC1/API/cceintrinsicapi/cceapi_0091.html
//     and "如何高效处理Ascend C非对齐数据" (dummy / padding values), https://www.hiascend.com/developer/techArticles/20250627-1
//   * Vector operations: operands are VECIN/VECCALC/VECOUT tensors starting 32-byte aligned.
//     "Add", https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/81RC1alpha001/apiref/ascendcopapi/atlasascendc_api_07_0035.html
//     and "Max", https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0039.html
//   * Cast rounding (CAST_NONE = CAST_RINT when precision is lost, RINT, FLOOR, CEIL, ROUND, TRUNC,
//     ODD); float -> half overflow saturates (the twin saturates float -> bfloat16_t alike);
//     half / bfloat16_t -> float is exact and takes CAST_NONE.  "Cast",
//     https://hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0072.html
//   * SetFlag / WaitFlag: event ids 0..7 on A2/A3; SetFlag sets the flag, WaitFlag blocks while it
//     is clear then clears it, so a WaitFlag with no SetFlag before it is an error (the device
//     would hang); SetFlag and WaitFlag come in pairs (setting a set flag, or returning with a
//     flag still set, is an error).  "SetFlag/WaitFlag(ISASI)",
//     https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0270.html
//     and "SetFlag/WaitFlag", https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0181.html
//   * PipeBarrier<PIPE_S> is a hardware error.  "PipeBarrier(ISASI)",
//     https://hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0271.html
//   * GetBlockIdx in [0, numBlocks).  "GetBlockIdx",
//     https://hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0185.html
//
// Not modelled yet
//   * Concurrency. Blocks run one after another on the calling thread, and within a block every
//     instruction runs in program order, so the pipes (MTE2, MTE3, V, S, M, FIX) never overlap: a
//     missing SetFlag/WaitFlag or PipeBarrier that would race on the device is not detected (only
//     the flag protocol is checked). Timing is not modelled.
//   * Cube and vector cores. One kind of core runs each block: there is no AIC/AIV pairing (1 cube
//     : 2 vector cores), no GetSubBlockIdx, no cross-core synchronisation (CrossCoreSetFlag /
//     CrossCoreWaitFlag, SyncAll) and no cube data path (LoadData, Mmad, Fixpipe, Matmul). L1 / L0
//     capacities are accounted for InitBuffer, but only DataCopy GM -> L1 moves data there.
//   * Vector operations have only their "first count elements" form (no mask / repeat forms, no
//     reductions), for the element types listed in vector.h; Cast covers float <-> half /
//     bfloat16_t only. 16-bit float results are computed in float and rounded once; the
//     hardware's own precision (e.g. of Exp) and integer overflow behaviour are not modelled.
//   * TilingData (GET_TILING_DATA), workspaces, atomics (SetAtomicAdd), TBufPool, SetPadValue,
//     the DataCopyParams/DataCopyPadParams form of DataCopyPad, and the other TPositions (C2, LCM,
//     SPM, SHM, C2PIPE2GM).
#ifndef CANN_ATTENTION_ASCENDC_TWIN_KERNEL_OPERATOR_H
#define CANN_ATTENTION_ASCENDC_TWIN_KERNEL_OPERATOR_H

#define ASCENDC_TWIN 1      // kernels may test it to add twin-only entry points

#include "twin/base.h"
#include "twin/numeric.h"
#include "twin/tensor.h"
#include "twin/pipe.h"
#include "twin/data_copy.h"
#include "twin/vector.h"
#include "twin/sync.h"
#include "twin/harness.h"

#endif  // CANN_ATTENTION_ASCENDC_TWIN_KERNEL_OPERATOR_H
