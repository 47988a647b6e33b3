import { describe, expect, it } from 'vitest';
import { oidcConfigSchema } from '../../src/admins/config.js';

const base = { clientId: 'outpost', groups: { ops: { roles: ['viewer'] } } };

describe('core.admins.oidc', () => {
  it('takes an https issuer, and plain http only for a provider on this machine', () => {
    expect(oidcConfigSchema.safeParse({ ...base, issuer: 'https://login.example.com/realms/it' }).success).toBe(true);
    for (const issuer of ['http://127.0.0.1:9000', 'http://localhost:9000', 'http://[::1]:9000']) expect(oidcConfigSchema.safeParse({ ...base, issuer }).success, issuer).toBe(true);
    for (const issuer of ['http://login.example.com', 'http://10.0.0.5', 'http://127.0.0.1.example.com']) expect(oidcConfigSchema.safeParse({ ...base, issuer }).success, issuer).toBe(false);
  });

  it('fills the defaults: scopes, claims and label', () => {
    expect(oidcConfigSchema.parse({ ...base, issuer: 'https://login.example.com' })).toMatchObject({ scopes: ['openid', 'profile', 'email', 'groups'], groupsClaim: 'groups', nameClaim: 'preferred_username', label: 'Single sign-on' });
  });

  it('rejects unknown keys', () => {
    expect(oidcConfigSchema.safeParse({ ...base, issuer: 'https://login.example.com', clientSecrt: 'x' }).success).toBe(false);
  });
});
