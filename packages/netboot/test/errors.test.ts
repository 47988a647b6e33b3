import { join } from 'node:path';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { NetbootErrors } from '../src/index.js';
import { BootErrors } from '../../core/src/boot/errors.js';

it('documents exactly the error codes the package raises in the README Errors table', async () => {
  await expectErrorsDocumented(join(import.meta.dirname, '../README.md'), Object.values(NetbootErrors));
});

it('documents every CORE_BOOT_* code in the core boot module README', async () => {
  await expectErrorsDocumented(join(import.meta.dirname, '../../core/src/boot/README.md'), Object.values(BootErrors));
});
