#!/usr/bin/env bash
# Train on NPROC processes of this machine (and NNODES machines) with torchrun.
#   tools/dist_train.sh CONFIG NPROC [trainyard train options...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500),
# MAX_RESTARTS (0; with --resume a lost process restarts the job from the last checkpoint);
# RDZV_ENDPOINT (host:port) and RDZV_ID: c10d rendezvous instead of NODE_RANK/MASTER_ADDR (see torchrun_launch.sh).
set -euo pipefail
if [ $# -lt 2 ]; then
    echo "usage: $0 CONFIG NPROC [trainyard train options...]" >&2
    exit 2
fi
CONFIG=$1
NPROC=$2
shift 2
exec "$(dirname "$0")/torchrun_launch.sh" train.py "$NPROC" "$CONFIG" "$@"
