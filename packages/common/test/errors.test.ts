import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { CommonErrors, isOutpostError, OutpostError, parseCidr, parseDuration, validateConfig, z } from '@outpost/common';
import { SiteLinkErrors } from '@outpost/common/site-link';
import { expectErrorsDocumented, readErrorsTable, removeDir, tempDir } from '@outpost/testing';

const README = fileURLToPath(new URL('../README.md', import.meta.url));

describe('OutpostError', () => {
  it('carries code, status (500 by default), details and cause', () => {
    const cause = new Error('low level');
    const err = new OutpostError('COMMON_X', 'msg', { status: 418, details: { a: 1 }, cause });
    expect([err.code, err.status, err.details, err.cause, err.name, err.message]).toEqual(['COMMON_X', 418, { a: 1 }, cause, 'OutpostError', 'msg']);
    expect(new OutpostError('COMMON_X', 'm').status).toBe(500);
    expect('cause' in new OutpostError('COMMON_X', 'm')).toBe(false);
    expect(isOutpostError(err)).toBe(true);
    expect(isOutpostError(new Error('x'))).toBe(false);
    expect(isOutpostError({ code: 'COMMON_X' })).toBe(false);
  });

  it('prefixes every common code with COMMON_ and keeps them unique', () => {
    const codes = Object.values(CommonErrors);
    expect(codes.every((c) => /^COMMON_[A-Z_]+$/.test(c))).toBe(true);
    expect(new Set(codes).size).toBe(codes.length);
  });

  it('prefixes every site-link code with SITE_LINK_ and keeps them unique', () => {
    const codes = Object.values(SiteLinkErrors);
    expect(codes.every((c) => /^SITE_LINK_[A-Z_]+$/.test(c))).toBe(true);
    expect(new Set(codes).size).toBe(codes.length);
  });
});

describe('README Errors table', () => {
  it('documents every code in CommonErrors and SiteLinkErrors, and no other', async () => {
    await expectErrorsDocumented(README, [...Object.values(CommonErrors), ...Object.values(SiteLinkErrors)]);
  });

  it('documents the status each error is raised with', async () => {
    const status = new Map((await readErrorsTable(README)).map((r) => [r.code, r.status]));
    const raised = [
      () => parseCidr('10.0.0.1/8'),
      () => parseDuration('soon'),
      () => validateConfig(z.strictObject({}), { x: 1 }, { file: 'x.yaml' }),
    ].map((f) => {
      try {
        f();
      } catch (err) {
        return err as OutpostError;
      }
      throw new Error('expected a throw');
    });
    for (const err of raised) expect(status.get(err.code), err.code).toBe(err.status);
  });
});

describe('expectErrorsDocumented', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await tempDir('outpost-errors-doc-');
  });
  afterEach(async () => {
    await removeDir(dir);
  });

  const readme = async (body: string): Promise<string> => {
    const file = join(dir, 'README.md');
    await writeFile(file, `# pkg\n\nIntro.\n\n## Errors\n\n${body}\n## Next\n\n| not | this |\n|---|---|\n| X_OTHER | 1 |\n`);
    return file;
  };

  it('passes when the table lists exactly the codes', async () => {
    const file = await readme('| Code | HTTP status | Meaning |\n|---|---|---|\n| `X_A` | 400 | a |\n| X_B | — | b |\n');
    const rows = await expectErrorsDocumented(file, ['X_B', 'X_A']);
    expect(rows.map((r) => [r.code, r.status])).toEqual([
      ['X_A', 400],
      ['X_B', undefined],
    ]);
  });

  it('fails naming both a missing and an extra code', async () => {
    const file = await readme('| Code | HTTP status | Meaning |\n|---|---|---|\n| `X_A` | 400 | a |\n| `X_GONE` | 404 | gone |\n');
    const err = await expectErrorsDocumented(file, ['X_A', 'X_NEW']).then(
      () => undefined,
      (e: unknown) => e as Error,
    );
    expect(err?.message).toMatch(/X_NEW is raised by the code but missing/);
    expect(err?.message).toMatch(/X_GONE is documented but not raised/);
  });

  it('fails on a duplicate row or an empty meaning', async () => {
    const file = await readme('| Code | HTTP status | Meaning |\n|---|---|---|\n| `X_A` | 400 | a |\n| `X_A` | 400 |  |\n');
    await expect(expectErrorsDocumented(file, ['X_A'])).rejects.toThrow(/documented twice[\s\S]*has no meaning/);
  });

  it('fails when there is no Errors heading', async () => {
    const file = join(dir, 'NO.md');
    await writeFile(file, '# pkg\n');
    await expect(expectErrorsDocumented(file, [])).rejects.toThrow(/no "Errors" heading/);
  });
});
