import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { GatewayErrors } from '../src/errors.js';

it('documents every GATEWAY_* code in the README', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../README.md', import.meta.url)), Object.values(GatewayErrors));
});
