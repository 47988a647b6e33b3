import { fileURLToPath } from 'node:url';
import { it } from 'vitest';
import { expectErrorsDocumented } from '@outpost/testing';
import { AgentErrors } from '../src/index.js';

it('documents every error code in the README, and no other', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../README.md', import.meta.url)), Object.values(AgentErrors));
});
