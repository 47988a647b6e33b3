import { cp, readdir, readFile, rm, writeFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AgentErrors } from '../../src/index.js';
import { startHarness, type Harness } from './core-harness.js';

/**
 * Two machines from one image: root A is an enrolled machine (its data dir and its
 * machine-id file); root B is a copy of A with another machine id, as a second computer
 * made from an image of A would be. Each must end as an agent of its own.
 */

let h: Harness;

beforeEach(async () => {
  h = await startHarness();
});
afterEach(async () => {
  await h.close();
});

const MACHINE_A = '0123456789abcdef0123456789abcdef';
const MACHINE_B = 'fedcba9876543210fedcba9876543210';

/** A machine root: `etc/machine-id` and the agent's data dir `var/agent`. */
async function machineRoot(name: string, machineId: string | undefined): Promise<string> {
  const root = join(h.dir, name);
  await mkdir(join(root, 'etc'), { recursive: true });
  if (machineId !== undefined) await writeFile(join(root, 'etc/machine-id'), `${machineId}\n`);
  return root;
}

const agentIn = (root: string, withToken = true) =>
  h.agent({ dataDir: join(root, 'var/agent'), machineIdFile: join(root, 'etc/machine-id'), ...(withToken ? {} : { enrollToken: undefined }) }, 'pc');

async function identityOf(root: string): Promise<{ id: string; machineId?: string }> {
  return JSON.parse(await readFile(join(root, 'var/agent/identity.json'), 'utf8')) as { id: string; machineId?: string };
}

async function agentIds(): Promise<string[]> {
  const page = await h.admin.call<{ items: Array<{ id: string }> }>('GET', '/agents', { bearer: h.core.adminToken });
  return page.items.map((a) => a.id).sort();
}

/** Enrolls an agent in a new root A and stops it, as an image is made of a machine. */
async function enrolledImage(): Promise<{ root: string; id: string }> {
  const root = await machineRoot('a', MACHINE_A);
  const a = agentIn(root);
  await a.start();
  const id = a.id!;
  await a.stop();
  expect(await identityOf(root)).toMatchObject({ id, machineId: MACHINE_A });
  return { root, id };
}

async function copyOf(image: string, name: string, machineId: string | undefined): Promise<string> {
  const root = join(h.dir, name);
  await cp(image, root, { recursive: true });
  if (machineId === undefined) await rm(join(root, 'etc/machine-id'));
  else await writeFile(join(root, 'etc/machine-id'), `${machineId}\n`);
  return root;
}

describe('an identity copied to another computer (a cloned image)', () => {
  it('ends as two agents: the copy moves the identity aside and enrolls anew with the token', async () => {
    const image = await enrolledImage();
    const b = await copyOf(image.root, 'b', MACHINE_B);

    const agentA = agentIn(image.root);
    const agentB = agentIn(b);
    await agentA.start();
    await agentB.start();

    expect(agentA.id).toBe(image.id);
    expect(agentB.id).toBeDefined();
    expect(agentB.id).not.toBe(image.id);
    expect(await agentIds()).toEqual([image.id, agentB.id!].sort());
    expect(await identityOf(b)).toMatchObject({ id: agentB.id, machineId: MACHINE_B });
    // B's old identity is kept aside, renamed; A's is untouched.
    const aside = (await readdir(join(b, 'var/agent'))).filter((f) => /^identity\.cloned-.+\.json$/.test(f));
    expect(aside).toHaveLength(1);
    expect(JSON.parse(await readFile(join(b, 'var/agent', aside[0]!), 'utf8'))).toMatchObject({ id: image.id, machineId: MACHINE_A });
    expect(await identityOf(image.root)).toMatchObject({ id: image.id, machineId: MACHINE_A });
    // Both run: each heartbeats as itself.
    await expect(agentA.refreshConfig()).resolves.toBeDefined();
    await expect(agentB.refreshConfig()).resolves.toBeDefined();
  });

  it('refuses to start a copy without a token with AGENT_CLONED_IDENTITY, and leaves the identity where it is', async () => {
    const image = await enrolledImage();
    const b = await copyOf(image.root, 'b', MACHINE_B);
    const agentB = agentIn(b, false);
    await expect(agentB.start()).rejects.toMatchObject({ code: AgentErrors.CLONED_IDENTITY, details: { id: image.id, enrolledOn: MACHINE_A, machineId: MACHINE_B } });
    expect(await identityOf(b)).toMatchObject({ id: image.id });
    expect(await agentIds()).toEqual([image.id]);
  });

  it('keeps the identity when the machine id is the same, or when there is none to compare (no check)', async () => {
    const image = await enrolledImage();
    const same = agentIn(image.root, false);
    await same.start();
    expect(same.id).toBe(image.id);
    await same.stop();
    const noId = await copyOf(image.root, 'c', undefined);
    const unchecked = agentIn(noId, false);
    await unchecked.start();
    expect(unchecked.id).toBe(image.id);
    expect(await agentIds()).toEqual([image.id]);
  });

  it('records the machine id in an identity enrolled before machine ids were', async () => {
    const root = await machineRoot('old', undefined);
    const first = agentIn(root);
    await first.start();
    const id = first.id!;
    await first.stop();
    expect((await identityOf(root)).machineId).toBeUndefined();
    await writeFile(join(root, 'etc/machine-id'), `${MACHINE_A}\n`);
    const again = agentIn(root, false);
    await again.start();
    expect(again.id).toBe(id);
    expect(await identityOf(root)).toMatchObject({ id, machineId: MACHINE_A });
  });
});
