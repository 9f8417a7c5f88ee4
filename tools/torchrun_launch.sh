#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: torchrun NPROC processes running tools/TOOL.
#   tools/torchrun_launch.sh TOOL NPROC [tool arguments...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), MAX_RESTARTS (0).
set -euo pipefail
TOOL=$1
NPROC=$2
shift 2
TOOLS=$(cd "$(dirname "$0")" && pwd)
exec python -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    --node_rank="${NODE_RANK:-0}" \
    --master_addr="${MASTER_ADDR:-127.0.0.1}" \
    --master_port="${PORT:-29500}" \
    --nproc_per_node="$NPROC" \
    --max-restarts="${MAX_RESTARTS:-0}" \
    "$TOOLS/$TOOL" "$@" --launcher pytorch
