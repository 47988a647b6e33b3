import { silentLogger, validateConfig } from '@outpost/common';
import type { Core } from '@outpost/core';
import { freePort, grantFor, removeDir, tempDir } from '@outpost/testing';
import { afterEach, describe, expect, it } from 'vitest';
import { createTaskServer, taskServerConfigSchema, type TaskServer } from '../../src/index.js';
import { fakeAgent, startCore, type Env, type FakeAgent } from '../harness.js';

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c().catch(() => undefined);
});

describe('looking up an agent not known here', () => {
  it('tells the agent to retry (502 TASK_CORE_UNREACHABLE) while the core cannot be asked, and serves it as soon as the core answers: a failed lookup is not remembered as unknown', async () => {
    const [coreDir, tsDir] = [await tempDir('outpost-ts-core-'), await tempDir('outpost-ts-')];
    cleanups.push(() => removeDir(coreDir), () => removeDir(tsDir));
    const corePort = await freePort('tcp');
    let core: Core = await startCore(coreDir, corePort);
    cleanups.push(() => core.stop());
    const token = await core.createEnrollmentToken({ for: 'site-server', grant: grantFor({ task: {} }) });
    const ts: TaskServer = createTaskServer(
      validateConfig(
        taskServerConfigSchema,
        { coreUrl: core.url, dataDir: tsDir, name: 'ts-test', enrollToken: token.token, http: { host: '127.0.0.1', port: await freePort('tcp') }, coreTickle: { host: '127.0.0.1', port: 0 } },
        { file: 'test' },
      ),
      { logger: silentLogger() },
    );
    await ts.start();
    cleanups.push(() => ts.stop());
    const env = { core, ts } as Pick<Env, 'core' | 'ts'> as Env;

    // The agent enrolls (and is assigned to this task server) while the task server is away.
    await ts.stop();
    const agent: FakeAgent = await fakeAgent(env, 'pc-1');
    cleanups.push(() => agent.close());
    const assigned = (await (await fetch(`${core.url}/api/v1/agents/${agent.id}`, { headers: { authorization: `Bearer ${core.adminToken}` } })).json()) as { taskServer?: string };
    expect(assigned.taskServer).toBe(ts.id);

    // The task server is back, the core is not: the agent is told to come again, not that it is unknown.
    await core.stop();
    await ts.start();
    const refused = await agent.call<{ error: { code: string } }>('GET', '/agent/work');
    expect(refused.status).toBe(502);
    expect(refused.body.error.code).toBe('TASK_CORE_UNREACHABLE');
    expect((await agent.call('GET', '/agent/work')).status).toBe(502);

    // The core is back: the agent's next call is served (the failure was not cached for 15 s).
    core = await startCore(coreDir, corePort);
    env.core = core;
    const served = await agent.call<{ runs: unknown[] }>('GET', '/agent/work');
    expect(served.status).toBe(200);
    expect(served.body.runs).toEqual([]);
  });
});
