import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { HierarchyErrors } from '../../src/hierarchy/errors.js';

it('documents every hierarchy code in src/hierarchy/README.md', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../../src/hierarchy/README.md', import.meta.url)), Object.values(HierarchyErrors));
});
