import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { InstallErrors } from '../../src/install/errors.js';

it('documents every CORE_INSTALL_* code in src/install/README.md', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../../src/install/README.md', import.meta.url)), Object.values(InstallErrors));
});
