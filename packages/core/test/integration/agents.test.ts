import { afterEach, describe, expect, it } from 'vitest';
import { DatagramType, encodeDatagram } from '@outpost/common';
import { cleanup, enrollAgent, heartbeat, inspectDb, nextMessage, openFromCore, sendTo, startCore, udpSocket, type Enrolled, type TestCore } from './harness.js';

afterEach(cleanup);

const view = async (tc: TestCore, id: string) => (await tc.call('GET', `/agents/${id}`)).body;

async function udpHeartbeat(tc: TestCore, a: Enrolled, payload: unknown = {}) {
  const sock = await udpSocket();
  const reply = nextMessage(sock, 2_000);
  await sendTo(sock, tc, heartbeat(tc, a, payload));
  return reply;
}

describe('agents', () => {
  it('marks an agent poll-only after an HTTP heartbeat, with lastContactVia http', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    tc.clock.advance(1_000);
    const r = await tc.call('POST', `/agents/${a.id}/heartbeat`, { token: a.credential, body: { configSerial: 'abc' } });
    expect(r.status).toBe(200);
    expect(r.body.heartbeatIntervalMs).toBe(5 * 60_000);
    const v = await view(tc, a.id);
    expect(v).toMatchObject({ state: 'poll-only', lastContactVia: 'http', reportedConfigSerial: 'abc' });
    expect(r.body.configSerial).toBe(v.configSerial);
    expect(v.lastContact).toBe(new Date(tc.clock.now()).toISOString());
  });

  it('acks a signed UDP heartbeat with the current serial, and marks the agent online', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    const msg = await udpHeartbeat(tc, a, { s: 'old-serial' });
    expect(msg, 'no ack').toBeDefined();
    const d = openFromCore(msg!, a.key, tc.clock.now());
    expect(d.type).toBe(DatagramType.HEARTBEAT_ACK);
    expect(d.sender).toBe('core');
    const v = await view(tc, a.id);
    expect(JSON.parse(d.payload.toString())).toEqual({ a: a.id, s: v.configSerial });
    expect(v).toMatchObject({ state: 'online', lastContactVia: 'udp', reportedConfigSerial: 'old-serial' });
    const stats = (await tc.call('GET', '/stats')).body;
    expect(stats.datagrams).toMatchObject({ received: 1, accepted: 1 });
    expect(stats.agents).toMatchObject({ total: 1, online: 1 });
  });

  it('acks a heartbeat with an empty payload', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc');
    const sock = await udpSocket();
    const reply = nextMessage(sock, 2_000);
    await sendTo(sock, tc, encodeDatagram({ type: DatagramType.HEARTBEAT, flags: 0, timestamp: tc.clock.now(), seq: 1, sender: a.id, payload: Buffer.alloc(0) }, a.key));
    expect(await reply).toBeDefined();
  });

  it('goes online → poll-only → offline as the clock passes heartbeatInterval × offlineAfterMissed', async () => {
    const tc = await startCore({ config: { agents: { heartbeatInterval: '1m', offlineAfterMissed: 3 } } });
    const a = await enrollAgent(tc, 'pc');
    expect(await udpHeartbeat(tc, a)).toBeDefined();
    expect((await view(tc, a.id)).state).toBe('online');
    tc.clock.advance(3 * 60_000);
    expect((await view(tc, a.id)).state).toBe('online');
    tc.clock.advance(1);
    // The admin's own reads do not count as the agent's contact.
    expect((await view(tc, a.id)).state).toBe('offline');
    await tc.call('POST', `/agents/${a.id}/heartbeat`, { token: a.credential, body: {} });
    expect((await view(tc, a.id)).state).toBe('poll-only');
    tc.clock.advance(3 * 60_000 + 1);
    expect((await view(tc, a.id)).state).toBe('offline');
  });

  it('updates the IPs reported with an HTTP heartbeat, and with them the sites', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const a = await enrollAgent(tc, 'pc', { ips: ['192.168.1.5/24'] });
    expect((await view(tc, a.id)).sites).toEqual([]);
    await tc.call('POST', `/agents/${a.id}/heartbeat`, { token: a.credential, body: { ips: ['10.1.7.7/16'] } });
    expect((await view(tc, a.id)).sites).toEqual(['hq']);
  });

  it('lets an agent update its own record, and keeps the MACs normalised', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc', { macs: ['52-54-00-AA-BB-CC'] });
    expect((await view(tc, a.id)).macs).toEqual(['52:54:00:aa:bb:cc']);
    const r = await tc.call('PATCH', `/agents/${a.id}`, { token: a.credential, body: { name: 'renamed', macs: ['52:54:00:00:00:01'], os: 'windows' } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'renamed', macs: ['52:54:00:00:00:01'], os: 'windows' });
  });

  it('filters the list by state, site and text', async () => {
    const tc = await startCore();
    await tc.call('POST', '/sites', { body: { name: 'hq', subnets: ['10.1.0.0/16'] } });
    const udp = await enrollAgent(tc, 'alpha-desk', { ips: ['10.1.0.10/16'], macs: ['52:54:00:00:00:aa'] });
    const http = await enrollAgent(tc, 'bravo-laptop', { ips: ['10.1.0.11/16'] });
    const off = await enrollAgent(tc, 'charlie-desk', { ips: ['192.168.0.2/24'] });
    tc.clock.advance(60 * 60_000);
    expect(await udpHeartbeat(tc, udp)).toBeDefined();
    await tc.call('POST', `/agents/${http.id}/heartbeat`, { token: http.credential, body: {} });
    const ids = async (q: string) => ((await tc.call('GET', `/agents${q}`)).body.items as { id: string }[]).map((i) => i.id).sort();
    expect(await ids('?state=online')).toEqual([udp.id]);
    expect(await ids('?state=poll-only')).toEqual([http.id]);
    expect(await ids('?state=offline')).toEqual([off.id]);
    expect(await ids('?site=hq')).toEqual([udp.id, http.id].sort());
    expect(await ids('?q=DESK')).toEqual([udp.id, off.id].sort());
    expect(await ids('?q=00:aa')).toEqual([udp.id]);
    expect(await ids('?q=192.168')).toEqual([off.id]);
    expect(await ids('?site=hq&state=online')).toEqual([udp.id]);
    expect(await ids('?site=nowhere')).toEqual([]);
  });

  it('pages the list with limit and after → next, visiting every agent once', async () => {
    const tc = await startCore();
    const token = (await tc.call('POST', '/tokens', { body: { for: 'agent', uses: 7 } })).body.token;
    const all = [];
    for (let i = 0; i < 7; i++) all.push((await enrollAgent(tc, `pc-${i}`, {}, token)).id);
    const seen: string[] = [];
    let after: string | undefined;
    let pages = 0;
    for (;;) {
      const r = await tc.call('GET', `/agents?limit=3${after ? `&after=${after}` : ''}`);
      expect(r.status).toBe(200);
      pages++;
      seen.push(...(r.body.items as { id: string }[]).map((i) => i.id));
      if (!r.body.next) break;
      expect(r.body.items).toHaveLength(3);
      after = r.body.next;
    }
    expect(pages).toBe(3);
    expect(seen).toEqual([...all].sort());
    // An exact multiple of the limit gives no dangling next.
    const six = await tc.call('GET', `/agents?limit=7`);
    expect(six.body.next).toBeUndefined();
    // Agents that come and go after a listing are in (or out of) the next one.
    const late = (await enrollAgent(tc, 'pc-late', {}, (await tc.call('POST', '/tokens', { body: { for: 'agent' } })).body.token)).id;
    expect((await tc.call('DELETE', `/agents/${all[0]}`)).status).toBe(204);
    const again = (await tc.call('GET', '/agents?limit=100')).body.items.map((i: { id: string }) => i.id);
    expect(again).toEqual([...all.slice(1), late].sort());
    expect((await tc.call('GET', `/agents?limit=100&after=${[...all].sort()[6]}`)).body.items.map((i: { id: string }) => i.id)).toEqual(
      [...all.slice(1), late].sort().filter((id) => id > [...all].sort()[6]!),
    );
  });

  it('deletes an agent: gone from the list, 404 afterwards', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc', { macs: ['52:54:00:00:00:01'] });
    expect((await tc.call('DELETE', `/agents/${a.id}`)).status).toBe(204);
    const r = await tc.call('GET', `/agents/${a.id}`);
    expect(r.status).toBe(404);
    expect(r.body.error.code).toBe('CORE_AGENT_NOT_FOUND');
    expect((await tc.call('GET', '/agents')).body.items).toEqual([]);
  });
});

describe('agent records and their MAC index', () => {
  it('keeps the MAC index exact when one agent changes its MACs many times concurrently', async () => {
    const tc = await startCore();
    const a = await enrollAgent(tc, 'pc', { macs: ['52:54:00:00:00:00'] });
    const results = await Promise.all(
      Array.from({ length: 12 }, (_, i) => tc.call('PATCH', `/agents/${a.id}`, { token: a.credential, body: { macs: [`52:54:00:00:01:${String(i).padStart(2, '0')}`] } })),
    );
    expect(results.every((r) => r.status === 200)).toBe(true);
    const final = (await tc.call('GET', `/agents/${a.id}`)).body.macs;
    await tc.stop();
    const { agents, problems } = await inspectDb(tc.dir);
    expect(problems).toEqual([]);
    expect(agents.get(a.id)?.macs).toEqual(final);
  });
});
