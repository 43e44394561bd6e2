#!/bin/sh
# build.sh -- install the dashboard's one npm dependency (uPlot, pinned in package-lock.json) and
# vendor its built files into dashboard/vendor/, which CMake embeds into the plugin. The vendored
# files are committed, so building the plugin needs neither npm nor the network; run this (or
# `npm run build`) after changing the uPlot version.
set -eu
cd "$(dirname "$0")"
npm ci --no-audit --no-fund --ignore-scripts
mkdir -p vendor
cp node_modules/uplot/dist/uPlot.iife.min.js node_modules/uplot/dist/uPlot.min.css vendor/
cp node_modules/uplot/LICENSE vendor/uPlot.LICENSE
echo "vendored uPlot $(node -p "require('./node_modules/uplot/package.json').version") into dashboard/vendor/"
