#!/usr/bin/env bash
# Train on a SLURM cluster: one task per GPU, started by srun.
#   tools/slurm_train.sh PARTITION JOB_NAME CONFIG [trainyard train options...]
# Environment: GPUS (8), GPUS_PER_NODE (8), CPUS_PER_TASK (5), SRUN_ARGS (extra srun options).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 PARTITION JOB_NAME CONFIG [trainyard train options...]" >&2
    exit 2
fi
exec "$(dirname "$0")/slurm_launch.sh" train.py "$@"
