// The AI core configs every OpDef of the package registers: Atlas A2 (ascend910b) and A3
// (ascend910_93), dynamic shapes. The tiling of each op is registered by its tiling_adapter.cpp
// (IMPL_OP_OPTILING). Only CANN's build compiles this (op_package/).
#pragma once

#include "register/op_def_registry.h"

namespace cann_attention {

inline void AddAscendConfigs(ops::OpDef& def) {
    ops::OpAICoreConfig config;
    config.DynamicCompileStaticFlag(true)
        .DynamicFormatFlag(true)
        .DynamicRankSupportFlag(true)
        .DynamicShapeSupportFlag(true)
        .NeedCheckSupportFlag(false)
        .PrecisionReduceFlag(true);
    def.AICore().AddConfig("ascend910b", config);
    def.AICore().AddConfig("ascend910_93", config);
}

}  // namespace cann_attention
