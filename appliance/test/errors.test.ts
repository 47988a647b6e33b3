import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { ApplianceErrors } from '@outpost/appliance';
import { expectErrorsDocumented } from '@outpost/testing';

it('documents every APPLIANCE_ error code in the README, and no other', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../README.md', import.meta.url)), Object.values(ApplianceErrors));
});
