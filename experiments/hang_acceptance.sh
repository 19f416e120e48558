#!/bin/bash
# Fresh-process runs of the commands that used to hang at start-up (docs/robustness.md).
# Each round runs both train commands, every 5th round also `lstm-jax demo`; one line per run in
# OUT.tsv. A run counts as HUNG when its process used no CPU time for 60 s (the deadlock sat at
# 0 % CPU; on a shared machine a slow run is not a hang).
# Usage: experiments/hang_acceptance.sh [ROUNDS=50] [OUT=runs/hang_acceptance]
set -u
ROUNDS=${1:-50}; OUT=${2:-runs/hang_acceptance}
L=${LSTM_JAX:-lstm-jax}
mkdir -p "$OUT"; cd "$OUT"
cputime() { awk '{print $14+$15}' /proc/$1/stat 2>/dev/null; }
one() { # name args...
  name=$1; shift; rm -rf R
  "$@" >/dev/null 2>R.err & pid=$!
  last=-1; idle=0; start=$(date +%s); verdict=ok
  while kill -0 $pid 2>/dev/null; do sleep 2
    c=$(cputime $pid); [ -z "$c" ] && break
    if [ "$c" = "$last" ]; then idle=$((idle+2)); else idle=0; last=$c; fi
    if [ $idle -ge 60 ]; then verdict=HUNG; kill -9 $pid; break; fi
  done
  wait $pid; rc=$?
  [ $verdict = ok ] && [ $rc -ne 0 ] && verdict="rc=$rc"
  printf "%s\t%s\t%s\t%ss\n" "$(date +%T)" "$name" "$verdict" "$(( $(date +%s) - start ))" >> runs.tsv
}
for i in $(seq 1 "$ROUNDS"); do
  one "train seeds4 layers2" $L train --task adding --arch lstm --seeds 4 --layers 2 --hidden 64 --seq-len 20 --steps 5 --out R
  one "train seeds8 layers4" $L train --task adding --arch lstm --seeds 8 --layers 4 --hidden 64 --seq-len 20 --steps 5 --out R
  [ $((i % 5)) -eq 0 ] && one "demo" $L demo --out R
done
cut -f2,3 runs.tsv | sort | uniq -c
