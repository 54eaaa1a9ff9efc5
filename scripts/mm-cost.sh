#!/usr/bin/env bash
# The Mana Pool's in-kernel cost in instructions per allocate/free pair (mm_cost ktests).
#   scripts/mm-cost.sh [--release] [--elf ...] [--runs 2] [--memory 256M]   (see icount-cost.sh)
exec "$(dirname "$0")/icount-cost.sh" mm-cost 'mm_cost.*' "$@"
