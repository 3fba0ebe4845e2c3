#!/usr/bin/env bash
# The test command of the README: installs and builds what is needed, runs the whole vitest
# suite, and ends with the line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh || { echo "0 passed, 1 failed"; exit 1; }
npm run --silent typecheck || { echo "test: type errors (tests included)"; echo "0 passed, 1 failed"; exit 1; }
mkdir -p build
npx vitest run --reporter=default --reporter=json --outputFile=build/vitest.json "$@"
rc=$?
node -e '
  const r = JSON.parse(require("fs").readFileSync("build/vitest.json", "utf8"));
  console.log(`${r.numPassedTests} passed, ${r.numFailedTests} failed`);
' 2>/dev/null || echo "0 passed, 1 failed"
exit $rc
