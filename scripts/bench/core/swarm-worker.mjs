#!/usr/bin/env node
// One swarm process of the core benchmark, driven by its parent over IPC:
//   {cmd:'enroll'} → {type:'enroll', report}
//   {cmd:'heartbeat', via, durationMs, window?, rate?} → {type:'heartbeat', report}
//   {cmd:'close'} → exits
// Options come as JSON in argv[2] (createSwarm options).
import { createLogger } from '@outpost/common';
import { createSwarm } from '@outpost/agent';

const options = JSON.parse(process.argv[2] ?? '{}');
const logger = createLogger({ level: 'warn', pretty: false, base: { worker: options.namePrefix } });
const swarm = createSwarm(options, { logger });
const send = (msg) => new Promise((resolve) => process.send(msg, resolve));

process.on('message', async (msg) => {
  try {
    if (msg.cmd === 'enroll') await send({ type: 'enroll', report: await swarm.enroll() });
    else if (msg.cmd === 'heartbeat') {
      const { via, durationMs, window, rate } = msg;
      await send({ type: 'heartbeat', report: await swarm.heartbeat({ via, durationMs, window, rate }) });
    } else if (msg.cmd === 'close') {
      await swarm.close();
      process.exit(0);
    }
  } catch (err) {
    await send({ type: 'error', message: err instanceof Error ? `${err.code ?? ''} ${err.message}` : String(err) });
  }
});
process.on('disconnect', () => process.exit(0));
send({ type: 'ready' });
