#!/usr/bin/env bash
# Shared by slurm_train.sh and slurm_test.sh: srun one task per GPU running tools/TOOL.
#   tools/slurm_launch.sh TOOL PARTITION JOB_NAME [tool arguments...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options).
set -euo pipefail
TOOL=$1
PARTITION=$2
JOB_NAME=$3
shift 3
read -r -a EXTRA_SRUN_ARGS <<< "${SRUN_ARGS:-}"
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec srun -p "$PARTITION" \
    --job-name="$JOB_NAME" \
    --gres="gpu:${GPUS_PER_NODE:-8}" \
    --ntasks="${GPUS:-8}" \
    --ntasks-per-node="${GPUS_PER_NODE:-8}" \
    --cpus-per-task="${CPUS_PER_TASK:-5}" \
    --kill-on-bad-exit=1 \
    "${EXTRA_SRUN_ARGS[@]}" \
    python -u "$TOOLS/$TOOL" "$@" --launcher slurm
