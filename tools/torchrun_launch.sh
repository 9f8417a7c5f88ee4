#!/usr/bin/env bash
# Shared by dist_train.sh and dist_test.sh: torchrun NPROC processes running tools/TOOL.
#   tools/torchrun_launch.sh TOOL NPROC [tool arguments...]
# Environment: NNODES (1), NODE_RANK (0), MASTER_ADDR (127.0.0.1), PORT (29500), MAX_RESTARTS (0):
# a static rendezvous, every node given its NODE_RANK. With RDZV_ENDPOINT (host:port) the nodes
# meet through torchrun's c10d rendezvous instead (RDZV_ID names the job, default trainyard):
# NODE_RANK, MASTER_ADDR and PORT are not used, ranks go by order of joining, and NNODES may
# be MIN:MAX; a node that is lost and started again rejoins the job.
set -euo pipefail
TOOL=$1
NPROC=$2
shift 2
TOOLS=$(cd "$(dirname "$0")" && pwd)
if [ -n "${RDZV_ENDPOINT:-}" ]; then
    RENDEZVOUS=(--rdzv-backend=c10d --rdzv-endpoint="$RDZV_ENDPOINT" --rdzv-id="${RDZV_ID:-trainyard}")
    # a store per round: with the agents' shared store a node started again waits forever for its address
    export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
else
    RENDEZVOUS=(--node_rank="${NODE_RANK:-0}" --master_addr="${MASTER_ADDR:-127.0.0.1}" --master_port="${PORT:-29500}")
fi
exec python -m torch.distributed.run \
    --nnodes="${NNODES:-1}" \
    "${RENDEZVOUS[@]}" \
    --nproc_per_node="$NPROC" \
    --max-restarts="${MAX_RESTARTS:-0}" \
    "$TOOLS/$TOOL" "$@" --launcher pytorch
