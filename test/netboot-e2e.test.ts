// The end-to-end proof of the network boot service (needs root; OUTPOST_E2E=required
// makes a missing prerequisite a failure). In network namespaces: a "corporate" host
// running dnsmasq as the site's DHCP server (addresses only), the Outpost host (a core
// with a boot image package and two predefined computers, and netboot as proxyDHCP +
// 4011 + TFTP + HTTP), and a tap on the same bridge for QEMU. A SeaBIOS VM (iPXE NIC
// ROM) and an OVMF VM (UEFI PXE → TFTP snponly.efi → iPXE) boot from the network; each
// must get its address from dnsmasq, its boot file from our proxyDHCP, fetch its
// per-machine script and the image's file over HTTP, and be recorded by the core as a
// predefined computer. Then full DHCP mode is checked with real clients (udhcpc, nmap)
// and the boot files are fetched over TFTP with atftp and curl. Nothing leaves the
// namespaces; everything is torn down in afterAll.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { copyFile, readFile, writeFile, chmod } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { e2eGate, removeDir, tempDir } from '@outpost/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLab } from '../scripts/netboot/lab.mjs';

interface Lab {
  pxe: string;
  corp: string;
  serverAddress: string;
  destroy(): void;
}
interface TimelineEvent {
  type: string;
  detail?: Record<string, string | number | boolean>;
  offsetMs: number;
}
interface Boot {
  kind: string;
  handedOff: boolean;
  image?: string;
  job?: string;
  events: TimelineEvent[];
}
interface Machine {
  mac: string;
  boots: Boot[];
  computer: { kind: string; boots: number; image?: string; job?: string };
}

const FILES = {
  rom: '/usr/lib/ipxe/qemu/efi-e1000.rom',
  snponly: '/usr/lib/ipxe/snponly.efi',
  undionly: '/usr/lib/ipxe/undionly.kpxe',
  ovmfCode: '/usr/share/OVMF/OVMF_CODE_4M.fd',
  ovmfVars: '/usr/share/OVMF/OVMF_VARS_4M.fd',
};

function gate(): { run: boolean } {
  const g = e2eGate('netboot e2e (QEMU)', { root: true, commands: ['ip', 'dnsmasq', 'qemu-system-x86_64', 'udhcpc', 'nmap', 'atftp', 'curl'] });
  if (!g.run) return g;
  const missing = Object.values(FILES).filter((f) => !existsSync(f));
  if (missing.length === 0) return g;
  const reason = `netboot e2e (QEMU): needs ${missing.join(', ')} (apt ipxe-qemu ipxe ovmf)`;
  if (process.env.OUTPOST_E2E === 'required') throw new Error(`${reason} (OUTPOST_E2E=required)`);
  console.warn(`SKIP ${reason}`);
  return { run: false };
}
const g = gate();

const BIOS_MAC = '52:54:00:0b:00:01';
const UEFI_MAC = '52:54:00:0e:00:01';
const HTTP_MAC = '52:54:00:16:00:01';
const QEMU_LIMIT_MS = 120_000;

const children = new Set<ChildProcess>();
function start(cmd: string, args: string[], log?: string[]): ChildProcess {
  const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(p);
  p.on('exit', () => children.delete(p));
  if (log) {
    p.stdout?.on('data', (d: Buffer) => log.push(d.toString()));
    p.stderr?.on('data', (d: Buffer) => log.push(d.toString()));
  }
  return p;
}
async function kill(p: ChildProcess | undefined): Promise<void> {
  if (!p || p.exitCode !== null || p.signalCode !== null) return;
  const gone = new Promise<void>((resolve) => p.once('exit', () => resolve()));
  p.kill('SIGTERM');
  const t = setTimeout(() => p.kill('SIGKILL'), 3_000);
  await gone;
  clearTimeout(t);
}
const inNs = (ns: string, argv: string[]): [string, string[]] => ['ip', ['netns', 'exec', ns, ...argv]];

/** Runs a command to completion (bounded) and returns its output. */
function runIn(ns: string, argv: string[], timeoutMs = 30_000): { out: string; status: number | null } {
  const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { timeout: timeoutMs, encoding: 'utf8' });
  return { out: `${r.stdout ?? ''}${r.stderr ?? ''}`, status: r.status };
}

describe.skipIf(!g.run)('netboot end to end (namespaces, dnsmasq, QEMU)', () => {
  let dir = '';
  let lab: Lab | undefined;
  let host: ChildProcess | undefined;
  let dnsmasq: ChildProcess | undefined;
  const dnsmasqLog: string[] = [];
  const hostErr: string[] = [];
  let machines: Machine[] = [];
  let ready: { dhcp: { running: boolean } } | undefined;

  beforeAll(async () => {
    dir = await tempDir('outpost-netboot-e2e-');
    lab = createLab(`nbe${process.pid % 100000}`) as Lab;
    const l = lab;
    dnsmasq = start(
      ...inNs(l.corp, ['dnsmasq', '--no-daemon', '--port=0', '--conf-file=/dev/null', '--interface=vc', '--bind-interfaces', '--dhcp-range=192.168.50.100,192.168.50.150,1h', `--dhcp-leasefile=${join(dir, 'leases')}`, '--pid-file=', '--log-dhcp', '--user=root', '--group=root']),
      dnsmasqLog,
    );
    host = start(...inNs(l.pxe, [process.execPath, join(import.meta.dirname, 'fixtures/netboot-host.mjs'), JSON.stringify({ dir, macs: [BIOS_MAC, UEFI_MAC, HTTP_MAC], serverAddress: l.serverAddress })]));
    host.stderr?.on('data', (d: Buffer) => hostErr.push(d.toString()));
    const lines = createInterface({ input: host.stdout! });
    const readyP = new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`netboot host not ready in 30 s: ${hostErr.join('')}`)), 30_000);
      lines.on('line', (line) => {
        const msg = JSON.parse(line) as { ready?: { dhcp: { running: boolean } }; machines?: Machine[] };
        if (msg.ready) {
          ready = msg.ready;
          clearTimeout(t);
          resolve();
        }
        if (msg.machines) machines = msg.machines;
      });
      host!.once('exit', (code) => reject(new Error(`netboot host exited (${code}): ${hostErr.join('')}`)));
    });
    await readyP;
  }, 60_000);

  afterAll(async () => {
    for (const c of [...children]) await kill(c);
    lab?.destroy();
    if (dir) await removeDir(dir);
  }, 30_000);

  const machine = (mac: string): Machine | undefined => machines.find((m) => m.mac === mac);
  /** Waits (bounded) until the machine's newest boot fetched the image's file over HTTP. */
  async function bootedImage(mac: string, vm: ChildProcess, limitMs: number): Promise<Boot> {
    const deadline = Date.now() + limitMs;
    while (Date.now() < deadline) {
      const b = machine(mac)?.boots.find((x) => x.events.some((e) => e.type === 'http' && e.detail?.path === 'hello.txt'));
      if (b) return b;
      if (vm.exitCode !== null) throw new Error(`QEMU exited (${vm.exitCode}) before the boot finished`);
      await new Promise((r) => setTimeout(r, 250));
    }
    throw new Error(`no boot of ${mac} fetched hello.txt in ${limitMs} ms; timeline: ${JSON.stringify(machine(mac)?.boots)}`);
  }

  function qemu(mac: string, uefiVars?: string, httpBoot = false): ChildProcess {
    const args = ['qemu-system-x86_64', '-accel', 'tcg', '-m', uefiVars ? '512' : '256', '-display', 'none', '-serial', 'none', '-monitor', 'none', '-no-reboot', '-boot', 'n'];
    if (uefiVars) args.push('-drive', `if=pflash,format=raw,readonly=on,file=${FILES.ovmfCode}`, '-drive', `if=pflash,format=raw,file=${uefiVars}`);
    // UEFI HTTP boot: OVMF's PXE boot options off (fw_cfg, edk2 OvmfPkg/RUNTIME_CONFIG.md)
    // and no IPv6, so the NIC's only boot option is "UEFI HTTPv4".
    if (httpBoot) for (const k of ['IPv4PXESupport', 'IPv6PXESupport', 'IPv6Support']) args.push('-fw_cfg', `name=opt/org.tianocore/${k},string=no`);
    // BIOS: the iPXE ROM of the e1000. UEFI: OVMF's own virtio-net driver and PXE stack
    // (no option ROM), so the firmware's PXE, not an iPXE in the ROM, does the first DHCP.
    const nic = uefiVars ? `virtio-net-pci,netdev=n0,mac=${mac},romfile=,bootindex=1` : `e1000,netdev=n0,mac=${mac},romfile=${FILES.rom},bootindex=1`;
    args.push('-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no', '-device', nic);
    const vm = start(...inNs(lab!.pxe, args));
    const t = setTimeout(() => vm.kill('SIGKILL'), QEMU_LIMIT_MS);
    vm.once('exit', () => clearTimeout(t));
    return vm;
  }

  function expectPredefinedBoot(mac: string, b: Boot): void {
    const types = b.events.map((e) => e.type);
    // Boot instructions from our proxyDHCP, then the per-machine script, then the image over HTTP.
    expect(types).toContain('discover');
    expect(types).toContain('offer');
    expect(types.indexOf('offer')).toBeLessThan(types.indexOf('script'));
    expect(b.events.find((e) => e.type === 'script')?.detail).toMatchObject({ kind: 'predefined', image: 'e2e', job: 'e2e-job', source: 'core' });
    expect(b.events.some((e) => e.type === 'http' && e.detail?.path === 'boot.ipxe')).toBe(true);
    expect(b).toMatchObject({ kind: 'predefined', image: 'e2e', job: 'e2e-job', handedOff: true });
    // The address came from the corporate DHCP server (dnsmasq), not from us.
    expect(dnsmasqLog.join('')).toMatch(new RegExp(`DHCPACK\\(vc\\) 192\\.168\\.50\\.\\d+ ${mac}`));
    expect(machine(mac)?.computer).toMatchObject({ kind: 'predefined', image: 'e2e', job: 'e2e-job' });
  }

  it('proxyDHCP is running on 67/4011 inside the namespace', () => {
    expect(ready?.dhcp.running).toBe(true);
  });

  it('a BIOS VM (SeaBIOS + iPXE ROM) gets its address from dnsmasq, boot instructions from our proxyDHCP, and its per-machine script and image over HTTP', async () => {
    const vm = qemu(BIOS_MAC);
    try {
      const b = await bootedImage(BIOS_MAC, vm, QEMU_LIMIT_MS - 5_000);
      expectPredefinedBoot(BIOS_MAC, b);
      expect(b.events.find((e) => e.type === 'discover')?.detail).toMatchObject({ arch: 0, ipxe: true });
    } finally {
      await kill(vm);
    }
  }, QEMU_LIMIT_MS + 10_000);

  it('a UEFI VM (OVMF) takes snponly.efi over TFTP from our proxy offer, chains to iPXE and boots its image', async () => {
    const vars = join(dir, 'OVMF_VARS.fd');
    await copyFile(FILES.ovmfVars, vars);
    const vm = qemu(UEFI_MAC, vars);
    try {
      const b = await bootedImage(UEFI_MAC, vm, QEMU_LIMIT_MS - 5_000);
      expectPredefinedBoot(UEFI_MAC, b);
      const m = machine(UEFI_MAC)!;
      const all = m.boots.flatMap((x) => x.events);
      expect(all.some((e) => e.type === 'discover' && e.detail?.arch === 7 && e.detail.ipxe === false), JSON.stringify(m.boots)).toBe(true);
      expect(all.some((e) => e.type === 'tftp-done' && e.detail?.file === 'snponly.efi')).toBe(true);
    } finally {
      await kill(vm);
    }
  }, QEMU_LIMIT_MS + 10_000);

  it('a UEFI HTTP boot VM (OVMF, HTTPClient, arch 16) takes a loader URL from our proxy offer, fetches it over HTTP, chains to iPXE and boots its image', async () => {
    const vars = join(dir, 'OVMF_VARS_HTTP.fd');
    await copyFile(FILES.ovmfVars, vars);
    const vm = qemu(HTTP_MAC, vars, true);
    try {
      const b = await bootedImage(HTTP_MAC, vm, QEMU_LIMIT_MS - 5_000);
      expectPredefinedBoot(HTTP_MAC, b);
      const m = machine(HTTP_MAC)!;
      const all = m.boots.flatMap((x) => x.events);
      // The firmware's own DISCOVER was an HTTP boot one, and it never asked TFTP for anything.
      expect(all.some((e) => e.type === 'discover' && e.detail?.arch === 16 && String(e.detail.vendor).startsWith('HTTPClient') && e.detail.ipxe === false), JSON.stringify(m.boots)).toBe(true);
      expect(all.some((e) => e.type === 'offer' && String(e.detail?.file).endsWith('/loaders/snponly.efi'))).toBe(true);
      expect(all.some((e) => e.type.startsWith('tftp'))).toBe(false);
    } finally {
      await kill(vm);
    }
  }, QEMU_LIMIT_MS + 10_000);

  it('real TFTP clients (atftp, curl) fetch the boot files from the netboot host', async () => {
    const l = lab!;
    const got = join(dir, 'undionly.kpxe');
    const a = runIn(l.corp, ['atftp', '--option', 'blksize 1468', '-g', '-r', 'undionly.kpxe', '-l', got, l.serverAddress]);
    expect(a.status, a.out).toBe(0);
    expect((await readFile(got)).equals(await readFile(FILES.undionly))).toBe(true);
    const c = runIn(l.corp, ['curl', '-sS', '--tftp-blksize', '1468', '-o', join(dir, 'snponly.efi'), `tftp://${l.serverAddress}/snponly.efi`]);
    expect(c.status, c.out).toBe(0);
    expect((await readFile(join(dir, 'snponly.efi'))).equals(await readFile(FILES.snponly))).toBe(true);
  });
});

describe.skipIf(!g.run)('netboot full DHCP mode with real clients (udhcpc, nmap)', () => {
  let dir = '';
  let lab: Lab | undefined;
  let host: ChildProcess | undefined;
  const hostErr: string[] = [];

  beforeAll(async () => {
    dir = await tempDir('outpost-netboot-dhcp-');
    lab = createLab(`nbd${process.pid % 100000}`, { tap: false }) as Lab;
    host = start(...inNs(lab.pxe, [process.execPath, join(import.meta.dirname, 'fixtures/netboot-host.mjs'), JSON.stringify({ dir, macs: [], serverAddress: lab.serverAddress, dhcp: { enabled: true, rangeStart: '192.168.50.200', rangeEnd: '192.168.50.202', router: '192.168.50.2', leaseTime: '10m' } })]));
    host.stderr?.on('data', (d: Buffer) => hostErr.push(d.toString()));
    const lines = createInterface({ input: host.stdout! });
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`netboot host not ready: ${hostErr.join('')}`)), 30_000);
      lines.on('line', (line) => {
        if (line.startsWith('{"ready"')) {
          clearTimeout(t);
          resolve();
        }
      });
    });
  }, 60_000);

  afterAll(async () => {
    for (const c of [...children]) await kill(c);
    lab?.destroy();
    if (dir) await removeDir(dir);
  }, 30_000);

  it('udhcpc leases an address from the pool, with the boot file and next-server for a PXE vendor class', async () => {
    const script = join(dir, 'udhcpc.sh');
    await writeFile(script, `#!/bin/sh\necho "$1 ip=$ip mask=$subnet router=$router siaddr=$siaddr boot_file=$boot_file lease=$lease" >> ${join(dir, 'udhcpc.out')}\n`);
    await chmod(script, 0o755);
    const r = runIn(lab!.corp, ['udhcpc', '-i', 'vc', '-n', '-q', '-f', '-t', '5', '-T', '1', '-s', script, '-V', 'PXEClient:Arch:00000:UNDI:002001', '-x', '93:0000']);
    expect(r.status, r.out).toBe(0);
    const out = await readFile(join(dir, 'udhcpc.out'), 'utf8');
    expect(out).toMatch(/bound ip=192\.168\.50\.20[0-2] mask=255\.255\.255\.0 router=192\.168\.50\.2 siaddr=192\.168\.50\.2 boot_file=undionly\.kpxe lease=600/);
  });

  it('nmap broadcast-dhcp-discover sees our offer from the pool', () => {
    const r = runIn(lab!.corp, ['nmap', '-e', 'vc', '--script', 'broadcast-dhcp-discover', '--script-args', 'broadcast-dhcp-discover.timeout=3s']);
    expect(r.out).toMatch(/IP Offered: 192\.168\.50\.20[0-2]/);
    expect(r.out).toMatch(/Server Identifier: 192\.168\.50\.2\b/);
  });
});
