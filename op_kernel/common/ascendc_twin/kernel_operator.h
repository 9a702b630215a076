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
//          AscendC::twin::RunMixKernel(numBlocks, {{"x", x, bytes}, ...}, kernel, args...) launches
//          a mixed (KERNEL_TYPE_MIX_AIC_1_2) kernel: per block one cube core (AIC) and two vector
//          cores (AIV, sub-blocks 0 and 1), all 3 x numBlocks cores at once, each on its own
//          std::thread with its own TPipe, memories (AIC: L1/L0A/L0B/L0C, AIV: UB) and pipe flags;
//          they share GM and the cross-core flags (twin/mix.h). RunKernel is unchanged.
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
//                 Cast (float <-> half / bfloat16_t): the "first count elements" form;
//                 ReduceMax (calIndex false) and ReduceSum, half / float (twin/reduce.h)
//   cube          DataCopy(L1 dst, GM src, Nd2NzParams) (ND -> NZ), LoadData(L0A/L0B dst, L1 src,
//                 LoadData2DParams) (whole 512 B fractals, ifTranspose for 16-bit types),
//                 Mmad(CO1 float, A2, B2, MmadParams) for half / bfloat16_t inputs,
//                 Fixpipe<T, float, CFG_ROW_MAJOR>(GM, CO1, FixpipeParamsV220) (NZ -> ND, quantPre
//                 NoQuant / F322F16 / F322BF16, reluEn); QuantMode_t, FixpipeConfig, CO2Layout
//   sync          SetFlag<HardEvent>(id), WaitFlag<HardEvent>(id), PipeBarrier<pipe_t>(),
//                 CrossCoreSetFlag<modeId, pipe>(flagId), CrossCoreWaitFlag(flagId) and
//                 CrossCoreWaitFlag<modeId, pipe>(flagId), SyncAll<isAIVOnly>() (the hard
//                 all-core barrier)
//   cores         GetBlockIdx(), GetBlockNum(), GetSubBlockIdx(), GetTaskRation() (GetTaskRatio),
//                 g_coreType with AscendC::AIC / AIV, ASCEND_IS_AIC, ASCEND_IS_AIV,
//                 ASCEND_IS_NOT_AIC/AIV, KERNEL_TASK_TYPE_DEFAULT(...) (accepted, no effect),
//                 KernelMetaType
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
//   * Mixed launch (RunMixKernel): GetBlockIdx is the block on the AIC and 2 * block + sub on an
//     AIV (range [0, 2 * numBlocks) for AIC:AIV = 1:2); GetBlockNum is numBlocks on every core.
//     "GetBlockIdx", https://www.hiascend.com/document/detail/zh/canncommercial/latest/API/ascendcopapi/atlasascendc_api_07_0185.html
//     GetSubBlockIdx is the AIV's id 0..N-1 within its AI Core (1:N).  "GetSubBlockIdx",
//     https://www.hiascend.com/document/detail/en/CANNCommunityEdition/900/API/ascendcopapi/atlasascendc_api_07_0663.html
//     (that page also calls the basic API's value a chip-wide logical id; the twin follows its
//     first paragraph, 0 / 1). GetTaskRation: 2 on an AIV, 1 on the AIC (the twin's reading of
//     "GetTaskRatio gives the AIC:AIV ratio", GetBlockIdx page).
//     Each core has only its own memories: InitBuffer of a UB position on the AIC, or of an
//     L1/L0 position on an AIV, is an error (separated architecture; capacities as above).
//   * CrossCoreSetFlag / CrossCoreWaitFlag: flagId in [0, 10] on A2/A3; pipe not PIPE_S/PIPE_ALL;
//     modeId in [0, 2]: mode 0 syncs all AICs (or all AIVs) of the launch, mode 1 the two AIVs of
//     one AI Core (an AIV's wait returns once both AIVs have set), mode 2 the AIC with its AIVs
//     (an AIC set releases a wait on each of its two AIVs; the AIC's wait returns once both AIVs
//     have set). Each flag is a counter: set adds 1, wait blocks while 0 then subtracts 1; more
//     than 16 pending sets of one flagId are an error. A wait that can never return -- every core
//     still running is waiting and none of the waits can be met -- is reported as a deadlock
//     naming the core and flag (the device would hang).  "CrossCoreSetFlag(ISASI)",
//     https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0273.html
//     and "CrossCoreWaitFlag(ISASI)", https://www.hiascend.com/document/detail/zh/canncommercial/800/apiref/ascendcopapi/atlasascendc_api_07_0274.html
//     and the older page's counters (an AIC set adds 1 on both AIVs; both AIV sets add 1 on the
//     AIC), https://www.hiascend.com/document/detail/zh/canncommercial/80RC22/apiref/opdevgapi/atlasascendc_api_07_0268.html
//   * SyncAll<isAIVOnly>() (hard sync), in a mixed launch only (on the device it needs a __mix__
//     kernel type; RunKernel's blocks run one after another, so a SyncAll there is an error):
//     a barrier over the cores it covers -- SyncAll<false>(): every AIC and AIV of the launch
//     (the page's mixed form: the AIC waits for its AIVs, all AICs meet, the AIVs wait for their
//     AIC; the twin models the net effect, one barrier over all 3 x numBlocks cores);
//     SyncAll<true>(): the 2 x numBlocks AIVs (an AIC calling it is an error: a mixed kernel
//     needs isAIVOnly = false, the page says <true> there syncs the AIVs only). A core's n-th
//     SyncAll returns once every covered core has reached its n-th; every GM write made before
//     the barrier on any covered core is then visible to the others (the threads meet under
//     one mutex). numBlocks above the 24 AI Cores of platform.py's 910B / A3 is an error (the
//     page: numBlocks must not exceed the cores that run the kernel, else it hangs). A covered
//     core that returns from the kernel without reaching a SyncAll the others wait at is
//     reported, naming it (the device would hang), and so is a wait that can never end because
//     every running core waits (at SyncAll or on a cross-core flag no running core can set).
//     Mixing SyncAll<true> and SyncAll<false> at one barrier is refused as not modelled.
//     "SyncAll", https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/910beta2/API/ascendcopapi/atlasascendc_api_07_0204.html
//     and asc-devkit's docs/zh/api/SIMD-API/基础API/同步控制/核间同步/SyncAll.md (flagIds 11-14 taken by
//     the hard form: outside the [0, 10] a kernel may use, so no clash is possible in the twin).
//   * Mmad: dst at CO1 (L0C, float), fmLocal at A2 (L0A), filterLocal at B2 (L0B); m, n, k in
//     [0, 4095] (k need NOT be a multiple of 16: the page gives only the range); A in ZZ, B in ZN,
//     C in NZ, fractals 16 x (32 B / sizeof) = 512 B for A/B and 16 x 16 for C, so each operand
//     must hold ceil(m/16) x ceil(k/16) (resp. k x n, m x n) whole fractals; cmatrixInitVal true:
//     C = A x B, false (or the deprecated isBias): C += A x B; cmatrixSource (bias table) is
//     refused as not modelled.  "Mmad", https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/910beta1/API/ascendcopapi/atlasascendc_api_07_0249.html
//     and MmadParams, https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/80RC2alpha002/apiref/opdevgapi/atlasascendc_api_07_0239.html
//   * LoadData (2D): A1 -> A2 and B1 -> B2 only; repeatTimes >= 1; whole 512 B fractals from
//     startIndex + i * srcStride to i * (1 + dstGap); L0A/L0B operands 512 B aligned ("General
//     Restrictions"); bounds of both tensors checked.
//   * DataCopy with Nd2NzParams: destination at A1/B1/C1/TSCM (L1), 32 B aligned; element (r, c)
//     of ND matrix i lands at i * dstNzMatrixStride + (c / C0) * dstNzC0Stride * C0 +
//     r * dstNzNStride * C0 + c % C0 (C0 = 32 B / sizeof(T)); dstNzC0Stride and dstNzNStride in
//     [1, 16384], nValue <= 16384, srcDValue >= dValue, C0 columns may not overlap.
//     "基础数据搬运" (DataCopy), as above.
//   * Fixpipe: source at CO1 (L0C) 64 B aligned, float; nSize in [1, 4095]; srcStride (rows of
//     the NZ source, a multiple of 16, >= mSize); dstStride >= nSize elements; quantPre F322F16 for
//     half, F322BF16 for bfloat16_t, NoQuant for float (fp32 -> 16-bit rounds to nearest even).
//     "Fixpipe", https://www.hiascend.com/document/detail/zh/CANNCommunityEdition/910beta2/API/ascendcopapi/atlasascendc_api_07_0251.html
//
// Not modelled yet
//   * Concurrency inside a core. RunKernel runs blocks one after another on the calling thread;
//     RunMixKernel runs every core on its own thread, but within a core every instruction runs in
//     program order, so the pipes (MTE1, MTE2, MTE3, V, S, M, FIX) never overlap: a missing
//     SetFlag/WaitFlag or PipeBarrier that would race on the device is not detected (only the flag
//     protocol is checked), and the pipe named in CrossCoreSetFlag only has its PIPE_S/PIPE_ALL
//     rule checked. GM written by one core and read by another without a cross-core flag between
//     them is not detected as a race either. Timing is not modelled.
//   * Cube/vector: KERNEL_TYPE_MIX_AIC_1_1, AIC-only and AIV-only task types (RunMixKernel is always
//     1:2, RunKernel is the plain vector launch); the soft SyncAll (GM / UB workspaces,
//     usedCores), SyncAllConfig (Ascend 950 only), the batch-mode scheduling the page asks for
//     with SyncAll (SetScheduleMode: the twin runs every block at once anyway), the cost of a
//     barrier; L0C -> UB / L1 paths, Fixpipe to NZ,
//     ndNum > 1, channel split and the quantisation modes other than F322F16/F322BF16; LoadData
//     3D, LoadDataWithTranspose, addrMode, the transposition of non-16-bit fractals; Mmad with
//     int8 / float inputs, bias (C2 / BT buffer), unitFlag, sparse / winograd; the Matmul high-level
//     API; what Nd2Nz writes into the padding of a partial C0 column (the twin leaves it
//     untouched) and what the hardware reads for k between k and the fractal edge (the twin reads
//     only the first k); the cube's accumulation order inside one Mmad (the twin sums in float, in
//     k order); the chip-wide view of GetSubBlockIdx; leftover cross-core flag counts at return
//     are not reported. Mode-0 flags see only the cores of this launch.
//   * Vector operations have only their "first count elements" form (no mask / repeat forms;
//     of the reductions only ReduceMax / ReduceSum), for the element types listed in vector.h;
//     Cast covers float <-> half / bfloat16_t only. 16-bit float results are computed in float
//     and rounded once; the hardware's own precision (e.g. of Exp) and integer overflow
//     behaviour are not modelled.
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
#include "twin/mix.h"
#include "twin/cube.h"
#include "twin/reduce.h"

#endif  // CANN_ATTENTION_ASCENDC_TWIN_KERNEL_OPERATOR_H
