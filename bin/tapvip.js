#!/usr/bin/env node
// The tapvip command: runs the compiled CLI (npm run build writes dist/).
import "../dist/src/host/cli.js";
