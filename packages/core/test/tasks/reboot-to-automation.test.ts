// The reboot-to-automation built-in as a task definition: it takes args [image, job?].
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCore, type Harness } from './harness.js';

let h: Harness;
beforeAll(async () => {
  h = await startCore();
});
afterAll(async () => {
  await h.close();
});

describe('reboot-to-automation built-in task', () => {
  it('is defined with args [image, job?] and refused without an image or with more', async () => {
    const ok = await h.admin('POST', '/tasks', { name: 'to-winpe', kind: 'builtin', builtin: 'reboot-to-automation', args: ['winpe', 'reimage'] });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    expect(ok.body).toMatchObject({ builtin: 'reboot-to-automation', args: ['winpe', 'reimage'] });
    for (const args of [undefined, [], [''], ['a', 'b', 'c']]) {
      const bad = await h.admin<{ error: { code: string; message: string } }>('POST', '/tasks', { name: 'bad', kind: 'builtin', builtin: 'reboot-to-automation', ...(args ? { args } : {}) });
      expect(bad.status).toBe(400);
      expect(bad.body.error.message).toContain('reboot-to-automation takes args [image, job?]');
    }
  });
});
