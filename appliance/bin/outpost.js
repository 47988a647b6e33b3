#!/usr/bin/env node
// The `outpost` bin. A committed file rather than dist/cli.js itself: npm links a bin
// only if its file exists at install time, and on a fresh clone dist/ is built later
// (by the root postinstall), so `npx outpost` would not find it.
import '../dist/cli.js';
