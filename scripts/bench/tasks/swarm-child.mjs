#!/usr/bin/env node
// Simulated agents for bench:tasks (forked, IPC): createTaskSwarm from @outpost/agent.
// argv[2]: JSON TaskSwarmOptions. Messages: {cmd:'enroll'|'attach'|'await'|'close', ...};
// each answered with {cmd, result} or {cmd, error}.
import { createLogger } from '@outpost/common';
import { createTaskSwarm } from '@outpost/agent';

const o = JSON.parse(process.argv[2]);
const swarm = createTaskSwarm(o, { logger: createLogger({ level: 'warn', pretty: false }) });
process.on('message', async (m) => {
  try {
    let result;
    if (m.cmd === 'enroll') result = await swarm.enroll();
    else if (m.cmd === 'attach') result = await swarm.attach(m.mode);
    else if (m.cmd === 'await') {
      process.send({ cmd: 'armed' });
      result = await swarm.awaitRun(m.job, m.timeoutMs);
    } else if (m.cmd === 'close') {
      await swarm.close();
      process.send({ cmd: 'close', result: {} });
      process.exit(0);
    }
    process.send({ cmd: m.cmd, result });
  } catch (err) {
    process.send({ cmd: m.cmd, error: String(err?.stack ?? err) });
  }
});
process.send({ cmd: 'ready' });
