#!/usr/bin/env bash
# `just deny`: the dependency policy in deny.toml, checked by cargo-deny
# (installed once, at a pinned version, into the tools cache outside the
# clone, as CI keeps its cargo target dir): licenses, sources, bans and the
# budget of duplicate versions, from Cargo.lock alone (no network); then
# RustSec's advisories, which need its database: fetched from GitHub when
# this machine reaches it, else said plainly with the command to run where
# it does. docs/dependencies.md.
set -euo pipefail
cd "$(dirname "$0")/.."
version=0.20.2
cache=${SHOP_TOOLS_CACHE:-$HOME/.cache/connect-shop/tools}
root="$cache/cargo-deny-v$version"
deny="$root/bin/cargo-deny"
if [ ! -x "$deny" ]; then
  echo "deny: cargo install cargo-deny $version into $root (once, a few minutes)" >&2
  cargo install --quiet --locked --version "$version" --root "$root" cargo-deny
fi
# cargo-deny reads the whole graph, every platform's crates included:
# fetched first (a machine that only ever built for itself has not got the
# others, and the check below runs offline).
cargo fetch --locked --quiet
# A skip or an exception that no longer matches fails too: the budget of
# duplicates only goes down, and a stale exception is struck out.
strict=(-D unnecessary-skip -D unmatched-skip -D license-exception-not-encountered)
"$deny" deny --offline check --show-stats "${strict[@]}" bans licenses sources
if timeout 20 git ls-remote --exit-code https://github.com/rustsec/advisory-db HEAD >/dev/null 2>&1; then
  "$deny" deny check advisories
else
  echo "deny: advisories NOT checked: RustSec's database (github.com/rustsec/advisory-db) cannot be fetched from this machine." >&2
  echo "deny: where it can: $deny deny check advisories (or: cargo deny check advisories)" >&2
  # CI reaches no GitHub here either; a run that must check them says so.
  if [ "${SHOP_DENY_ADVISORIES:-}" = required ]; then
    exit 1
  fi
fi
