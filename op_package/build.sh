#!/usr/bin/env bash
# Builds the cann_attention custom op package (op_package/CMakeLists.txt) with the CANN toolkit
# found at $ASCEND_HOME_PATH, for Atlas A2 (ascend910b) and/or A3 (ascend910_93), and optionally
# installs the .run package it makes. Without CANN it says so in one line and exits 1.
#
#   source <CANN install>/set_env.sh          # sets ASCEND_HOME_PATH
#   bash op_package/build.sh                   # both SoCs -> build/op_package/custom_opp_*.run
#   bash op_package/build.sh --soc ascend910_93 --install
set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SOCS="ascend910b;ascend910_93"
BUILD_DIR="${REPO_ROOT}/build/op_package"
VENDOR="cann_attention"
JOBS="$(nproc 2>/dev/null || echo 4)"
INSTALL=0
INSTALL_PATH=""

usage() {
    cat <<EOF
Usage: bash op_package/build.sh [options]
  -c, --soc LIST        SoCs to build for: ascend910b, ascend910_93, or both separated by ','
                        or ';' (default: ascend910b;ascend910_93)
      --install         install the built package into \$ASCEND_OPP_PATH/vendors/<vendor>
      --install-path DIR  install it into DIR/vendors/<vendor> instead (then source
                        DIR/vendors/<vendor>/bin/set_env.bash before use)
      --build-dir DIR   build directory (default: build/op_package)
      --vendor NAME     vendor name of the package (default: cann_attention)
  -j, --jobs N          parallel build jobs (default: nproc)
  -h, --help            this help
Needs the CANN toolkit (>= 9.0, with its AscendC CMake modules): source its set_env.sh first,
which sets ASCEND_HOME_PATH.
EOF
}

while [[ $# -gt 0 ]]; do
    case "$1" in
        -c|--soc) SOCS="${2:?--soc needs a value}"; shift 2 ;;
        --install) INSTALL=1; shift ;;
        --install-path) INSTALL=1; INSTALL_PATH="${2:?--install-path needs a directory}"; shift 2 ;;
        --build-dir) BUILD_DIR="${2:?--build-dir needs a directory}"; shift 2 ;;
        --vendor) VENDOR="${2:?--vendor needs a name}"; shift 2 ;;
        -j|--jobs) JOBS="${2:?--jobs needs a number}"; shift 2 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "build.sh: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
done

# ---- CANN: the one-line refusal comes before anything else is printed --------------------------
# A CANN toolkit is recognised by the AscendC CMake modules the build uses (find_package(ASC)).
ASC_CMAKE="compiler/tikcpp/ascendc_kernel_cmake"
if [[ -z "${ASCEND_HOME_PATH:-}" ]]; then
    echo "build.sh: CANN not found: ASCEND_HOME_PATH is not set (source the CANN toolkit's set_env.sh first)" >&2
    exit 1
fi
if [[ ! -d "${ASCEND_HOME_PATH}/${ASC_CMAKE}" ]]; then
    echo "build.sh: CANN not found: ASCEND_HOME_PATH=${ASCEND_HOME_PATH} has no ${ASC_CMAKE} (a CANN toolkit >= 9.0 is needed)" >&2
    exit 1
fi

SOCS="${SOCS//,/;}"
IFS=';' read -r -a soc_list <<< "${SOCS}"
for soc in "${soc_list[@]}"; do
    case "${soc}" in
        ascend910b|ascend910_93) ;;
        *) echo "build.sh: --soc: expected ascend910b and/or ascend910_93, got '${soc}'" >&2; exit 2 ;;
    esac
done
command -v cmake >/dev/null || { echo "build.sh: cmake not found (3.16 or newer is needed)" >&2; exit 1; }

# set_env.sh puts CANN's compilers and libraries on the paths; sourcing it again is harmless.
if [[ -f "${ASCEND_HOME_PATH}/bin/setenv.bash" ]]; then
    set +u
    # shellcheck disable=SC1091
    source "${ASCEND_HOME_PATH}/bin/setenv.bash"
    set -u
fi

echo "build.sh: building the op package for ${SOCS} with CANN at ${ASCEND_HOME_PATH}"
cmake -S "${REPO_ROOT}/op_package" -B "${BUILD_DIR}" \
    -DASCEND_COMPUTE_UNIT="${SOCS}" \
    -Dvendor_name="${VENDOR}" \
    -DASCEND_CANN_PACKAGE_PATH="${ASCEND_HOME_PATH}"
cmake --build "${BUILD_DIR}" --target binary package -j "${JOBS}"

shopt -s nullglob
packages=("${BUILD_DIR}"/custom_opp_*.run)
if [[ ${#packages[@]} -ne 1 ]]; then
    echo "build.sh: expected one custom_opp_*.run in ${BUILD_DIR}, found ${#packages[@]}" >&2
    exit 1
fi
echo "build.sh: package ${packages[0]}"

if [[ ${INSTALL} -eq 1 ]]; then
    if [[ -n "${INSTALL_PATH}" ]]; then
        bash "${packages[0]}" --install-path="${INSTALL_PATH}"
        echo "build.sh: installed; before use: source ${INSTALL_PATH}/vendors/${VENDOR}/bin/set_env.bash"
    else
        bash "${packages[0]}"
        echo "build.sh: installed into \$ASCEND_OPP_PATH/vendors/${VENDOR}"
    fi
fi
