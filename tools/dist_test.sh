#!/usr/bin/env bash
# Evaluate a checkpoint on NPROC processes with torchrun.
#   tools/dist_test.sh CONFIG CHECKPOINT NPROC [trainyard test options...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500).
set -euo pipefail
if [ $# -lt 3 ]; then
    echo "usage: $0 CONFIG CHECKPOINT NPROC [trainyard test options...]" >&2
    exit 2
fi
CONFIG=$1
CHECKPOINT=$2
NPROC=$3
shift 3
exec "$(dirname "$0")/torchrun_launch.sh" test.py "$NPROC" "$CONFIG" "$CHECKPOINT" "$@"
