import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { AdminErrors } from '../../src/admins/errors.js';

it('documents every administrators code in src/admins/README.md', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../../src/admins/README.md', import.meta.url)), Object.values(AdminErrors));
});
