#!/usr/bin/env bash
# The GPU verification of the CUDA back ends that have not run on a GPU yet, in stages that each
# fit one device call (<= 10 minutes), run from the repository root on a GPU machine that has
# PyTorch and Triton (no network):
#
#   scripts/gpu_check.sh tests      # GPU tests of IFA / NSA Triton, FA library, indexer, capture
#   scripts/gpu_check.sh sanitizer  # compute-sanitizer memcheck: IFA, NSA, SFA; the DSA example
#   scripts/gpu_check.sh bench-ifa [budget_s]   # results JSON per op under $OUT
#   scripts/gpu_check.sh bench-fa  [budget_s]
#   scripts/gpu_check.sh bench-nsa [budget_s]
#   scripts/gpu_check.sh bench-li  [budget_s]
#   FLASHMLA=dir [CUTLASS=dir] scripts/gpu_check.sh flashmla   # SFA anchor sweep beside FlashMLA
#
# Outputs (logs, results JSON) go to $OUT (default /tmp/gpu_check). The benches name the commit
# from $BENCH_COMMIT where the copy of the tree carries no git history.
set -u
OUT=${OUT:-/tmp/gpu_check}
mkdir -p "$OUT"
stage=${1:-tests}
budget=${2:-420}
gpu=$(python -c "import torch; n = torch.cuda.get_device_name(); print('h200' if 'H200' in n else 'h100' if 'H100' in n else 'gpu')")
day=$(date +%Y-%m-%d)
# the package without installing it (the machines have no network, and pip's editable install
# wants to fetch setuptools): cann_attention/ = torch_binding/ + op_host/ + op_kernel/, linked
pkg=${TMPDIR:-/tmp}/cann_attention_pkg
mkdir -p "$pkg/cann_attention"
for f in torch_binding/*; do ln -sf "$PWD/$f" "$pkg/cann_attention/"; done
ln -sfn "$PWD/op_host" "$pkg/cann_attention/op_host"
ln -sfn "$PWD/op_kernel" "$pkg/cann_attention/op_kernel"
export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}"
export TRITON_DEFAULT_FP_FUSION=1

case "$stage" in
tests)
    timeout 560 python -m pytest -q -x -p no:cacheprovider \
        tests/op_kernel/test_incre_flash_attention_triton.py \
        tests/op_kernel/test_nsa_compress_attention_triton.py \
        tests/op_kernel/test_flash_attention_library.py \
        tests/op_kernel/test_lightning_indexer_triton.py \
        tests/op_kernel/test_lightning_indexer_capture.py 2>&1 | tail -40 | tee "$OUT/tests.txt"
    ;;
sanitizer)
    timeout 300 python -m pytest -q -p no:cacheprovider \
        tests/op_kernel/test_incre_flash_attention_sanitizer.py \
        tests/op_kernel/test_nsa_compress_attention_sanitizer.py \
        tests/op_kernel/test_sparse_flash_attention_sanitizer.py 2>&1 | tail -30 \
        | tee "$OUT/sanitizer.txt"
    timeout 200 python examples/deepseek_v32_sparse_attention.py 2>&1 | tail -20 \
        | tee "$OUT/example.txt"
    ;;
bench-ifa)
    timeout 580 python benchmarks/bench_incre_flash_attention.py --device cuda --backend triton \
        --budget-s "$budget" --json "$OUT/ifa_${gpu}_${day}_check.json" 2>&1 | tail -60 \
        | tee "$OUT/bench_ifa.txt"
    ;;
bench-fa)
    timeout 580 python benchmarks/bench_flash_attention.py --device cuda --backend library \
        --budget-s "$budget" --json "$OUT/fa_${gpu}_${day}_check.json" 2>&1 | tail -60 \
        | tee "$OUT/bench_fa.txt"
    ;;
bench-nsa)
    timeout 580 python benchmarks/bench_nsa_compress_attention.py --device cuda --backend triton \
        --budget-s "$budget" --json "$OUT/nsa_${gpu}_${day}_check.json" 2>&1 | tail -60 \
        | tee "$OUT/bench_nsa.txt"
    ;;
bench-li)
    timeout 580 python benchmarks/bench_lightning_indexer.py --device cuda --backend triton \
        --step --budget-s "$budget" --json "$OUT/li_${gpu}_${day}_check.json" 2>&1 | tail -60 \
        | tee "$OUT/bench_li.txt"
    ;;
flashmla)
    # a FlashMLA checkout (commit 9241ae3 layout) carried to the machine, with its CUTLASS
    timeout 590 python benchmarks/bench_sparse_flash_attention.py --device cuda --sweep anchor \
        --flashmla "${FLASHMLA:?set FLASHMLA to a FlashMLA checkout}" \
        ${CUTLASS:+--cutlass "$CUTLASS"} --flashmla-build "$OUT/flashmla_build" \
        --peers triton --json "$OUT/sfa_${gpu}_${day}_flashmla.json" 2>&1 | tail -40 \
        | tee "$OUT/bench_flashmla.txt"
    rm -rf "$OUT/flashmla_build"
    ;;
*)
    echo "unknown stage $stage (tests, sanitizer, bench-ifa, bench-fa, bench-nsa, bench-li, flashmla)" >&2
    exit 2
    ;;
esac
