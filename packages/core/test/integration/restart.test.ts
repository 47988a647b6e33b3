import { afterEach, describe, expect, it } from 'vitest';
import { cleanup, enrollAgent, enrollSiteServer, heartbeat, nextMessage, sendTo, startCore, testClock, udpSocket } from './harness.js';

afterEach(cleanup);

describe('restart', () => {
  it('keeps sites, tokens, site servers, agents, last contacts and the admin token across a restart; credentials still work', async () => {
    const clock = testClock();
    const first = await startCore({ clock });
    await first.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16', '2001:db8::/48'], description: 'head office' } });
    await first.call('POST', '/sites', { body: { name: 'branch', subnets: ['10.2.0.0/16'] } });
    const spare = (await first.call('POST', '/tokens', { body: { for: 'agent', uses: 5, note: 'spare' } })).body;
    const ss = await enrollSiteServer(first, 'ts', { address: '10.1.0.2/16' });
    await first.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['branch'] } });
    const a = await enrollAgent(first, 'pc-a', { ips: ['10.1.3.3/16'], macs: ['52:54:00:00:00:0a'], os: 'linux' });
    const b = await enrollAgent(first, 'pc-b', { ips: ['10.2.3.3/16'] }, spare.token);
    clock.advance(5_000);
    const sock = await udpSocket();
    const ack = nextMessage(sock, 2_000);
    await sendTo(sock, first, heartbeat(first, a, { s: 'sa' }));
    expect(await ack).toBeDefined();
    clock.advance(5_000);
    await first.call('POST', `/agents/${b.id}/heartbeat`, { token: b.credential, body: { configSerial: 'sb' } });
    await first.core.registry.settled();

    const snapshot = async (tc: typeof first) => ({
      sites: (await tc.call('GET', '/sites')).body.items,
      tokens: ((await tc.call('GET', '/tokens')).body.items as { id: string }[]).sort((x, y) => x.id.localeCompare(y.id)),
      siteServers: ((await tc.call('GET', '/site-servers')).body.items as Record<string, unknown>[]).map(({ configSerial: _c, ...rest }) => rest),
      agents: ((await tc.call('GET', '/agents')).body.items as Record<string, unknown>[]).map(({ configSerial: _c, ...rest }) => rest),
    });
    const before = await snapshot(first);
    expect(before.agents).toHaveLength(2);
    await first.stop();

    const second = await startCore({ dir: first.dir, clock });
    expect(second.admin).toBe(first.admin);
    await second.core.registry.settled();
    const after = await snapshot(second);
    // Config serials carry the (new, port 0) datagram port; everything else is the same.
    expect(after).toEqual(before);
    const va = after.agents.find((x) => x.id === a.id)!;
    expect(va).toMatchObject({ state: 'online', lastContactVia: 'udp', reportedConfigSerial: 'sa', macs: ['52:54:00:00:00:0a'], sites: ['hq'] });
    expect(after.agents.find((x) => x.id === b.id)).toMatchObject({ state: 'poll-only', lastContactVia: 'http', reportedConfigSerial: 'sb', sites: ['branch'] });
    expect(after.tokens.find((t: { id: string }) => t.id === spare.id)).toMatchObject({ usesLeft: 4, note: 'spare' });

    // Enrolled credentials still work, over HTTP and UDP.
    expect((await second.call('GET', `/agents/${a.id}`, { token: a.credential })).status).toBe(200);
    expect((await second.call('GET', `/site-servers/${ss.id}/config`, { token: ss.credential })).body.sites).toEqual(['branch', 'hq']);
    clock.advance(1);
    const ack2 = nextMessage(sock, 2_000);
    await sendTo(sock, second, heartbeat(second, a));
    expect(await ack2).toBeDefined();
    // The spare token still enrolls.
    expect((await enrollAgent(second, 'pc-c', {}, spare.token)).id).toMatch(/^ag_/);
  });

  it('refuses to start on a data dir another core holds, naming it', async () => {
    const first = await startCore();
    await expect(startCore({ dir: first.dir })).rejects.toMatchObject({ code: 'COMMON_DB_LOCKED' });
  });
});
