#!/usr/bin/env node
import { runTftpServeCommand } from './command.js';

process.exitCode = await runTftpServeCommand(process.argv.slice(2));
