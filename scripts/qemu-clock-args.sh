#!/usr/bin/env bash
# Prints, one per line, the QEMU arguments that set the guest's clock for a test boot.
#   scripts/qemu-clock-args.sh [--clock icount|real] [--shift N] [--sleep on|off] [--singlestep]
#
# icount (the default): virtual time comes from the instruction count, one instruction every
#   2^N ns (-icount shift=N), so a PIT tick is the same amount of guest work however busy the
#   host is. With sleep=off (the default) an idle guest's clock jumps straight to its next timer
#   instead of waiting for the host's clock; interactive tests that type at a person's pace may
#   prefer sleep=on, where idle time passes as real time.
# real: the guest's clock follows the host's. Only for tests that are about real time.
# --singlestep: one instruction per translation block, so TCG can deliver an interrupt between
#   any two instructions (races that whole blocks hide); needs icount, and is 10-30x slower.
set -euo pipefail
clock=icount; shift_n=${AETHELOS_ICOUNT_SHIFT:-4}; sleep=off; singlestep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --clock) clock=$2; shift 2 ;;
    --shift) shift_n=$2; shift 2 ;;
    --sleep) sleep=$2; shift 2 ;;
    --singlestep) singlestep=1; shift ;;
    *) echo "qemu-clock-args: unknown argument '$1'" >&2; exit 2 ;;
  esac
done
[[ "$shift_n" =~ ^[0-9]+$ ]] && [ "$shift_n" -le 10 ] || { echo "qemu-clock-args: --shift must be 0..10" >&2; exit 2; }
case "$sleep" in on|off) ;; *) echo "qemu-clock-args: --sleep must be on or off" >&2; exit 2 ;; esac
case "$clock" in
  icount) echo -icount; echo "shift=$shift_n,sleep=$sleep" ;;
  real) [ "$singlestep" = 0 ] || { echo "qemu-clock-args: --singlestep needs --clock icount" >&2; exit 2; } ;;
  *) echo "qemu-clock-args: --clock must be icount or real" >&2; exit 2 ;;
esac
[ "$singlestep" = 0 ] || echo -singlestep
