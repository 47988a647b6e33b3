import { join } from 'node:path';
import { validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { agentConfigSchema, createAgent, createCoreClient, type AgentConfigInput, type CoreClient, type OutpostAgent } from '../../src/index.js';

/** A real core on 127.0.0.1, port 0, with a temp data dir, plus the agents a test makes. */
export interface Harness {
  dir: string;
  core: Core;
  admin: CoreClient;
  token: string;
  /** Starts the core again on the same ports and data dir (after `core.stop()`). */
  restartCore(): Promise<void>;
  agent(overrides?: Partial<AgentConfigInput>, name?: string): OutpostAgent;
  /** The core's view of an agent (admin API). */
  agentView(id: string): Promise<{ id: string; name: string; state: string; lastContactVia?: string }>;
  close(): Promise<void>;
}

function coreConfig(dir: string, httpPort = 0, datagramPort = 0) {
  return validateConfig(
    coreConfigSchema,
    {
      dataDir: join(dir, 'core'),
      http: { host: '127.0.0.1', port: httpPort },
      datagram: { host: '127.0.0.1', port: datagramPort },
      contactFlushInterval: '1s',
    },
    { file: '<test>' },
  );
}

export async function startHarness(): Promise<Harness> {
  const dir = await tempDir('outpost-agent-');
  let core = createCore(coreConfig(dir));
  await core.start();
  const url = core.url;
  let admin = createCoreClient({ coreUrl: url });
  const { token } = await core.createEnrollmentToken({ for: 'agent', uses: 1000 });
  const agents: OutpostAgent[] = [];
  const h: Harness = {
    dir,
    get core() {
      return core;
    },
    get admin() {
      return admin;
    },
    token,
    async restartCore() {
      const port = new URL(url).port;
      const dgram = core.datagramPort;
      await core.stop();
      core = createCore(coreConfig(dir, Number(port), dgram));
      await core.start();
      admin.close();
      admin = createCoreClient({ coreUrl: core.url });
    },
    agent(overrides = {}, name = 'a1') {
      const config = validateConfig(
        agentConfigSchema,
        {
          coreUrl: url,
          dataDir: join(dir, 'agents', name),
          name,
          enrollToken: token,
          heartbeat: { interval: '300ms', udpAckTimeout: '200ms' },
          configPollInterval: '1h',
          retry: { base: '100ms', cap: '400ms' },
          // The task side (tickle listener on UDP 50124 ...) is not under test here.
          tasks: { enabled: false },
          ...overrides,
        },
        { file: '<test>' },
      );
      const a = createAgent(config);
      agents.push(a);
      return a;
    },
    async agentView(id) {
      return admin.call('GET', `/agents/${id}`, { bearer: core.adminToken });
    },
    async close() {
      await Promise.all(agents.map((a) => a.stop()));
      admin.close();
      await core.stop();
      await removeDir(dir);
    },
  };
  return h;
}
