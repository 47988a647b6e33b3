#!/usr/bin/env node
// The `outpost` command. Logic lives in importable modules; this file only runs it.
import { main } from './main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Let output drain and handles close; if something still holds the event loop, do not
// hang: exit anyway shortly after (the timer itself does not keep the process alive).
setTimeout(() => process.exit(code), 3_000).unref();
