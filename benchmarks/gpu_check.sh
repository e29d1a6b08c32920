#!/usr/bin/env bash
# The GPU path of ltnas, checked and timed in one go (issue 13): correctness CPU vs CUDA, bf16 steps,
# search step against the original DARTS, retrain step, host-device syncs, torchrun, and a 2-epoch
# FairDARTS search through the CLI with the projected 50-epoch time. See benchmarks/gpu_check.py.
#
#   bash benchmarks/gpu_check.sh OUTDIR              # GPU: about 4-5 minutes on one H100 (budget 450 s)
#   bash benchmarks/gpu_check.sh OUTDIR --dry-run    # CPU, tiny sizes: checks the script (the test suite runs it)
#   extra options go to gpu_check.py: --sections correctness,search_step  --budget 300  --compile  --work DIR
#
# Writes OUTDIR/summary.md (markdown tables for benchmarks/RESULTS.md), OUTDIR/summary.json and
# OUTDIR/log.txt, rewritten after every section, so a run cut short keeps what it measured. Run
# folders go to a scratch folder, not OUTDIR. Exit status 0 when every section passed.
#
# Needs python3 with torch (CUDA build on the GPU), numpy, pyyaml, rich, matplotlib, scikit-learn,
# pillow and pydantic; run from the repository root, with or without ltnas installed (src/ is put on
# PYTHONPATH). The lent GPU machine (Python 3.12, torch with CUDA) has all but pydantic: carry the
# wheels pydantic, pydantic_core (cp312 manylinux), annotated_types, typing_inspection and
# typing_extensions (>= 4.16, newer than the machine's) in .whl/ and install them first:
#   python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
#     .whl/*.whl && export PYTHONPATH=/tmp/site:$PWD/src && bash benchmarks/gpu_check.sh $OUT
set -uo pipefail

if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
    echo "usage: bash benchmarks/gpu_check.sh OUTDIR [--dry-run] [gpu_check.py options]" >&2
    exit 2
fi
out=$1
shift
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out" || exit 2
export PYTHONPATH="$here/../src${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
python=${PYTHON:-python3}
"$python" "$here/gpu_check.py" --out "$out" "$@" 2>&1 | tee -a "$out/log.txt"
