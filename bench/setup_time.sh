#!/usr/bin/env bash
# Times cloche's setup: the full quickstart, then a second run of each setup command (which must
# change nothing). Run as root from the repository. For the first-run figure, run it on a fresh
# machine; on a set-up host the first number is just another repeat run.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds() { local start=$EPOCHREALTIME; "$@" >/dev/null; awk -v a="$start" -v b="$EPOCHREALTIME" "BEGIN { printf \"%.1f\", b - a }"; }
echo "quickstart:                $(seconds ./scripts/quickstart) s"
echo "host init (second run):    $(seconds cloche host init) s"
echo "image build (second run):  $(seconds cloche image build) s"
echo "quickstart (second run):   $(seconds ./scripts/quickstart) s"
