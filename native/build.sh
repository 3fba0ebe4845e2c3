#!/usr/bin/env bash
# Builds native/build/Release/tapvip_tap.node offline, against the headers of the node that
# runs it (<prefix>/include/node: /usr/include/node for Debian's/NodeSource's nodejs), with
# the node-gyp that npm puts on PATH inside `npm run`, else the one bundled with npm.
# Extra arguments go to node-gyp (e.g. --debug).
set -euo pipefail
cd "$(dirname "$0")"
prefix=$(node -p 'require("path").resolve(process.execPath, "../..")')
nodedir=${npm_config_nodedir:-$prefix}
if [ ! -f "$nodedir/include/node/node_api.h" ]; then
  echo "build-native: no Node headers in $nodedir/include/node (set npm_config_nodedir to the node install prefix)" >&2
  exit 1
fi
if command -v node-gyp >/dev/null 2>&1; then
  gyp=(node-gyp)
else
  gyp=(node "$(npm root -g)/npm/node_modules/node-gyp/bin/node-gyp.js")
fi
"${gyp[@]}" rebuild --nodedir="$nodedir" --loglevel=warn "$@"
node -e 'require("./build/Release/tapvip_tap.node")' || { echo "build-native: the addon does not load" >&2; exit 1; }
echo "build-native: native/build/Release/tapvip_tap.node"
