import { describe, expect, it } from 'vitest';
import { buildReply, decodeDhcp, fieldText, LoaderTable, MessageType, Opt, planBoot, pxeBootItem, readIp, replyDestination, withBootToken, type ResponderSettings } from '../src/index.js';
import { clientPacket } from './helpers.js';

const settings = (over: Partial<ResponderSettings> = {}): ResponderSettings => ({
  serverAddress: '10.0.0.2',
  httpBase: 'http://10.0.0.2:8082',
  loaders: new LoaderTable({}),
  option43: 'use-bootfile',
  option43ByVendor: [],
  option43ByMac: new Map(),
  ...over,
});
const decode = (p: Buffer) => {
  const r = decodeDhcp(p);
  if (!r.ok) throw new Error(r.error);
  return r.message;
};
const guid = Buffer.concat([Buffer.from([0]), Buffer.alloc(16, 0xab)]);

describe('boot file by architecture (option 93)', () => {
  it.each([
    [0, 'undionly.kpxe'],
    [7, 'snponly.efi'],
    [9, 'snponly.efi'],
    [11, 'ipxe-arm64.efi'],
  ])('arch %i gets %s over TFTP', (arch, file) => {
    const r = planBoot(decode(clientPacket({ vendor: `PXEClient:Arch:${String(arch).padStart(5, '0')}`, arch })), settings());
    expect(r.ok && r.request.bootFile).toBe(file);
  });
  it('UEFI HTTP boot (16) gets an http:// URL', () => {
    const r = planBoot(decode(clientPacket({ vendor: 'HTTPClient:Arch:00016', arch: 16 })), settings());
    expect(r.ok && r.request.bootFile).toBe('http://10.0.0.2:8082/loaders/snponly.efi');
  });
  it('iPXE (option 77) gets its per-machine script URL instead, so nothing loops', () => {
    const r = planBoot(decode(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, ipxe: true, mac: 'aa:bb:cc:00:11:22' })), settings());
    expect(r.ok && r.request).toMatchObject({ script: true, bootFile: 'http://10.0.0.2:8082/boot/aa-bb-cc-00-11-22.ipxe' });
  });
  it("the answered iPXE request's script URL carries the boot token; a loader path does not, and it still fits the file field", () => {
    const token = 'abcdefghijklmnopqrstuv';
    const r = planBoot(decode(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, ipxe: true, mac: 'aa:bb:cc:00:11:22' })), settings());
    if (!r.ok) throw new Error(r.reason);
    const answered = withBootToken(r.request, 'http://10.0.0.2:8082', () => token);
    expect(answered.bootFile).toBe(`http://10.0.0.2:8082/boot/aa-bb-cc-00-11-22.ipxe?b=${token}`);
    expect(fieldText(decode(buildReply(decode(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0, ipxe: true })), MessageType.OFFER, settings(), { boot: answered }).packet).file)).toBe(answered.bootFile);
    const rom = planBoot(decode(clientPacket({ vendor: 'PXEClient:Arch:00000', arch: 0 })), settings());
    if (!rom.ok) throw new Error(rom.reason);
    expect(withBootToken(rom.request, 'http://10.0.0.2:8082', () => token).bootFile).toBe('undionly.kpxe');
  });
  it('ignores non-PXE clients and archs we have no loader for', () => {
    expect(planBoot(decode(clientPacket({ vendor: 'MSFT 5.0' })), settings())).toEqual({ ok: false, reason: 'not-pxe' });
    expect(planBoot(decode(clientPacket({})), settings())).toEqual({ ok: false, reason: 'not-pxe' });
    expect(planBoot(decode(clientPacket({ vendor: 'PXEClient:Arch:00041', arch: 41 })), settings())).toEqual({ ok: false, reason: 'unknown-arch' });
    expect(planBoot(decode(clientPacket({ vendor: 'PXEClient:Arch:00007', arch: 7 })), settings({ loaders: new LoaderTable({ '7': 'custom.efi' }) }))).toMatchObject({ ok: true, request: { bootFile: 'custom.efi' } });
  });
});

describe('proxy replies (RFC 2131/4578, PXE 2.1)', () => {
  const req = decode(clientPacket({ vendor: 'PXEClient:Arch:00007:UNDI:003001', arch: 7, guid, xid: 0xabcdef01, flags: 0x8000 }));
  const plan = planBoot(req, settings());
  if (!plan.ok) throw new Error('plan');

  it('echoes xid, chaddr, flags and option 97; option 54 and siaddr are ours; no address; option 60 PXEClient; 43 = {6: 8}', () => {
    const reply = decode(buildReply(req, MessageType.OFFER, settings(), { boot: plan.request }).packet);
    expect(reply).toMatchObject({ op: 2, xid: 0xabcdef01, flags: 0x8000, yiaddr: '0.0.0.0', siaddr: '10.0.0.2', type: MessageType.OFFER });
    expect(reply.chaddr.equals(req.chaddr)).toBe(true);
    expect(readIp(reply.options.get(Opt.SERVER_ID))).toBe('10.0.0.2');
    expect(reply.options.get(Opt.VENDOR_CLASS)?.toString()).toBe('PXEClient');
    expect(reply.options.get(Opt.CLIENT_GUID)?.equals(guid)).toBe(true);
    expect([...(reply.options.get(Opt.VENDOR_SPECIFIC) ?? [])]).toEqual([6, 1, 8, 255]);
    expect(fieldText(reply.file)).toBe('snponly.efi');
  });
  it('leaves option 43 out for firmware set to the 4011 path (per vendor class, per MAC)', () => {
    for (const s of [settings({ option43ByVendor: [['PXEClient:Arch:00007', 'boot-server']] }), settings({ option43ByMac: new Map([['52:54:00:12:34:56', 'boot-server']]) })]) {
      const reply = decode(buildReply(req, MessageType.OFFER, s, { boot: plan.request }).packet);
      expect(reply.options.has(Opt.VENDOR_SPECIFIC)).toBe(false);
    }
  });
  it('echoes the boot item (43.71) on the 4011 ACK', () => {
    const withItem = decode(clientPacket({ type: MessageType.REQUEST, vendor: 'PXEClient:Arch:00007', arch: 7, ciaddr: '10.0.0.50', extra: [[Opt.VENDOR_SPECIFIC, Buffer.from([71, 4, 0x80, 0, 0, 0, 255])]] }));
    const p = planBoot(withItem, settings({ option43: 'boot-server' }));
    if (!p.ok) throw new Error('plan');
    const ack = decode(buildReply(withItem, MessageType.ACK, settings({ option43: 'boot-server' }), { boot: p.request, pxePort: true }).packet);
    expect(ack.type).toBe(MessageType.ACK);
    expect(pxeBootItem(ack.options)?.equals(Buffer.from([0x80, 0, 0, 0]))).toBe(true);
    expect(ack.ciaddr).toBe('10.0.0.50');
  });
  it('broadcasts to the client port, or unicasts to giaddr:67 when relayed', () => {
    const net = { broadcastAddress: '255.255.255.255', clientPort: 68, relayPort: 67 };
    expect(replyDestination(req, net)).toEqual({ address: '255.255.255.255', port: 68 });
    expect(replyDestination(decode(clientPacket({ vendor: 'PXEClient', arch: 0, giaddr: '10.5.0.1' })), net)).toEqual({ address: '10.5.0.1', port: 67 });
  });
  it('puts a boot file longer than 127 bytes in option 67', () => {
    const long = `http://10.0.0.2:8082/${'x'.repeat(150)}`;
    const reply = decode(buildReply(req, MessageType.OFFER, settings(), { boot: { ...plan.request, bootFile: long } }).packet);
    expect(reply.options.get(Opt.BOOTFILE)?.toString()).toBe(long);
  });
});
