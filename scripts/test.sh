#!/usr/bin/env bash
# The whole check: types, lint + formatting, import cycles, then the jest suites on a real Redis.
set -euo pipefail
cd "$(dirname "$0")/.."
echo "== typecheck"; npx tsc -p tsconfig.json --noEmit
echo "== lint"; npx eslint . --max-warnings 0
echo "== format"; npx prettier --check "{src,test,scripts,bench}/**/*.ts" --log-level warn
echo "== cycles"; npx madge --circular --extensions ts --ts-config tsconfig.json src
echo "== boundaries"; npx depcruise src --config .dependency-cruiser.cjs --output-type err
echo "== jest"; npx jest --runInBand --ci "$@"
