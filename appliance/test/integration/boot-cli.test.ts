// outpost computer add / computers / boot-image add / boot-images / boots against a real core.
import { join } from 'node:path';
import { main } from '@outpost/appliance';
import { silentLogger, validateConfig } from '@outpost/common';
import { coreConfigSchema, createCore, type Core } from '@outpost/core';
import { removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { recordingIo } from '../io.js';

let dir: string;
let core: Core;
const run = async (...argv: string[]) => {
  const io = recordingIo(dir, { OUTPOST_URL: core.url, OUTPOST_TOKEN: core.adminToken });
  const code = await main(argv, io);
  return { code, out: io.stdout.join('\n'), err: io.stderr.join('\n') };
};

beforeAll(async () => {
  dir = await tempDir('outpost-boot-cli-');
  core = createCore(validateConfig(coreConfigSchema, { dataDir: join(dir, 'core'), http: { port: 0 }, datagram: { host: '127.0.0.1', port: 0 } }, { file: 'test' }), { logger: silentLogger() });
  await core.start();
});
afterAll(async () => {
  await core.stop();
  await removeDir(dir);
});

it('defines a boot image, predefines a computer, lists both, and shows boots', async () => {
  expect(await run('boot-image', 'add', 'winpe', '--package', 'winpe-pkg', '--script', 'boot.ipxe')).toMatchObject({ code: 0, out: 'boot image winpe added (package winpe-pkg)' });
  expect((await run('boot-images')).out).toMatch(/winpe\s+winpe-pkg\s+script boot\.ipxe/);
  const add = await run('computer', 'add', '--mac', '52:54:00:12:34:56', '--image', 'winpe', '--job', 'install-base');
  expect(add.code).toBe(0);
  expect(add.out).toMatch(/^computer pc_\S+ \(52:54:00:12:34:56\) predefined: image winpe, job install-base$/);
  // No such job yet: added anyway (it may be defined before the machine's agent enrolls), with a warning.
  expect(add.err).toMatch(/^warning: .*install-base.*define it before the machine's agent enrolls/);
  expect((await run('computers')).out).toMatch(/predefined\s+52:54:00:12:34:56\s+-\s+winpe\s+install-base/);
  expect((await run('boots')).out).toBe('no boots yet');
  expect(await run('computer', 'add', '--image', 'winpe')).toMatchObject({ code: 2 });
  expect((await run('computer', 'add', '--mac', '52:54:00:12:34:56', '--image', 'nope')).err).toContain('CORE_BOOT_IMAGE_NOT_FOUND');
});

it('computer reboot-to sets a one-shot boot into an image (by computer, or by a MAC not known yet), shown in computers', async () => {
  await run('boot-image', 'add', 'rescue', '--package', 'rescue-pkg', '--script', 'boot.ipxe');
  const byRef = await run('computer', 'reboot-to', '52:54:00:12:34:56', '--image', 'rescue', '--job', 'reimage');
  expect(byRef.code, byRef.err).toBe(0);
  expect(byRef.out).toMatch(/^computer pc_\S+ \(52:54:00:12:34:56\) boots image rescue \(job reimage\) once, on its next network boot$/);
  expect((await run('computers')).out).toMatch(/predefined\s+52:54:00:12:34:56\s+-\s+winpe\s+install-base\s+-\s+rescue/);
  const byMac = await run('computer', 'reboot-to', '--mac', '52:54:00:aa:bb:cc', '--image', 'rescue', '--json');
  expect(byMac.code, byMac.err).toBe(0);
  expect(JSON.parse(byMac.out)).toMatchObject({ kind: 'discovered', macs: ['52:54:00:aa:bb:cc'], once: { image: 'rescue' } });
  expect(await run('computer', 'reboot-to', '--image', 'rescue')).toMatchObject({ code: 2 });
  expect(await run('computer', 'reboot-to', 'x', '--mac', '52:54:00:aa:bb:cc', '--image', 'rescue')).toMatchObject({ code: 2 });
  expect(await run('computer', 'reboot-to', '--mac', '52:54:00:aa:bb:cc')).toMatchObject({ code: 2 });
  expect((await run('computer', 'reboot-to', 'no-such-pc', '--image', 'rescue')).err).toContain('CORE_BOOT_COMPUTER_NOT_FOUND');
});

it('computer bind binds a computer to an agent (then reboot-to --agent names it) and --none unbinds it', async () => {
  const { token } = await core.createEnrollmentToken({ for: 'agent' });
  const enr = await fetch(`${core.url}/api/v1/enroll`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token, name: 'bound', macs: ['52:54:00:12:34:56'] }) });
  const agent = ((await enr.json()) as { id: string }).id;
  // Its reported MAC alone names nothing.
  expect((await run('computer', 'reboot-to', '--agent', agent, '--image', 'rescue')).err).toContain('CORE_BOOT_NOT_BOUND');
  const bound = await run('computer', 'bind', '52:54:00:12:34:56', '--agent', agent);
  expect(bound.code, bound.err).toBe(0);
  expect(bound.out).toMatch(new RegExp(`^computer pc_\\S+ \\(52:54:00:12:34:56\\) bound to agent ${agent}$`));
  expect((await run('computer', 'reboot-to', '--agent', agent, '--image', 'rescue')).code).toBe(0);
  expect((await run('computer', 'bind', '52:54:00:12:34:56', '--none')).out).toMatch(/unbound: predefined$/);
  expect(await run('computer', 'bind', '52:54:00:12:34:56')).toMatchObject({ code: 2 });
  expect(await run('computer', 'bind', '52:54:00:12:34:56', '--agent', agent, '--none')).toMatchObject({ code: 2 });
});
