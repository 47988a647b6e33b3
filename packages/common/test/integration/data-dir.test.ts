import { chmod, mkdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { tempDir, removeDir } from '@outpost/testing';
import { findLoosePaths, openDatabase, PRIVATE_UMASK, usePrivateUmask, warnLooseDataDirs } from '@outpost/common';

let dir: string;
let umask: number;
beforeEach(async () => {
  dir = await tempDir('outpost-datadir-');
  umask = process.umask(0o022);
});
afterEach(async () => {
  process.umask(umask);
  await removeDir(dir);
});

const modeOf = async (p: string): Promise<number> => (await stat(p)).mode & 0o777;

describe('data dir modes', () => {
  it('openDatabase creates its dir and missing parents 0700 under umask 022', async () => {
    const db = await openDatabase(join(dir, 'svc', 'db'));
    await db.close();
    expect(await modeOf(join(dir, 'svc'))).toBe(0o700);
    expect(await modeOf(join(dir, 'svc', 'db'))).toBe(0o700);
  });

  it('usePrivateUmask makes new dirs 0700 and files 0600, and returns the old umask', async () => {
    expect(usePrivateUmask()).toBe(0o022);
    expect(process.umask()).toBe(PRIVATE_UMASK);
    await mkdir(join(dir, 'd'));
    await writeFile(join(dir, 'd', 'key'), 'secret');
    expect(await modeOf(join(dir, 'd'))).toBe(0o700);
    expect(await modeOf(join(dir, 'd', 'key'))).toBe(0o600);
  });

  it('names every path with group/other bits, two levels down, and warns with the fix', async () => {
    const data = join(dir, 'data');
    await mkdir(join(data, 'db'), { recursive: true, mode: 0o700 });
    await chmod(data, 0o700);
    await writeFile(join(data, 'identity.json'), '{}', { mode: 0o600 });
    await writeFile(join(data, 'db', 'CURRENT'), 'x', { mode: 0o600 });
    expect(await findLoosePaths([data])).toEqual([]);
    await chmod(join(data, 'db', 'CURRENT'), 0o644);
    await chmod(data, 0o755);
    expect(await findLoosePaths([data, join(dir, 'missing')])).toEqual([
      { path: data, mode: 0o755 },
      { path: join(data, 'db', 'CURRENT'), mode: 0o644 },
    ]);
    const lines: Array<Record<string, unknown>> = [];
    const log = pino({ level: 'warn' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
    await warnLooseDataDirs([data], log);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, dataDir: data, fix: `chmod -R go-rwx ${data}`, paths: [`${data} 0755`, `${join(data, 'db', 'CURRENT')} 0644`] });
  });
});
