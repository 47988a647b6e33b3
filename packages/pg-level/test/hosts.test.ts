import { describe, expect, it } from 'vitest';
import { splitHosts } from '../src/hosts.js';

describe('splitHosts', () => {
  it('splits a libpq multi-host URL into one URL per host, keeping user, password, database and other parameters', () => {
    expect(splitHosts('postgres://outpost:pw@db1:5432,db2:5433/outpost?target_session_attrs=read-write&connect_timeout=5')).toEqual({
      urls: ['postgres://outpost:pw@db1:5432/outpost?connect_timeout=5', 'postgres://outpost:pw@db2:5433/outpost?connect_timeout=5'],
      readWrite: true,
    });
  });

  it('leaves a one-host URL as it is, and reads primary as read-write', () => {
    expect(splitHosts('postgresql://outpost@127.0.0.1:5432/outpost')).toEqual({ urls: ['postgresql://outpost@127.0.0.1:5432/outpost'], readWrite: false });
    expect(splitHosts('postgres://a,b/x?target_session_attrs=primary').readWrite).toBe(true);
  });
});
