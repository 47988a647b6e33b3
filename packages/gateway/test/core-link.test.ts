import { describe, expect, it } from 'vitest';
import { routesOf } from '../src/core-link.js';

describe('core link routes', () => {
  it('dials the addresses the core approved for a site server named by DNS, and drops such a target without any', () => {
    const { routes, dial } = routesOf({
      coreId: 'core_1',
      serial: 's',
      targets: [
        { target: 'core.example:8080', kind: 'core', addresses: [] },
        { target: 'pkg.example:8081', kind: 'site-server', addresses: ['10.1.0.5', 'not-an-ip'] },
        { target: 'ts.example:8082', kind: 'site-server' },
        { target: '10.1.0.6:8083', kind: 'site-server', addresses: ['10.1.0.6'] },
        { target: '[2001:db8::7]:8084', kind: 'site-server', addresses: [] },
      ],
    });
    expect(routes).toEqual(['core.example:8080', 'pkg.example:8081', '10.1.0.6:8083', '[2001:db8::7]:8084']);
    expect(dial).toEqual({ 'pkg.example:8081': ['10.1.0.5'], '10.1.0.6:8083': ['10.1.0.6'] });
  });
});
