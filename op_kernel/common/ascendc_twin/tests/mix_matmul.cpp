// A mixed (KERNEL_TYPE_MIX_AIC_1_2) kernel: per block, the cube core computes
// ws = x_b [m, k] @ w [k, n] (half in, float accumulation in L0C, half out through Fixpipe) into a
// GM workspace, in two k halves (the second accumulates: cmatrixInitVal = false), then signals its
// two vector cores (CrossCoreSetFlag mode 2). Each vector core waits (CrossCoreWaitFlag), takes its
// half of the m rows of the workspace and writes y = softmax(row) as half.
// Every core also writes what GetBlockIdx / GetBlockNum / GetSubBlockIdx / GetTaskRation and
// ASCEND_IS_AIC return into info[core * 8 ..] (core = 3 * block + {0: AIC, 1 + sub: AIV}).
#include "kernel_operator.h"

using namespace AscendC;

namespace {
constexpr uint16_t kFlagCubeDone = 3;

__aicore__ inline uint32_t Ceil16(uint32_t v) { return (v + 15) / 16; }

class MixMatmulSoftmax {
public:
    __aicore__ inline void Init(GM_ADDR x, GM_ADDR w, GM_ADDR ws, GM_ADDR y, GM_ADDR info,
                                uint32_t m, uint32_t k, uint32_t n)
    {
        m_ = m; k_ = k; n_ = n;
        // ASCEND_IS_AIC is constexpr(...) on the device: usable only as `if ASCEND_IS_AIC {`
        int64_t side = 0;                                // 0: the AIC, 1 + i: AIV i
        if ASCEND_IS_AIC {
            group_ = GetBlockIdx();
        } else {
            group_ = GetBlockIdx() / GetTaskRation();
            side = 1 + GetSubBlockIdx();
        }
        xGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(x) + group_ * m * k, m * k);
        wGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(w), k * n);
        wsGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(ws) + group_ * m * n, m * n);
        yGm_.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(y) + group_ * m * n, m * n);
        infoGm_.SetGlobalBuffer(reinterpret_cast<__gm__ int32_t*>(info));
        const int64_t core = group_ * 3 + side;
        infoGm_.SetValue(core * 8 + 0, static_cast<int32_t>(GetBlockIdx()));
        infoGm_.SetValue(core * 8 + 1, static_cast<int32_t>(GetBlockNum()));
        infoGm_.SetValue(core * 8 + 2, static_cast<int32_t>(GetSubBlockIdx()));
        infoGm_.SetValue(core * 8 + 3, static_cast<int32_t>(GetTaskRation()));
        infoGm_.SetValue(core * 8 + 4, side == 0 ? 1 : 0);
    }

    __aicore__ inline void Cube()
    {
        const uint32_t m1 = Ceil16(m_), k1 = Ceil16(k_), n1 = Ceil16(n_);
        const uint32_t kc1 = k1 / 2;                     // k1 fractal columns per k half
        pipe_.InitBuffer(a1_, m1 * 16 * k1 * 16 * sizeof(half));
        pipe_.InitBuffer(b1_, k1 * 16 * n1 * 16 * sizeof(half));
        pipe_.InitBuffer(a2_, m1 * kc1 * 256 * sizeof(half));
        pipe_.InitBuffer(b2_, kc1 * n1 * 256 * sizeof(half));
        pipe_.InitBuffer(c1_, m1 * n1 * 256 * sizeof(float));
        LocalTensor<half> a1 = a1_.Get<half>();
        LocalTensor<half> b1 = b1_.Get<half>();
        LocalTensor<half> a2 = a2_.Get<half>();
        LocalTensor<half> b2 = b2_.Get<half>();
        LocalTensor<float> c1 = c1_.Get<float>();

        // GM (ND) -> L1 (NZ): C0 columns of 16 halves, m1 * 16 (k1 * 16) rows apart.
        DataCopy(a1, xGm_, Nd2NzParams(1, m_, k_, 0, k_, m1 * 16, 1, 0));
        DataCopy(b1, wGm_, Nd2NzParams(1, k_, n_, 0, n_, k1 * 16, 1, 0));
        SetFlag<HardEvent::MTE2_MTE1>(0);
        WaitFlag<HardEvent::MTE2_MTE1>(0);
        for (uint32_t half_ = 0; half_ < 2; ++half_) {
            // A: NZ -> ZZ, one LoadData per fractal row (fractal (i, j) of NZ is at j * m1 + i).
            for (uint32_t i = 0; i < m1; ++i) {
                LoadData(a2[i * kc1 * 256], a1,
                         LoadData2DParams(half_ * kc1 * m1 + i, kc1, m1, 0, 0, false, 0));
            }
            // B: NZ -> ZN, transposing each fractal; one LoadData per fractal row of B.
            for (uint32_t j = 0; j < kc1; ++j) {
                LoadData(b2[j * n1 * 256], b1,
                         LoadData2DParams(half_ * kc1 + j, n1, k1, 0, 0, true, 0));
            }
            SetFlag<HardEvent::MTE1_M>(0);
            WaitFlag<HardEvent::MTE1_M>(0);
            MmadParams mm;
            mm.m = m_;
            mm.n = n_;
            mm.k = kc1 * 16;
            mm.cmatrixInitVal = half_ == 0;
            Mmad(c1, a2, b2, mm);
            SetFlag<HardEvent::M_MTE1>(0);
            WaitFlag<HardEvent::M_MTE1>(0);
        }
        SetFlag<HardEvent::M_FIX>(0);
        WaitFlag<HardEvent::M_FIX>(0);
        FixpipeParamsV220 fp;
        fp.nSize = n_;
        fp.mSize = m_;
        fp.srcStride = m1 * 16;
        fp.dstStride = n_;
        fp.quantPre = QuantMode_t::F322F16;
        Fixpipe<half, float, CFG_ROW_MAJOR>(wsGm_, c1, fp);
        CrossCoreSetFlag<2, PIPE_FIX>(kFlagCubeDone);
    }

    __aicore__ inline void Vector()
    {
        pipe_.InitBuffer(in_, n_ * sizeof(half));
        pipe_.InitBuffer(row_, n_ * sizeof(float));
        pipe_.InitBuffer(out_, n_ * sizeof(half));
        LocalTensor<half> in = in_.Get<half>();
        LocalTensor<float> row = row_.Get<float>();
        LocalTensor<half> out = out_.Get<half>();
        CrossCoreWaitFlag(kFlagCubeDone);
        const uint32_t rows = m_ / 2;
        const uint32_t first = GetSubBlockIdx() * rows;
        for (uint32_t r = first; r < first + rows; ++r) {
            DataCopy(in, wsGm_[r * n_], n_);
            SetFlag<HardEvent::MTE2_V>(0);
            WaitFlag<HardEvent::MTE2_V>(0);
            Cast(row, in, RoundMode::CAST_NONE, n_);
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
            float mx = row.GetValue(0);
            for (uint32_t j = 1; j < n_; ++j) mx = row.GetValue(j) > mx ? row.GetValue(j) : mx;
            SetFlag<HardEvent::S_V>(0);
            WaitFlag<HardEvent::S_V>(0);
            Adds(row, row, -mx, n_);
            Exp(row, row, n_);
            SetFlag<HardEvent::V_S>(0);
            WaitFlag<HardEvent::V_S>(0);
            float sum = 0.0f;
            for (uint32_t j = 0; j < n_; ++j) sum += row.GetValue(j);
            SetFlag<HardEvent::S_V>(0);
            WaitFlag<HardEvent::S_V>(0);
            Muls(row, row, 1.0f / sum, n_);
            Cast(out, row, RoundMode::CAST_RINT, n_);
            SetFlag<HardEvent::V_MTE3>(0);
            WaitFlag<HardEvent::V_MTE3>(0);
            DataCopy(yGm_[r * n_], out, n_);
            SetFlag<HardEvent::MTE3_MTE2>(0);
            WaitFlag<HardEvent::MTE3_MTE2>(0);
        }
    }

private:
    TPipe pipe_;
    TBuf<TPosition::A1> a1_;
    TBuf<TPosition::B1> b1_;
    TBuf<TPosition::A2> a2_;
    TBuf<TPosition::B2> b2_;
    TBuf<TPosition::CO1> c1_;
    TBuf<TPosition::VECIN> in_;
    TBuf<TPosition::VECCALC> row_;
    TBuf<TPosition::VECOUT> out_;
    GlobalTensor<half> xGm_, wGm_, wsGm_, yGm_;
    GlobalTensor<int32_t> infoGm_;
    uint32_t m_ = 0, k_ = 0, n_ = 0;
    int64_t group_ = 0;
};
}  // namespace

extern "C" __global__ __aicore__ void mix_matmul_softmax(GM_ADDR x, GM_ADDR w, GM_ADDR ws,
                                                         GM_ADDR y, GM_ADDR info, uint32_t m,
                                                         uint32_t k, uint32_t n)
{
    KERNEL_TASK_TYPE_DEFAULT(KERNEL_TYPE_MIX_AIC_1_2);
    MixMatmulSoftmax op;
    op.Init(x, w, ws, y, info, m, k, n);
    if ASCEND_IS_AIC {
        op.Cube();
    }
    if ASCEND_IS_AIV {
        op.Vector();
    }
}

// Broken mixed kernels, one per rule: the named case runs on the core it concerns; the others
// return at once.
extern "C" __global__ __aicore__ void mix_rule_case(const char* name, GM_ADDR x, uint32_t n)
{
    const std::string c = name;
    TPipe pipe;
    if (c == "deadlock_cube_never_sets") {
        if ASCEND_IS_AIV {
            CrossCoreWaitFlag(5);          // the AIC returns without CrossCoreSetFlag
        }
    } else if (c == "deadlock_both_wait") {
        CrossCoreWaitFlag(ASCEND_IS_AIC ? 1 : 2);   // each side waits for the other first
        if ASCEND_IS_AIC CrossCoreSetFlag<2, PIPE_FIX>(2);
        else CrossCoreSetFlag<2, PIPE_MTE3>(1);
    } else if (c == "aiv_to_aic_ok") {
        if ASCEND_IS_AIV CrossCoreSetFlag<2, PIPE_MTE3>(4);   // both AIVs set, the AIC waits
        else CrossCoreWaitFlag(4);
        if ASCEND_IS_AIV {                                    // mode 1: barrier of the two AIVs
            CrossCoreSetFlag<1, PIPE_MTE3>(6);
            CrossCoreWaitFlag(6);
        }
    } else if (c == "one_aiv_sets") {
        if (ASCEND_IS_AIV && GetSubBlockIdx() == 0) CrossCoreSetFlag<2, PIPE_MTE3>(4);
        if ASCEND_IS_AIC CrossCoreWaitFlag(4);   // needs a set from both AIVs
    } else if (c == "pending_overflow") {
        if ASCEND_IS_AIC {
            for (int i = 0; i < 17; ++i) CrossCoreSetFlag<2, PIPE_FIX>(7);
        }
    } else if (c == "flag_id_range") {
        if ASCEND_IS_AIC CrossCoreSetFlag<2, PIPE_FIX>(11);
    } else if (c == "mode1_on_aic") {
        if ASCEND_IS_AIC CrossCoreSetFlag<1, PIPE_FIX>(0);
    } else if (c == "ub_on_aic") {
        if ASCEND_IS_AIC {
            TBuf<TPosition::VECCALC> buf;
            pipe.InitBuffer(buf, 1024);
        }
    } else if (c == "l1_on_aiv") {
        if ASCEND_IS_AIV {
            TBuf<TPosition::A1> buf;
            pipe.InitBuffer(buf, 1024);
        }
    } else if (c == "l0a_overflow") {
        if ASCEND_IS_AIC {
            TBuf<TPosition::A2> a, b;
            pipe.InitBuffer(a, 48 * 1024);
            pipe.InitBuffer(b, 32 * 1024);
        }
    } else if (ASCEND_IS_AIC) {
        TBuf<TPosition::A1> a1;
        TBuf<TPosition::B1> b1;
        TBuf<TPosition::A2> a2;
        TBuf<TPosition::B2> b2;
        TBuf<TPosition::CO1> c1;
        pipe.InitBuffer(a1, 16 * 1024);
        pipe.InitBuffer(b1, 16 * 1024);
        pipe.InitBuffer(a2, 2048);
        pipe.InitBuffer(b2, 2048);
        pipe.InitBuffer(c1, 4096);
        MmadParams mm;
        mm.m = 32; mm.n = 32; mm.k = 32;
        GlobalTensor<half> xGm;
        xGm.SetGlobalBuffer(reinterpret_cast<__gm__ half*>(x), n * 2);
        if (c == "mmad_wrong_position") {
            Mmad(c1.Get<float>(), b2.Get<half>(), b2.Get<half>(), mm);   // B2 as the left matrix
        } else if (c == "mmad_range") {
            mm.m = 4096;
            Mmad(c1.Get<float>(), a2.Get<half>(), b2.Get<half>(), mm);
        } else if (c == "mmad_operand_small") {
            mm.m = 48;                     // A needs 3 x 2 fractals = 1536 halves, holds 1024
            Mmad(c1.Get<float>(), a2.Get<half>(), b2.Get<half>(), mm);
        } else if (c == "mmad_ok_unaligned_k") {
            mm.k = 24;                     // k need not be a multiple of 16 (stored in 2 fractals)
            Mmad(c1.Get<float>(), a2.Get<half>(), b2.Get<half>(), mm);
        } else if (c == "loaddata_wrong_source") {
            LoadData(a2.Get<half>(), b1.Get<half>(), LoadData2DParams(0, 1, 0, 0, 0, false, 0));
        } else if (c == "loaddata_out_of_bounds") {
            LoadData(a2.Get<half>(), a1.Get<half>(), LoadData2DParams(0, 5, 0, 0, 0, false, 0));
        } else if (c == "nd2nz_to_ub_position") {
            DataCopy(a2.Get<half>(), xGm, Nd2NzParams(1, 16, 16, 0, 16, 16, 1, 0));
        } else if (c == "fixpipe_bad_quant") {
            FixpipeParamsV220 fp;
            fp.nSize = 16; fp.mSize = 16; fp.srcStride = 16; fp.dstStride = 16;
            Fixpipe<half, float, CFG_ROW_MAJOR>(xGm, c1.Get<float>(), fp);   // NoQuant to half
        } else {
            twin::Fail("mix_rule_case: no case named '", c, "'");
        }
    }
}
