#!/usr/bin/env bash
# `just bench-tracing [PROTOCOL]`: what tracing costs one call of the kit's
# server, in user-space instructions counted by callgrind
# (bench/instructions.sh: deterministic, not timed, so a CI machine's load
# does not move it), with traces off, 1% of new traces kept (as production
# ships) and every call traced, in one run, then both again with the
# dashboard's rings keeping the spans too (SHOP_BENCH_KEPT=1, as
# `shop --dashboard` runs); fails when 1% costs more than 1.05x an untraced
# call or every call traced more than 1.15x (the targets; docs/observing.md),
# with the rings as without them.
# PROTOCOL: connect (the default), json or grpc.
set -euo pipefail
cd "$(dirname "$0")/.."
protocol=${1:-connect}
count() {
  bench/instructions.sh kit "$protocol" "$1" |
    sed -n 's/.*: \([0-9][0-9]*\) instructions per request$/\1/p'
}
off=$(count off)
sampled=$(count 0.01)
every=$(count 1)
kept_sampled=$(SHOP_BENCH_KEPT=1 count 0.01)
kept_every=$(SHOP_BENCH_KEPT=1 count 1)
python3 - "$protocol" "$off" "$sampled" "$every" "$kept_sampled" "$kept_every" <<'PY'
import sys

protocol, off, sampled, every, kept_sampled, kept_every = sys.argv[1], *map(int, sys.argv[2:])
limits = {
    "1% of new traces kept": (sampled, 1.05),
    "every call traced": (every, 1.15),
    "1%, with the rings": (kept_sampled, 1.05),
    "every call, with rings": (kept_every, 1.15),
}
print(f"the kit, {protocol}: instructions per call (callgrind)")
print(f"  traces off              {off / 1000:7.1f}k")
failed = False
for name, (count, limit) in limits.items():
    ratio = count / off
    verdict = "ok" if ratio <= limit else f"OVER {limit:.2f}x"
    failed |= ratio > limit
    print(f"  {name:<23} {count / 1000:7.1f}k  {ratio:.3f}x  (at most {limit:.2f}x: {verdict})")
sys.exit(1 if failed else 0)
PY
