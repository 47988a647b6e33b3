import { it } from 'vitest';
import { join } from 'node:path';
import { expectErrorsDocumented } from '@outpost/testing';
import { TftpErrors } from '../src/index.js';

it('documents exactly the error codes the package raises in the README Errors table', async () => {
  await expectErrorsDocumented(join(import.meta.dirname, '../README.md'), Object.values(TftpErrors));
});
