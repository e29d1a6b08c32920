#!/usr/bin/env bash
# The speed issue's GPU figures in one go (issue 12, item 6): the CUDA test; gradients on the GPU against
# float64 on the CPU (gpu_check.py's correctness section); the DARTS-size search step against the original
# DARTS code, the supernet's edges computed per edge and fused; the quickstart's search step, fused and
# not; the DARTS_V2 retrain step; and the whole `ltnas quickstart` on the GPU.
#
#   bash benchmarks/gpu_speed.sh OUTDIR            # GPU: about 6-7 minutes on one H100
#   bash benchmarks/gpu_speed.sh OUTDIR --dry-run  # CPU, tiny sizes: checks the script
#
# Each part's output goes to OUTDIR/NN-name.txt as it runs, so a run cut short keeps what it measured.
# Needs what benchmarks/gpu_check.sh needs (pydantic's wheels on the lent machine, see there).
set -uo pipefail

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash benchmarks/gpu_speed.sh OUTDIR [--dry-run]" >&2
    exit 2
fi
out=$1
dry=${2:-}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" || exit 2
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}

if [ "$dry" = "--dry-run" ]; then
    device=cpu
    darts=(--channels 4 --layers 3 --batch 4 --size 8 --steps 1 --warmup 1)
    quick=(--steps 1 --warmup 1)
    retrain=(--channels 4 --layers 3 --batch 4 --size 8 --steps 1 --warmup 1)
    quickstart=(--set search.epochs=1 --set search.threshold=0.3 --set train.epochs=1 --set train.cell.init_channels=4
                --set train.cell.layers=3)
    limit=600
else
    device=cuda
    darts=(--steps 10 --warmup 3)
    quick=(--steps 20 --warmup 5)
    retrain=(--steps 10 --warmup 3)
    quickstart=()
    limit=240
fi

part() {  # part NAME COMMAND...: run it, output to the terminal and OUTDIR/NAME.txt, with its wall time
    local name=$1
    shift
    echo "## $name: $*" | tee "$out/$name.txt"
    local began=$SECONDS
    "$@" 2>&1 | tee -a "$out/$name.txt"
    echo "## $name: exit ${PIPESTATUS[0]}, $((SECONDS - began)) s wall" | tee -a "$out/$name.txt"
}

{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv 2>/dev/null
  "$python" -c "import torch, platform; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'cudnn',
torch.backends.cudnn.version(), 'python', platform.python_version(), 'cpus', __import__('os').cpu_count())"
} 2>&1 | tee "$out/00-machine.txt"

if [ "$device" = cuda ]; then
    part 01-cuda-tests "$python" -m pytest -q -p no:cacheprovider "$here/../tests/test_memory.py"
fi
part 01-correctness "$python" "$here/gpu_check.py" --out "$out/correctness" --sections correctness --budget 120 $dry
part 02-darts-size "$python" "$here/search_step.py" --device "$device" --nchw --method both "${darts[@]}"
part 03-darts-size-fused "$python" "$here/search_step.py" --device "$device" --nchw --method darts --fuse always "${darts[@]}"
part 04-quickstart-step "$python" "$here/search_step.py" --device "$device" --nchw --quickstart --method darts "${quick[@]}"
part 05-quickstart-step-unfused "$python" "$here/search_step.py" --device "$device" --nchw --quickstart --method darts \
    --fuse never "${quick[@]}"
part 06-retrain "$python" "$here/retrain_step.py" --device "$device" "${retrain[@]}"
work=$(mktemp -d)
part 07-quickstart timeout "$limit" "$python" -m ltnas quickstart --device "$device" --jobs 6 --no-progress \
    --out "$work/quickstart" "${quickstart[@]}"
cp "$work"/quickstart/comparison.md "$out/08-comparison.md" 2>/dev/null
rm -rf "$work"
