import { afterEach, describe, expect, it } from 'vitest';
import { DatagramType, TickleFlags } from '@outpost/common';
import { cleanup, collect, enrollSiteServer, nextMessage, openFromCore, startCore, udpSocket } from './harness.js';

afterEach(cleanup);

describe('tickles to site servers', () => {
  it('sends a signed TICKLE with the CONFIG flag when an admin changes the sites of a site server', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: [] } });
    const sock = await udpSocket();
    const ss = await enrollSiteServer(tc, 'ts', { tickleAddress: `127.0.0.1:${sock.address().port}` });
    const quiet = await collect(sock, 100);
    expect(quiet).toEqual([]);
    const got = nextMessage(sock, 2_000);
    expect((await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['hq'] } })).status).toBe(200);
    const msg = await got;
    expect(msg, 'no tickle arrived').toBeDefined();
    const d = openFromCore(msg!, ss.key, tc.clock.now());
    expect(d.type).toBe(DatagramType.TICKLE);
    expect(d.sender).toBe('core');
    expect(d.flags & TickleFlags.CONFIG).toBe(TickleFlags.CONFIG);
    // Signed with this server's key: another key does not open it.
    const other = await enrollSiteServer(tc, 'other');
    expect(() => openFromCore(msg!, other.key, tc.clock.now())).toThrow(/bad-mac/);
  });

  it('sends no tickle when a PATCH changes nothing', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: [] } });
    const sock = await udpSocket();
    const ss = await enrollSiteServer(tc, 'ts', { tickleAddress: `127.0.0.1:${sock.address().port}` });
    await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['hq'] } });
    await collect(sock, 150);
    await tc.call('PATCH', `/site-servers/${ss.id}`, { body: { sites: ['hq'] } });
    expect(await collect(sock, 150)).toEqual([]);
  });

  it('tickles a site server whose effective sites change because a site gains its subnet', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: [] } });
    const sock = await udpSocket();
    const ss = await enrollSiteServer(tc, 'ts', { address: '10.1.0.5/16', tickleAddress: `127.0.0.1:${sock.address().port}` });
    const got = nextMessage(sock, 2_000);
    await tc.call('PATCH', '/sites/hq', { body: { subnets: ['10.1.0.0/16'] } });
    const msg = await got;
    expect(msg).toBeDefined();
    expect(openFromCore(msg!, ss.key, tc.clock.now()).flags & TickleFlags.CONFIG).toBe(TickleFlags.CONFIG);
  });

  it('coalesces tickle requests made in one tick into one datagram, flags OR-ed', async () => {
    const tc = await startCore();
    const sock = await udpSocket();
    const ss = await enrollSiteServer(tc, 'ts', { tickleAddress: `127.0.0.1:${sock.address().port}` });
    await collect(sock, 100);
    tc.core.tickle([ss.id, ss.id, ss.id], TickleFlags.WORK);
    tc.core.tickle([ss.id, ss.id, ss.id], TickleFlags.WORK);
    tc.core.tickle([ss.id], TickleFlags.CONFIG);
    const got = await collect(sock, 300);
    expect(got).toHaveLength(1);
    expect(openFromCore(got[0]!, ss.key, tc.clock.now()).flags).toBe(TickleFlags.WORK | TickleFlags.CONFIG);
    // A later burst is a new datagram, with a fresh stamp.
    tc.core.tickle([ss.id], TickleFlags.WORK);
    const again = await collect(sock, 300);
    expect(again).toHaveLength(1);
    expect(again[0]!.equals(got[0]!)).toBe(false);
  });

  it('skips site servers without a tickle address, and unknown ids, without failing', async () => {
    const tc = await startCore();
    const silent = await enrollSiteServer(tc, 'polls');
    tc.core.tickle([silent.id, 'ss_unknown'], TickleFlags.WORK);
    await new Promise((r) => setTimeout(r, 100));
    expect((await tc.call('GET', '/health', { token: null })).status).toBe(200);
  });
});
