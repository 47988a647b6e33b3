import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { CoreErrors } from '@outpost/core';
import { expectErrorsDocumented } from '@outpost/testing';

describe('@outpost/core errors', () => {
  it('documents every CORE_* code in the README Errors table, each once with a status, and nothing extra', async () => {
    const rows = await expectErrorsDocumented(fileURLToPath(new URL('../README.md', import.meta.url)), Object.values(CoreErrors));
    for (const r of rows) expect(r.status, r.code).toBeGreaterThanOrEqual(400);
  });
});
