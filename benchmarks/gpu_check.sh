#!/usr/bin/env bash
# Every lesson in full mode (DIFFUSION_LAB_FAST=0) under nbval on a CUDA GPU, then the training
# benchmark on CUDA; prints each one's wall time and peak GPU memory in a table. Needs a CUDA
# build of torch and `pip install -r requirements-dev.txt`. Logs go to build/gpu_check/.
#
#   bash benchmarks/gpu_check.sh                      # every lesson, then train_digits.py
#   LESSONS="02 05" bash benchmarks/gpu_check.sh      # only these lessons
#   TRAIN_ARGS="--samples 200" bash benchmarks/gpu_check.sh   # passed on to train_digits.py
#   SKIP_TRAIN=1 bash benchmarks/gpu_check.sh         # lessons only
set -uo pipefail
cd "$(dirname "$0")/.."

if ! python -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: torch.cuda.is_available() is False: run this on a machine with a CUDA GPU" \
        "and a CUDA build of torch" >&2
    exit 2
fi
python -c "import torch; print(f'torch {torch.__version__}, CUDA {torch.version.cuda}, '
                                f'{torch.cuda.get_device_name(0)}')"

export DIFFUSION_LAB_FAST=0 MPLBACKEND=Agg
LOGS=build/gpu_check
mkdir -p "$LOGS"
rows=()
failed=0

# run NAME COMMAND...: time COMMAND, sample GPU memory while it runs, add a row to the table
run() {
    local name=$1 status=passed peak="n/a" sampler="" start end
    shift
    if command -v nvidia-smi >/dev/null 2>&1; then
        nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -lms 500 \
            >"$LOGS/$name.memory" 2>/dev/null &
        sampler=$!
    fi
    start=$(date +%s.%N)
    "$@" >"$LOGS/$name.log" 2>&1 || { status=FAILED; failed=1; }
    end=$(date +%s.%N)
    if [ -n "$sampler" ]; then
        kill "$sampler" 2>/dev/null
        wait "$sampler" 2>/dev/null
        peak=$(sort -n "$LOGS/$name.memory" | tail -n 1)
    fi
    rows+=("$(printf '%s\t%s\t%s\t%s' "$name" "$status" \
        "$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.1f s", b - a }')" "${peak:-n/a}")")
    echo "${rows[-1]}"
}

for notebook in notebooks/[0-9][0-9]_*.ipynb; do
    name=$(basename "$notebook" .ipynb)
    if [ -n "${LESSONS:-}" ] && ! grep -qw -- "${name:0:2}" <<<"$LESSONS"; then
        continue
    fi
    run "$name" python -m pytest "$notebook" --nbval-lax --nbval-current-env -p no:cacheprovider -q
done
if [ -z "${SKIP_TRAIN:-}" ]; then
    # shellcheck disable=SC2086  # TRAIN_ARGS is meant to split into arguments
    run train_digits python benchmarks/train_digits.py --device cuda ${TRAIN_ARGS:-}
fi

echo
{
    printf '%-28s %-8s %-12s %s\n' "what" "result" "wall time" "peak GPU MiB"
    for row in "${rows[@]}"; do
        IFS=$'\t' read -r name status seconds peak <<<"$row"
        printf '%-28s %-8s %-12s %s\n' "$name" "$status" "$seconds" "$peak"
    done
} | tee "$LOGS/summary.txt"
if [ "$failed" -ne 0 ]; then
    echo "gpu_check: something failed; see $LOGS/*.log" >&2
fi
exit "$failed"
