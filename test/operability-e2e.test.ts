// Metrics and log ids of a running all-in-one appliance, end to end: `outpost start` on a
// temp copy of configs/all-in-one.yaml (every port 0, data under a temp dir, logs at
// info, the agent's metrics listener on, proxyDHCP on 127.0.0.1 only, answering a UDP
// probe of the test). Work happens — a run on the local agent, a package staged and
// downloaded, a PXE boot on loopback (DISCOVER, the 4011 request, a TFTP fetch, the
// script), a tunnel through the gateway and a refused connection — and then:
//  - every service's /metrics (core, task server, package server, netboot, gateway,
//    agent) answers, with event-loop lag, and its counters moved;
//  - the run id is on log lines of the core, the task server and the agent; one boot id
//    is on netboot's DHCP, TFTP and HTTP lines and in the core's boot record; the package
//    id and the package server's name are on the core's and the package server's
//    staging lines.
import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { fileURLToPath } from 'node:url';
import { readConfigFile } from '@outpost/common';
import { MessageType, decodeDhcp, encodeClientArchs, encodeDhcp, fieldText, Op, Opt, text, type OptionEntry } from '@outpost/netboot';
import { tftpGet } from '@outpost/tftp';
import { loopbackConfig, metricTotal, openUdpProbe, parseMetrics, removeDir, tempDir, waitFor, type UdpProbe } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startOutpost, type Running } from '../appliance/test/helpers.js';

const ALL_IN_ONE = fileURLToPath(new URL('../configs/all-in-one.yaml', import.meta.url));
const MAC = '52:54:00:0e:2e:01';

interface Appliance {
  dir: string;
  url: string;
  token: string;
  outpost: Running;
}
type LogLine = Record<string, unknown> & { service?: string; msg?: string };

async function api<T>(a: Appliance, method: string, path: string, body?: unknown): Promise<T> {
  const res = await fetch(`${a.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${a.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const t = await res.text();
  if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${t}`);
  return (t ? JSON.parse(t) : undefined) as T;
}

/** The appliance's JSON log lines so far. */
function logLines(a: Appliance): LogLine[] {
  const out: LogLine[] = [];
  for (const l of a.outpost.stdout.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as LogLine);
    } catch {
      // a line still being written
    }
  }
  return out;
}

async function scrape(url: string): Promise<Map<string, number>> {
  const res = await fetch(url);
  expect(res.status, url).toBe(200);
  expect(res.headers.get('content-type'), url).toMatch(/^text\/plain/);
  return parseMetrics(await res.text());
}

/** A PXE client's DHCP request, as firmware sends it. */
function pxePacket(type: number, ciaddr = '0.0.0.0', ipxe = false): Buffer {
  const chaddr = Buffer.alloc(16);
  Buffer.from(MAC.split(':').map((h) => parseInt(h, 16))).copy(chaddr);
  const opts: OptionEntry[] = [
    [Opt.VENDOR_CLASS, text('PXEClient:Arch:00000:UNDI:002001')],
    [Opt.CLIENT_ARCH, encodeClientArchs([0])],
    ...(ipxe ? ([[Opt.USER_CLASS, text('iPXE')]] as OptionEntry[]) : []),
  ];
  return encodeDhcp(
    { op: Op.REQUEST, htype: 1, hlen: 6, hops: 0, xid: 0x0e2e0001, secs: 0, flags: 0x8000, ciaddr, yiaddr: '0.0.0.0', siaddr: '0.0.0.0', giaddr: '0.0.0.0', chaddr, sname: Buffer.alloc(64), file: Buffer.alloc(128) },
    type,
    opts,
    { maxMessageSize: 1500 },
  ).packet;
}

/** TLS to the gateway, then one CONNECT; resolves with the first answer bytes. */
function throughGateway(port: number, ca: string, target: string, cert?: { cert: string; key: string }): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port, ca, ...(cert ?? {}) }, () => s.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`));
    let got = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.includes('\r\n\r\n')) {
        s.destroy();
        resolve(got);
      }
    });
    s.on('error', reject);
    s.on('close', () => resolve(got));
  });
}

describe('metrics and log ids on a running all-in-one appliance', () => {
  let a: Appliance;
  let probe: UdpProbe;
  const urls: Record<'core' | 'taskServer' | 'packageServer' | 'netboot' | 'gateway' | 'agent', string> = { core: '', taskServer: '', packageServer: '', netboot: '', gateway: '', agent: '' };
  let netboot: { dhcp: number; pxe: number; tftp: number; http: string };
  let gatewayPort = 0;

  beforeAll(async () => {
    const dir = await tempDir('outpost-ops-');
    probe = await openUdpProbe();
    await mkdir(join(dir, 'loaders'));
    await writeFile(join(dir, 'loaders', 'undionly.kpxe'), Buffer.alloc(50_000, 9));
    const raw = await readConfigFile(ALL_IN_ONE);
    const config = loopbackConfig({ ...raw, log: { level: 'info' } }, 'http://127.0.0.1:8080') as Record<string, Record<string, unknown>>;
    config.agent = { ...config.agent, metrics: { enabled: true, host: '127.0.0.1', port: 0 } };
    // proxyDHCP bound to 127.0.0.1 only, replying to the test's probe: never the host's interfaces.
    config.netboot = {
      ...config.netboot,
      address: '127.0.0.1',
      serverAddress: '127.0.0.1',
      proxyDhcp: { enabled: true, optional: false, port: 0, pxePort: 0, clientPort: probe.port, broadcastAddress: '127.0.0.1', relayPort: probe.port, watchOtherServers: false },
      tftp: { address: '127.0.0.1', port: 0 },
      loaders: { dir: join(dir, 'loaders') },
      reportInterval: '200ms',
    };
    await mkdir(join(dir, 'configs'));
    await writeFile(join(dir, 'configs', 'test.json'), JSON.stringify(config, null, 2));
    const outpost = startOutpost(['--config', 'configs/test.json'], { cwd: dir });
    const url = await outpost.banner(30_000);
    a = { dir, url, token: (await readFile(join(dir, 'var', 'core', 'admin-token'), 'utf8')).trim(), outpost };
    urls.core = `${url}/metrics`;
    const servers = await waitFor(
      async () => {
        const s = await api<{ items: Array<{ services: { task?: { url: string }; package?: { url: string } } }> }>(a, 'GET', '/site-servers');
        const ts = s.items.find((x) => x.services.task);
        const ps = s.items.find((x) => x.services.package);
        return ts && ps && { ts: ts.services.task!.url, ps: ps.services.package!.url };
      },
      { timeoutMs: 20_000, what: 'the task and package servers to enroll' },
    );
    urls.taskServer = `${servers.ts}/metrics`;
    urls.packageServer = `${servers.ps}/metrics`;
    // The ports the other services bound, from their start lines.
    const started = await waitFor(
      () => {
        const lines = logLines(a);
        const nb = lines.find((l) => l.service === 'netboot' && l.msg === 'netboot started') as { http: string; tftp: number; ports: { dhcp: number; pxe: number } } | undefined;
        const gw = lines.find((l) => l.service === 'gateway' && l.msg === 'gateway started') as { port: number; metricsPort: number } | undefined;
        const ag = lines.find((l) => l.service === 'agent' && l.msg === 'metrics listening') as { port: number } | undefined;
        return nb && gw && ag && { nb, gw, ag };
      },
      { timeoutMs: 20_000, what: 'netboot, the gateway and the agent metrics listener to start' },
    );
    netboot = { dhcp: started.nb.ports.dhcp, pxe: started.nb.ports.pxe, tftp: started.nb.tftp, http: started.nb.http };
    urls.netboot = `${netboot.http}/metrics`;
    urls.gateway = `http://127.0.0.1:${started.gw.metricsPort}/metrics`;
    gatewayPort = started.gw.port;
    urls.agent = `http://127.0.0.1:${started.ag.port}/metrics`;
    await waitFor(async () => (await api<{ items: unknown[] }>(a, 'GET', '/agents')).items.length >= 1, { timeoutMs: 20_000, what: 'the local agent' });
    await api(a, 'POST', '/tasks', { name: 'hello', kind: 'command', program: process.execPath, args: ['-e', 'console.log("hello")'], timeout: '30s' });
    await api(a, 'POST', '/jobs', { name: 'say-hello', steps: [{ task: 'hello' }] });
  }, 90_000);

  afterAll(async () => {
    const stopped = await a?.outpost.stop('SIGINT', 20_000);
    await probe?.close();
    await removeDir(a?.dir);
    expect(stopped?.code).toBe(0);
  }, 40_000);

  it('every service serves /metrics; a run, a package, a PXE boot and gateway tunnels move their counters; ids tie the log lines together', async () => {
    const before = Object.fromEntries(await Promise.all(Object.entries(urls).map(async ([k, u]) => [k, await scrape(u)] as const))) as Record<keyof typeof urls, Map<string, number>>;
    for (const [name, m] of Object.entries(before)) {
      expect(m.has('nodejs_eventloop_lag_seconds'), name).toBe(true);
      expect(m.has('process_resident_memory_bytes'), name).toBe(true);
    }
    for (const s of ['core', 'task_server', 'package_server', 'netboot'] as const) {
      const key = s === 'task_server' ? 'taskServer' : s === 'package_server' ? 'packageServer' : s;
      expect(before[key].get(`outpost_${s}_level_db_bytes`), s).toBeGreaterThan(0);
    }

    // A run on the local agent: tickles core → task server → agent, events back.
    const agents = (await api<{ items: Array<{ id: string }> }>(a, 'GET', '/agents?limit=100')).items;
    const { id: runId } = await api<{ id: string }>(a, 'POST', '/jobs/say-hello/runs', { agents: agents.map((x) => x.id) });
    await waitFor(async () => (await api<{ state: string }>(a, 'GET', `/runs/${runId}`)).state === 'finished', { timeoutMs: 30_000, what: 'the run to finish' });

    // A package staged by the package server and downloaded once.
    const content = Buffer.alloc(256 * 1024, 3);
    const sha256 = createHash('sha256').update(content).digest('hex');
    const pkg = await api<{ id: string }>(a, 'POST', '/packages', { name: 'ops-demo', version: '1.0', files: [{ path: 'payload.bin', size: content.length, sha256 }] });
    const put = await fetch(`${a.url}/api/v1/packages/${pkg.id}/files/payload.bin?offset=0`, { method: 'PUT', headers: { authorization: `Bearer ${a.token}`, 'content-type': 'application/octet-stream' }, body: content });
    expect(put.status, await put.text()).toBeLessThan(300);
    await api(a, 'POST', `/packages/${pkg.id}/enable`, {});
    const codebase = await waitFor(
      async () => (await api<{ servers: Array<{ state: string; codebase?: string }> }>(a, 'GET', `/packages/${pkg.id}`)).servers.find((s) => s.state === 'ready')?.codebase,
      { timeoutMs: 30_000, what: 'the package to be ready' },
    );
    expect((await fetch(`${codebase}/payload.bin`)).status).toBe(200);

    // A PXE boot on loopback: DISCOVER → offer, the 4011 request → ACK (it ties
    // 127.0.0.1 to the MAC), the loader over TFTP, then iPXE's DISCOVER → offer of its
    // script URL (with the boot token), and the script over HTTP.
    await probe.send(pxePacket(MessageType.DISCOVER), netboot.dhcp);
    await probe.next(5_000);
    await probe.send(pxePacket(MessageType.REQUEST, '127.0.0.1'), netboot.pxe);
    await probe.next(5_000);
    const loader = await tftpGet({ host: '127.0.0.1', port: netboot.tftp, filename: 'undionly.kpxe' });
    expect(loader.data?.length).toBe(50_000);
    await probe.send(pxePacket(MessageType.DISCOVER, '0.0.0.0', true), netboot.dhcp);
    const ipxeOffer = decodeDhcp((await probe.next(5_000)).data);
    if (!ipxeOffer.ok) throw new Error(`iPXE offer: ${ipxeOffer.error}`);
    const scriptUrl = fieldText(ipxeOffer.message.file);
    expect(scriptUrl).toMatch(new RegExp(`^${netboot.http}/boot/${MAC.replace(/:/g, '-')}\\.ipxe\\?b=`));
    expect((await fetch(scriptUrl)).status).toBe(200);

    // Through the gateway: a tunnel to the core with the local agent's certificate, and a
    // connection without one (refused).
    const identity = JSON.parse(await readFile(join(a.dir, 'var', 'agent', 'identity.json'), 'utf8')) as { certificate: string; key: string };
    const ca = await readFile(join(a.dir, 'var', 'core', 'ca', 'ca.crt'), 'utf8');
    const target = new URL(a.url).host;
    expect(await throughGateway(gatewayPort, ca, target, { cert: identity.certificate, key: identity.key })).toContain('200');
    expect(await throughGateway(gatewayPort, ca, target)).toContain('GATEWAY_CERT_REQUIRED');

    const moved = (m: Map<string, number>, was: Map<string, number>, name: string, labels = ''): boolean => metricTotal(m, name, labels) > metricTotal(was, name, labels);
    const checks: Array<[keyof typeof urls, string, string?]> = [
      ['core', 'outpost_core_http_requests_total'],
      ['core', 'outpost_core_tickles_sent_total'],
      ['core', 'outpost_core_heartbeats_total'],
      ['taskServer', 'outpost_task_server_tickles_sent_total'],
      ['taskServer', 'outpost_task_server_core_tickles_accepted_total'],
      ['taskServer', 'outpost_task_server_events_stored_total'],
      ['taskServer', 'outpost_task_server_events_forwarded_total'],
      ['packageServer', 'outpost_package_server_staging_fetched_bytes_total'],
      ['packageServer', 'outpost_package_server_served_bytes_total'],
      ['packageServer', 'outpost_package_server_downloads_served_total', 'status="200"'],
      ['packageServer', 'outpost_package_server_http_request_duration_seconds_count', 'route="/packages/:id/*"'],
      ['netboot', 'outpost_netboot_dhcp_offers_total'],
      ['netboot', 'outpost_netboot_dhcp_acks_total', 'port="pxe"'],
      ['netboot', 'outpost_netboot_tftp_transfers_total', 'outcome="completed"'],
      ['netboot', 'outpost_netboot_tftp_bytes_total', 'direction="sent"'],
      ['netboot', 'outpost_netboot_http_requests_total', 'route="/boot/:mac.ipxe"'],
      ['gateway', 'outpost_gateway_tunnels_total'],
      ['gateway', 'outpost_gateway_handshakes_total'],
      ['gateway', 'outpost_gateway_refusals_total', 'code="GATEWAY_CERT_REQUIRED"'],
      ['agent', 'outpost_agent_work_fetches_total', 'outcome="ok"'],
      ['agent', 'outpost_agent_runs_total', 'phase="finished"'],
      ['agent', 'outpost_agent_status_events_reported_total'],
    ];
    let stuck: string[] = [];
    await waitFor(
      async () => {
        const now = Object.fromEntries(await Promise.all(Object.entries(urls).map(async ([k, u]) => [k, await scrape(u)] as const))) as Record<keyof typeof urls, Map<string, number>>;
        stuck = checks.filter(([svc, name, labels]) => !moved(now[svc], before[svc], name, labels)).map(([svc, name, labels]) => `${svc} ${name}${labels ? `{${labels}}` : ''}`);
        return stuck.length === 0;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the counters to move' },
    ).catch((err: unknown) => {
      throw new Error(`${(err as Error).message}; still not moved: ${stuck.join(', ')}`);
    });

    // The run id on the core's, the task server's and the agent's lines.
    await waitFor(() => ['core', 'task-server', 'agent'].every((s) => logLines(a).some((l) => l.service === s && l.run === runId)), { timeoutMs: 10_000, what: 'the run id in every service' });
    const runLines = logLines(a).filter((l) => l.run === runId);
    expect(runLines.find((l) => l.service === 'core' && l.msg === 'run created')).toMatchObject({ job: 'say-hello', tasks: ['hello'] });
    expect(runLines.find((l) => l.service === 'task-server' && l.msg === 'run received')).toMatchObject({ job: 'say-hello', tasks: ['hello'] });
    expect(runLines.filter((l) => l.service === 'agent').map((l) => l.msg)).toEqual(expect.arrayContaining(['step started', 'step finished', 'run finished']));

    // One boot id on netboot's DHCP, TFTP and HTTP lines, and in the core's boot record.
    const bootLines = logLines(a).filter((l) => l.service === 'netboot' && l.msg === 'boot event' && l.mac === MAC);
    const bootIds = new Set(bootLines.map((l) => l.boot));
    expect(bootIds.size).toBe(1);
    const [bootId] = [...bootIds] as string[];
    expect(new Set(bootLines.map((l) => l.part))).toEqual(new Set(['dhcp', 'tftp', 'http']));
    const boots = await waitFor(
      async () => {
        const r = await api<{ items: Array<{ id: string; netbootIds?: string[]; handedOff: boolean }> }>(a, 'GET', `/boot/boots?mac=${MAC}`);
        return r.items.find((b) => b.handedOff) && r.items;
      },
      { timeoutMs: 10_000, what: 'the boot to reach the core' },
    );
    expect(boots).toHaveLength(1);
    expect(boots[0]!.netbootIds).toEqual([bootId]);
    expect(logLines(a).find((l) => l.service === 'core' && l.msg === 'boot started')).toMatchObject({ boot: boots[0]!.id, netbootBoot: bootId, mac: MAC });

    // The package id and the package server's name on both sides of the staging.
    const staged = logLines(a).find((l) => l.service === 'package-server' && l.msg === 'package staged' && l.package === pkg.id);
    expect(staged).toBeDefined();
    const released = logLines(a).find((l) => l.service === 'core' && l.msg === 'staging released' && l.package === pkg.id);
    const reported = logLines(a).find((l) => l.service === 'core' && l.msg === 'codebase reported' && l.package === pkg.id);
    expect(released?.server).toBe(staged!.name);
    expect(reported).toMatchObject({ server: staged!.name, serverId: released!.serverId });
  }, 120_000);
});
