import { describe, expect, it } from 'vitest';
import { actionName } from '../../src/audit/action.js';

describe('audit action names', () => {
  it.each([
    ['POST', '/api/v1/sites', 'sites.create'],
    ['DELETE', '/api/v1/admins/:name', 'admins.delete'],
    ['PATCH', '/api/v1/admins/:name', 'admins.update'],
    ['PUT', '/api/v1/jobs/:name', 'jobs.put'],
    ['POST', '/api/v1/session', 'session.create'],
    ['DELETE', '/api/v1/session', 'session.delete'],
    ['POST', '/api/v1/jobs/:name/runs', 'jobs.runs'],
    ['POST', '/api/v1/runs/:id/cancel', 'runs.cancel'],
    ['POST', '/api/v1/packages/:ref/enable', 'packages.enable'],
    ['POST', '/api/v1/admins/:name/tokens', 'admins.tokens'],
    ['DELETE', '/api/v1/admins/:name/tokens/:id', 'admins.tokens.delete'],
    ['PUT', '/api/v1/admins/:name/password', 'admins.password.put'],
    ['PUT', '/api/v1/packages/:ref/files/*path', 'packages.files.put'],
    ['POST', '/api/v1/ca/principals/:id/block', 'ca.principals.block'],
    ['GET', '/api/v1/sites', 'sites.read'],
    ['POST', '/api/v1/boot/computers', 'boot.computers.create'],
  ])('%s %s is %s', (method, route, action) => {
    expect(actionName(method, route)).toBe(action);
  });
});
