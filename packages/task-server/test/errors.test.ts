import { fileURLToPath } from 'node:url';
import { expectErrorsDocumented } from '@outpost/testing';
import { it } from 'vitest';
import { TaskServerErrors } from '../src/index.js';

it('documents every TASK_* code in the README', async () => {
  await expectErrorsDocumented(fileURLToPath(new URL('../README.md', import.meta.url)), Object.values(TaskServerErrors));
});
