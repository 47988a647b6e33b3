import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { allValues, CommonErrors, getJson, openDatabase, OutpostError, sublevel, type Database } from '@outpost/common';
import { removeDir, tempDir } from '@outpost/testing';

const run = promisify(execFile);
const COMMON_DIST = new URL('../../dist/index.js', import.meta.url).href;

interface Site {
  name: string;
  cidrs: string[];
}

let dir: string;
const open: Database[] = [];

async function openIn(location: string): Promise<Database> {
  const db = await openDatabase(location);
  open.push(db);
  return db;
}

beforeEach(async () => {
  dir = await tempDir('outpost-common-db-');
});

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
  await removeDir(dir);
});

describe('openDatabase', () => {
  it('creates the data dir (nested) and opens a database there', async () => {
    const db = await openIn(join(dir, 'a', 'b', 'data'));
    expect(db.status).toBe('open');
  });

  it('round-trips JSON values through a sublevel, absent keys read as undefined', async () => {
    const db = await openIn(join(dir, 'data'));
    const sites = sublevel<Site>(db, 'sites');
    await sites.put('s2', { name: 'two', cidrs: ['10.2.0.0/16'] });
    await sites.put('s1', { name: 'one', cidrs: [] });
    expect(await getJson(sites, 's2')).toEqual({ name: 'two', cidrs: ['10.2.0.0/16'] });
    expect(await getJson(sites, 'nope')).toBeUndefined();
    expect(await allValues(sites)).toEqual([{ name: 'one', cidrs: [] }, { name: 'two', cidrs: ['10.2.0.0/16'] }]);
  });

  it('keeps sublevels apart: the same key in two sublevels holds two values', async () => {
    const db = await openIn(join(dir, 'data'));
    const a = sublevel<number>(db, 'a');
    const b = sublevel<number>(db, 'b');
    await a.put('k', 1);
    await b.put('k', 2);
    expect([await getJson(a, 'k'), await getJson(b, 'k')]).toEqual([1, 2]);
    expect(await allValues(a)).toEqual([1]);
  });

  it('writes a batch across sublevels atomically: all of it, or none of it', async () => {
    const db = await openIn(join(dir, 'data'));
    const records = sublevel<Site>(db, 'sites');
    const index = sublevel<string>(db, 'sites-by-name');
    await db.batch([
      { type: 'put', sublevel: records, key: 's1', value: { name: 'one', cidrs: [] } },
      { type: 'put', sublevel: index, key: 'one', value: 's1' },
    ]);
    expect(await getJson(records, 's1')).toEqual({ name: 'one', cidrs: [] });
    expect(await getJson(index, 'one')).toBe('s1');

    // One bad operation fails the whole batch: the good one is not written either.
    await expect(
      db.batch([
        { type: 'put', sublevel: records, key: 's2', value: { name: 'two', cidrs: [] } },
        { type: 'put', sublevel: index, key: 'two', value: undefined as unknown as string },
      ]),
    ).rejects.toThrow();
    expect(await getJson(records, 's2')).toBeUndefined();
    expect(await getJson(index, 'two')).toBeUndefined();
  });

  it('keeps the data across close and reopen', async () => {
    const location = join(dir, 'data');
    const db = await openDatabase(location);
    await sublevel<string>(db, 'x').put('k', 'v');
    await db.close();
    const again = await openIn(location);
    expect(await getJson(sublevel<string>(again, 'x'), 'k')).toBe('v');
  });

  it('fails with COMMON_DB_LOCKED naming the dir when the same process opens it twice', async () => {
    const location = join(dir, 'data');
    await openIn(location);
    const err = await openDatabase(location).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutpostError);
    expect((err as OutpostError).code).toBe(CommonErrors.DB_LOCKED);
    expect((err as OutpostError).message).toContain(location);
    expect((err as OutpostError).details).toEqual({ location });
  });

  it('fails with COMMON_DB_LOCKED naming the dir when another process holds the database', async () => {
    const location = join(dir, 'data');
    await openIn(location);
    const script = `
      const { openDatabase } = await import(${JSON.stringify(COMMON_DIST)});
      try { await openDatabase(${JSON.stringify(location)}); console.log(JSON.stringify({ opened: true })); }
      catch (err) { console.log(JSON.stringify({ code: err.code, message: err.message })); }`;
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 10_000 });
    const result = JSON.parse(stdout.trim()) as { code?: string; message?: string };
    expect(result.code).toBe(CommonErrors.DB_LOCKED);
    expect(result.message).toContain(location);
  });

  it('fails with COMMON_DB_OPEN naming the location when it is not a directory', async () => {
    const location = join(dir, 'a-file');
    await writeFile(location, 'not a database');
    const err = await openDatabase(location).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(OutpostError);
    expect((err as OutpostError).code).toBe(CommonErrors.DB_OPEN);
    expect((err as OutpostError).message).toContain(location);
  });
});
