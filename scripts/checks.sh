#!/usr/bin/env bash
# The static checks of `npm test`: the type check and the lint (with the
# workflow determinism rules), side by side — each takes ~10 s of mostly one
# core. Both always run to the end; the first failure's status is returned.
set -u
cd "$(dirname "$0")/.."
npm run --silent typecheck & typecheck=$!
npm run --silent lint; lint=$?
wait "$typecheck"; types=$?
[ "$types" -ne 0 ] && echo "checks: the type check failed (npm run typecheck)" >&2
[ "$lint" -ne 0 ] && echo "checks: the lint failed (npm run lint)" >&2
[ "$types" -ne 0 ] && exit "$types"
exit "$lint"
