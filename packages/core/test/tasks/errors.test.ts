import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { TaskErrors } from '../../src/tasks/errors.js';

it('documents every CORE_TASK_* code in src/tasks/README.md', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../../src/tasks/README.md', import.meta.url)), Object.values(TaskErrors));
});
