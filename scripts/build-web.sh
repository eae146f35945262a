#!/usr/bin/env bash
# Installs the browser app's npm dependencies (exactly as locked) and builds it into vidscene/web/dist, which
# `vidscene serve` mounts at "/". Idempotent: does nothing when dist is newer than every source file and the
# lockfile. Everything comes from the npm registry through package-lock.json; nothing is fetched at run time.
set -euo pipefail

WEB_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/../vidscene/web" && pwd)"
cd "$WEB_DIR"

# Vite writes dist/index.html last, after emptying dist: its age is the age of the whole build.
STAMP=dist/index.html
INPUTS=(package.json package-lock.json index.html vite.config.ts tsconfig.json src public)

if ! command -v npm >/dev/null 2>&1; then
    echo "error: npm is not installed; the web app needs Node.js >= 20 and npm to build" >&2
    exit 1
fi

# Up to date when the stamp exists and no input is newer than it.
if [[ -f "$STAMP" ]]; then
    newer="$(find "${INPUTS[@]}" -newer "$STAMP" -print -quit 2>/dev/null || true)"
    if [[ -z "$newer" ]]; then
        echo "web app is up to date (vidscene/web/dist)"
        exit 0
    fi
fi

# npm ci wipes node_modules; only run it when the lockfile changed since the last install.
if [[ ! -f node_modules/.package-lock.json || package-lock.json -nt node_modules/.package-lock.json ]]; then
    npm ci --no-audit --no-fund --loglevel=error
fi

npm run --silent build
node ../../scripts/compress-web.mjs dist/assets
echo "built the web app into vidscene/web/dist"
