#!/usr/bin/env bash
# Stage the finished points of a comparison (summary.json says completed or diverged) and its
# tables, never a point still training (a fresh clone then retrains that point from its start,
# rather than finding a half-written run without its checkpoints). Checkpoints stay out of git.
#   experiments/commit_finished_points.sh experiments/results/compare_adding && git commit
set -euo pipefail
out=${1:?usage: $0 COMPARISON_DIR}
git add "$out"/*.md "$out"/*.csv "$out"/*.json "$out"/*.png "$out"/protocol.* 2>/dev/null || true
find "$out/runs" -name summary.json | while read -r s; do
  d=$(dirname "$s")
  if python3 -c 'import json,sys; sys.exit(json.load(open(sys.argv[1])).get("status") not in ("completed","diverged"))' "$s"; then
    git add "$d"
  fi
done
git status --short -- "$out" | head -40
