#!/usr/bin/env bash
# The Loom of Fate's in-kernel cost: instructions per yield round trip and the timer tick's share of
# all instructions (sched_cost ktests; targets <= 300 insns and <= 0.5%).
#   scripts/sched-cost.sh [--release] [--elf ...] [--runs 2] [--memory 256M]   (see icount-cost.sh)
exec "$(dirname "$0")/icount-cost.sh" sched-cost 'sched_cost.*' "$@"
