#!/usr/bin/env bash
# Runs the Socket.IO interop tests: installs the pinned npm packages and runs
# Node's test runner, which builds and starts the conformance server itself.
set -euo pipefail
cd "$(dirname "$0")"
npm ci --no-audit --no-fund
npm test
