#!/usr/bin/env bash
# Times cloche's setup commands on a host that is already set up: each must change nothing and be
# fast. Run as root from the repository. For the first-run figure, run ./scripts/quickstart on a
# new machine instead: it prints its own total.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds() {
    local start=$EPOCHREALTIME
    "$@" >/dev/null
    awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }'
}
for run in 1 2 3; do
    echo "run $run: host init $(seconds cloche host init) s, image build $(seconds cloche image build) s"
done
echo "quickstart (again): $(seconds ./scripts/quickstart) s"
