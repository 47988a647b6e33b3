import { describe, expect, it } from 'vitest';
import { localGrant } from '@outpost/appliance';

describe('localGrant', () => {
  it('grants an in-process service exactly its services and the hosts it states (any-address binds are loopback)', () => {
    expect(localGrant({ task: true }, ['0.0.0.0', '127.0.0.1:50125'])).toEqual({ services: { task: true }, addresses: ['127.0.0.1'] });
    expect(localGrant({ package: { constrained: true } }, ['https://PKG.example:8081', '[::]', '10.1.0.5/24', undefined])).toEqual({
      services: { package: { constrained: true } },
      addresses: ['::1', '10.1.0.5'],
      names: ['pkg.example'],
    });
    expect(localGrant({ gateway: true }, ['127.0.0.1', 'localhost', '127.0.0.1'])).toEqual({ services: { gateway: true }, addresses: ['127.0.0.1'], names: ['localhost'] });
    // Nothing stated: the core approves the address it enrolls from.
    expect(localGrant({ netboot: true }, [undefined, ''])).toEqual({ services: { netboot: true } });
  });
});
