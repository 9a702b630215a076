// What the CANN tiling adapters (op_host/<op>/tiling_adapter.cpp) share: gert's tensors, attributes
// and platform read into the plain structs of op_host/common/cpp/core_common.h, the one way a
// refusal is reported, and the TilingData written where CANN reads it.
//
// An adapter does no checking of its own: the tiling core refuses, with the Python check's
// message, every call it cannot plan. The adapter refuses only what the core's structs cannot
// hold (a rank above kMaxRank, a missing attribute, a platform it cannot read), in the same
// "<op>: <argument>: expected <x>, got <y>" form.
//
// Only CANN's build compiles this (op_package/CMakeLists.txt): it needs metadef's exe_graph
// headers and the AscendC tiling API's tiling/platform/platform_ascendc.h (CANN >= 9.0).
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <utility>

#include "exe_graph/runtime/tiling_context.h"
#include "graph/types.h"
#include "tiling/platform/platform_ascendc.h"

#include "core_common.h"

namespace cann_attention {
namespace adapter {

// ge::DataType -> DtypeCode (torch's numbering; the core spells dtypes as torch does). A dtype
// torch has no name for maps past the table, which the core reports as "<unknown dtype code N>"
// (not reached through our OpDefs: CANN matches the dtypes against them before the tiling).
inline int32_t DtypeOf(ge::DataType t) {
    switch (t) {
        case ge::DT_UINT8: return kUint8;
        case ge::DT_INT8: return kInt8;
        case ge::DT_INT16: return kInt16;
        case ge::DT_INT32: return kInt32;
        case ge::DT_INT64: return kInt64;
        case ge::DT_FLOAT16: return kFloat16;
        case ge::DT_FLOAT: return kFloat32;
        case ge::DT_DOUBLE: return kFloat64;
        case ge::DT_BOOL: return kBool;
        case ge::DT_BF16: return kBfloat16;
        case ge::DT_UINT16: return kUint16;
        case ge::DT_UINT32: return kUint32;
        case ge::DT_UINT64: return kUint64;
        case ge::DT_COMPLEX64: return kComplex64;
        case ge::DT_COMPLEX128: return kComplex128;
        default: return kDtypeCount + static_cast<int32_t>(t);
    }
}

// A refusal of the adapter itself, in the core's form (core_common.h Expected).
struct Refused {
    std::string message;
};

// One tensor argument as the core sees it: present when CANN instantiated it (an optional input
// passed as None is not), its storage shape (format ND) and dtype. Contiguous: every input of our
// OpDefs is AutoContiguous, so CANN hands the kernel contiguous tensors.
inline TensorDesc Describe(const char* op, const char* arg, const gert::StorageShape* shape,
                           const gert::CompileTimeTensorDesc* desc) {
    TensorDesc t{};
    if (shape == nullptr || desc == nullptr) return t;
    const gert::Shape& dims = shape->GetStorageShape();
    if (dims.GetDimNum() > static_cast<size_t>(kMaxRank))
        throw Refused{Expected(op, arg, "a rank of at most " + Str(kMaxRank),
                               "rank " + Str(static_cast<int64_t>(dims.GetDimNum())))};
    t.present = 1;
    t.dtype = DtypeOf(desc->GetDataType());
    t.rank = static_cast<int32_t>(dims.GetDimNum());
    t.contiguous = 1;
    for (int32_t i = 0; i < t.rank; ++i) t.dims[i] = dims.GetDim(static_cast<size_t>(i));
    return t;
}

// A required input, by its IR index.
inline TensorDesc Required(const gert::TilingContext* context, const char* op, const char* arg,
                           size_t ir_index) {
    return Describe(op, arg, context->GetRequiredInputShape(ir_index),
                    context->GetRequiredInputDesc(ir_index));
}

// An optional input, by its IR index (absent: present = 0).
inline TensorDesc Optional(const gert::TilingContext* context, const char* op, const char* arg,
                           size_t ir_index) {
    return Describe(op, arg, context->GetOptionalInputShape(ir_index),
                    context->GetOptionalInputDesc(ir_index));
}

// An attribute by index. CANN fills every attribute of the OpDef (with its default when the
// caller omits it), so a null pointer is a context the adapter cannot read.
template <typename T>
const T& Attr(const gert::RuntimeAttrs* attrs, const char* op, const char* name, size_t index) {
    const T* value = attrs == nullptr ? nullptr : attrs->GetAttrPointer<T>(index);
    if (value == nullptr) throw Refused{Expected(op, name, "an attribute in the op's context", "none")};
    return *value;
}

// A str attribute as the core's CoreText (null stands for None).
inline CoreText Text(const gert::RuntimeAttrs* attrs, const char* op, const char* name,
                     size_t index) {
    const char* s = attrs == nullptr ? nullptr : attrs->GetStr(index);
    if (s == nullptr) throw Refused{Expected(op, name, "an attribute in the op's context", "none")};
    return CoreText{s, static_cast<int64_t>(std::strlen(s))};
}

// The platform the kernel runs on, read off CANN's platform info: cube cores, the vector cores
// paired with each, and each core's buffers. The name is the one platform.py gives the SoC; the
// core refuses any other SoC by it (`name` keeps the string alive).
inline CorePlatform Platform(gert::TilingContext* context, const char* op, std::string* name) {
    fe::PlatFormInfos* info = context->GetPlatformInfo();
    if (info == nullptr)
        throw Refused{Expected(op, "platform", "CANN's platform info in the tiling context", "none")};
    const platform_ascendc::PlatformAscendC ascendc(info);
    switch (ascendc.GetSocVersion()) {
        case platform_ascendc::SocVersion::ASCEND910B: *name = "Ascend910B"; break;
        case platform_ascendc::SocVersion::ASCEND910_93: *name = "Ascend910_93"; break;
        default:
            *name = "SocVersion " + Str(static_cast<int64_t>(ascendc.GetSocVersion()));
    }
    CorePlatform pf{};
    pf.name = name->c_str();
    pf.kind = kPlatformAscend;
    pf.num_cores = ascendc.GetCoreNumAic();
    pf.vector_cores_per_core =
        pf.num_cores > 0 ? static_cast<int32_t>(ascendc.GetCoreNumAiv() / pf.num_cores) : 0;
    const std::pair<platform_ascendc::CoreMemType, int64_t*> buffers[] = {
        {platform_ascendc::CoreMemType::UB, &pf.ub},
        {platform_ascendc::CoreMemType::L1, &pf.l1},
        {platform_ascendc::CoreMemType::L0_A, &pf.l0a},
        {platform_ascendc::CoreMemType::L0_B, &pf.l0b},
        {platform_ascendc::CoreMemType::L0_C, &pf.l0c}};
    for (const auto& [type, bytes] : buffers) {
        uint64_t size = 0;
        ascendc.GetCoreMemSize(type, size);
        *bytes = static_cast<int64_t>(size);
    }
    return pf;
}

// Bytes of GM workspace CANN reserves for the AscendC library (workspace[0] starts with them).
inline size_t SystemWorkspace(gert::TilingContext* context) {
    return platform_ascendc::PlatformAscendC(context->GetPlatformInfo()).GetLibApiWorkSpaceSize();
}

// A refused call: the message goes to the log (stderr, which the caller's process shows) and
// CANN gets GRAPH_FAILED, so the launch fails with it.
inline ge::graphStatus Refuse(const gert::TilingContext* context, const std::string& message) {
    const char* node = context == nullptr ? nullptr : context->GetNodeName();
    std::fprintf(stderr, "[ERROR] %s%s%s\n", node ? node : "", node ? ": " : "", message.c_str());
    return ge::GRAPH_FAILED;
}

// Where the core writes the TilingData: CANN's raw tiling buffer (its capacity is the core's
// `size`; the core refuses one too small).
struct TilingBuffer {
    uint8_t* data;
    int64_t capacity;
};

inline TilingBuffer RawTiling(gert::TilingContext* context, const char* op) {
    gert::TilingData* raw = context->GetRawTilingData();
    if (raw == nullptr || raw->GetData() == nullptr)
        throw Refused{Expected(op, "tiling_data", "CANN's tiling buffer", "none")};
    return {static_cast<uint8_t*>(raw->GetData()), static_cast<int64_t>(raw->GetCapacity())};
}

// The outputs of a planned call: TilingData size, tiling key, blocks, one workspace.
inline ge::graphStatus Publish(gert::TilingContext* context, const char* op, size_t tiling_bytes,
                               uint64_t tiling_key, uint32_t blocks, size_t workspace_bytes) {
    size_t* workspace = context->GetWorkspaceSizes(1);
    if (workspace == nullptr)
        return Refuse(context, Expected(op, "workspace", "CANN's workspace sizes", "none"));
    context->GetRawTilingData()->SetDataSize(tiling_bytes);
    context->SetTilingKey(tiling_key);
    context->SetBlockDim(blocks);
    // Batch mode: the op's blocks start together. Both kernels meet at SyncAll, which the
    // SyncAll documentation says can deadlock without it when several streams run kernels
    // with core synchronisation at once. (A CANN without this output refuses it: nothing to do.)
    (void)context->SetScheduleMode(1);
    workspace[0] = workspace_bytes;
    return ge::GRAPH_SUCCESS;
}

// What a kernel launch of a plan needs beyond CANN's system workspace.
struct Launch {
    uint32_t blocks;
    size_t workspace_bytes;
};

// An op's whole tiling function: read the call (`read(context)`, which throws Refused), let the
// core (`core`: the op's *_tiling) check and plan it into CANN's tiling buffer, and publish the
// TilingData with the launch `launch(tiling data)` gives. A refusal, the adapter's or the
// core's, is logged and fails the tiling.
template <typename TilingData, typename Read, typename Core, typename LaunchOf>
ge::graphStatus Tile(gert::TilingContext* context, const char* op, Read read, Core core,
                     LaunchOf launch) {
    try {
        const auto params = read(context);
        std::string soc;
        const CorePlatform platform = Platform(context, op, &soc);
        const TilingBuffer out = RawTiling(context, op);
        char message[1024];
        if (core(&params, &platform, out.data, out.capacity, message, sizeof message) != 0)
            return Refuse(context, message);
        const auto& t = *reinterpret_cast<const TilingData*>(out.data);
        const Launch l = launch(t);
        return Publish(context, op, sizeof t, t.tiling_key, l.blocks,
                       SystemWorkspace(context) + l.workspace_bytes);
    } catch (const Refused& r) {
        return Refuse(context, r.message);
    }
}

}  // namespace adapter
}  // namespace cann_attention
