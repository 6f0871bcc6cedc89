#!/usr/bin/env python3
"""Reads a conformance runner's log of a run whose calls may be sent again
(the kit's client with retries or hedging forced on methods marked safe to
repeat): every failed case must have failed only because the client sent
the call again (the runner counts each copy it receives), which is what
such a run is for; any other reason is a real failure. Prints a summary;
exits non-zero on a real failure."""

import re
import sys

RESENT = re.compile(r"^client sent another request \(#\d+\) for the same test case$")

log = open(sys.argv[1], encoding="utf-8").read().splitlines()
total = next((int(m.group(1)) for line in log if (m := re.match(r"^Total cases: (\d+)$", line))), None)
if total is None:
    print("  the runner did not finish")
    sys.exit(1)
cases, current = {}, None
for line in log:
    if line.startswith("FAILED: "):
        current = line[len("FAILED: "):].rstrip(":")
        cases[current] = []
    elif current is not None and line.startswith("\t"):
        cases[current].append(line.strip())
    else:
        current = None
real = {name: reasons for name, reasons in cases.items() if not all(RESENT.match(r) for r in reasons)}
for name, reasons in real.items():
    print(f"  FAILED: {name}"[:220])
    for reason in reasons:
        print(f"    {reason}"[:220])
resent = len(cases) - len(real)
print(f"{total} cases: {total - len(cases)} sent once, {resent} sent again, "
      f"{len(real)} not as expected")
sys.exit(1 if real else 0)
