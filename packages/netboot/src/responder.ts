import type { LoaderTable } from './arch.js';
import type { Option43Mode } from './config.js';
import { MessageType, Op, Opt } from './dhcp/constants.js';
import { fieldText, macOf } from './dhcp/header.js';
import { encodeDhcp, maxMessageSize, type DhcpMessage, type EncodeResult } from './dhcp/message.js';
import { ips, text, type OptionEntry } from './dhcp/options.js';
import { clientArchs, clientGuid, DiscoveryControl, encodePxeVendorOptions, isIpxe, pxeBootItem, pxeVendor, type PxeVendor } from './dhcp/pxe-options.js';

/** What the responder needs to know about us. */
export interface ResponderSettings {
  serverAddress: string;
  /** Base URL of our HTTP server, no trailing slash. */
  httpBase: string;
  loaders: LoaderTable;
  option43: Option43Mode;
  /** Vendor-class prefixes, longest first. */
  option43ByVendor: ReadonlyArray<readonly [string, Option43Mode]>;
  option43ByMac: ReadonlyMap<string, Option43Mode>;
}

/** A PXE client's request, understood. */
export interface PxeRequest {
  mac: string;
  uuid: string | undefined;
  vendor: PxeVendor;
  vendorClass: string;
  arch: number;
  ipxe: boolean;
  /** The boot file: a TFTP path, or an http:// URL. */
  bootFile: string;
  /** True when the boot file is the per-machine iPXE script. */
  script: boolean;
}

export type PlanResult = { ok: true; request: PxeRequest } | { ok: false; reason: 'not-pxe' | 'no-arch' | 'unknown-arch' | 'not-ethernet' };

/** Lower-case, hyphenated MAC for URLs: 52-54-00-12-34-56. */
export const macSlug = (mac: string): string => mac.replace(/:/g, '-');

/** The URL of one machine's iPXE script; with the one-use boot token of the boot we answer (boot-tokens.ts). */
export const scriptUrl = (httpBase: string, mac: string, token?: string): string => `${httpBase}/boot/${macSlug(mac)}.ipxe${token !== undefined ? `?b=${token}` : ''}`;

/**
 * The request with the boot token in its script URL: called once a reply is going out
 * (after the reply limiter), so only answered boots get a token. Other boot files as they are.
 */
export function withBootToken(req: PxeRequest, httpBase: string, token: (mac: string) => string): PxeRequest {
  return req.script ? { ...req, bootFile: scriptUrl(httpBase, req.mac, token(req.mac)) } : req;
}

/**
 * Decides what a client gets, from its options only (no I/O, so offers never wait for
 * the core): iPXE gets its script URL (the boot token is added by {@link withBootToken}); UEFI HTTP boot gets a loader URL; PXE firmware
 * gets a loader path for TFTP, chosen by option 93.
 */
export function planBoot(msg: DhcpMessage, s: ResponderSettings): PlanResult {
  const vendor = pxeVendor(msg.options);
  if (!vendor) return { ok: false, reason: 'not-pxe' };
  if (msg.hlen !== 6 || msg.htype !== 1) return { ok: false, reason: 'not-ethernet' };
  const archs = clientArchs(msg.options);
  if (!archs || archs.length === 0) return { ok: false, reason: 'no-arch' };
  const mac = macOf(msg);
  const ipxe = isIpxe(msg.options);
  const loader = s.loaders.choose(archs);
  const vendorClass = msg.options.get(Opt.VENDOR_CLASS)?.toString('latin1') ?? vendor;
  const base = { mac, uuid: clientGuid(msg.options), vendor, vendorClass, ipxe };
  if (ipxe) return { ok: true, request: { ...base, arch: loader?.arch ?? archs[0]!, bootFile: scriptUrl(s.httpBase, mac), script: true } };
  if (!loader) return { ok: false, reason: 'unknown-arch' };
  const bootFile = loader.http || vendor === 'HTTPClient' ? `${s.httpBase}/loaders/${loader.file}` : loader.file;
  return { ok: true, request: { ...base, arch: loader.arch, bootFile, script: false } };
}

/** The option-43 mode for a client: by MAC, then by vendor-class prefix, then the default. */
export function option43For(req: PxeRequest, s: ResponderSettings): Option43Mode {
  const byMac = s.option43ByMac.get(req.mac);
  if (byMac) return byMac;
  for (const [prefix, mode] of s.option43ByVendor) if (req.vendorClass.startsWith(prefix)) return mode;
  return s.option43;
}

export interface ReplyExtras {
  /** Full DHCP mode: the address leased. */
  yiaddr?: string;
  /** More options (lease time, mask, router...), after ours. */
  options?: OptionEntry[];
  /** Boot information to include (PXE clients); absent for plain DHCP clients. */
  boot?: PxeRequest | undefined;
  /** True on the PXE boot server port (4011): echo option 43 sub-option 71. */
  pxePort?: boolean;
}

/**
 * A reply (OFFER or ACK) to `msg`: xid, flags, chaddr, giaddr echoed; option 54 and
 * siaddr are ours; for PXE clients option 60 is echoed as `PXEClient`/`HTTPClient`,
 * option 97 is echoed, option 43 per {@link option43For}, and the boot file goes in
 * `file` (or option 67 when it does not fit, or when the client asked for 66/67).
 */
export function buildReply(msg: DhcpMessage, type: number, s: ResponderSettings, x: ReplyExtras = {}): EncodeResult {
  const options: OptionEntry[] = [[Opt.SERVER_ID, ips(s.serverAddress)]];
  let file = Buffer.alloc(128);
  const boot = x.boot;
  if (boot) {
    options.push([Opt.VENDOR_CLASS, text(boot.vendor)]);
    const guid = msg.options.get(Opt.CLIENT_GUID);
    if (guid) options.push([Opt.CLIENT_GUID, guid]);
    if (boot.vendor === 'PXEClient' && !boot.ipxe) {
      const mode = option43For(boot, s);
      const item = x.pxePort ? pxeBootItem(msg.options) : undefined;
      if (mode === 'use-bootfile' || item) {
        options.push([Opt.VENDOR_SPECIFIC, encodePxeVendorOptions({ ...(mode === 'use-bootfile' ? { discoveryControl: DiscoveryControl.USE_BOOTFILE } : {}), ...(item ? { bootItem: item } : {}) })]);
      }
    }
    const nameBytes = Buffer.from(boot.bootFile, 'latin1');
    const asked = msg.options.get(Opt.PARAM_LIST);
    const wants = (c: number): boolean => asked !== undefined && asked.includes(c);
    if (nameBytes.length < 128) nameBytes.copy(file);
    if (nameBytes.length >= 128 || wants(Opt.BOOTFILE)) options.push([Opt.BOOTFILE, nameBytes]);
    if (wants(Opt.TFTP_SERVER)) options.push([Opt.TFTP_SERVER, text(s.serverAddress)]);
  }
  if (x.options) options.push(...x.options);
  return encodeDhcp(
    {
      op: Op.REPLY,
      htype: msg.htype,
      hlen: msg.hlen,
      hops: 0,
      xid: msg.xid,
      secs: 0,
      flags: msg.flags,
      ciaddr: type === MessageType.ACK && x.pxePort ? msg.ciaddr : '0.0.0.0',
      yiaddr: x.yiaddr ?? '0.0.0.0',
      siaddr: boot ? s.serverAddress : '0.0.0.0',
      giaddr: msg.giaddr,
      chaddr: msg.chaddr,
      sname: Buffer.alloc(64),
      file,
    },
    type,
    options,
    { maxMessageSize: maxMessageSize(msg.options) },
  );
}

/** Where a reply to a message received on the DHCP port goes (RFC 2131 §4.1). */
export function replyDestination(
  msg: DhcpMessage,
  net: { broadcastAddress: string; clientPort: number; relayPort: number },
): { address: string; port: number } {
  if (msg.giaddr !== '0.0.0.0') return { address: msg.giaddr, port: net.relayPort };
  if (msg.ciaddr !== '0.0.0.0') return { address: msg.ciaddr, port: net.clientPort };
  // Node cannot add an ARP entry, so a client with no address yet is answered by broadcast
  // whatever its BROADCAST flag says (what dnsmasq does without a raw socket, too).
  return { address: net.broadcastAddress, port: net.clientPort };
}

/** The boot file field, for logs. */
export const fileOf = (msg: DhcpMessage): string => fieldText(msg.file);
