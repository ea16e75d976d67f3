#!/usr/bin/env bash
# The main job on the embedded `virtual` provider: up 1 head + 2 workers, run a command on every node,
# print the status table, then tear the cluster down. KEEP=1 leaves it up and prints how to reach and stop it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/bootstrap.sh
scripts/install-system-deps.sh
export PATH="$PWD/.venv/bin:$PATH"
config=examples/virtual-small.yaml
name=$(.venv/bin/python -c "import yaml,sys; print(yaml.safe_load(open(sys.argv[1]))['cluster_name'])" "$config")
cloudtik up "$config" --yes
cloudtik exec "$name" 'echo "hello from $(hostname) as node $CLOUDTIK_NODE_ID at $CLOUDTIK_NODE_IP"' --all-nodes
cloudtik status "$name"
if [ "${KEEP:-0}" = 1 ]; then
  cloudtik info "$name"
else
  cloudtik down "$name" --yes
fi
echo
echo "To use cloudtik in your shell: source .venv/bin/activate   (then: cloudtik --help)"
