import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { AuditErrors } from '../../src/audit/errors.js';

it('documents every audit code in src/audit/README.md', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../../src/audit/README.md', import.meta.url)), Object.values(AuditErrors));
});
