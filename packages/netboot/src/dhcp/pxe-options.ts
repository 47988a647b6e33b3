import { Opt } from './constants.js';
import type { DhcpOptions } from './options.js';
import { encodeOptionArea, readText, u8, type OptionEntry } from './options.js';

/*
 * PXE and iPXE options (RFC 4578, PXE 2.1, RFC 3004, iPXE):
 *
 *  60 vendor class    "PXEClient:Arch:00007:UNDI:003010" | "HTTPClient:Arch:00016:..."
 *  93 client arch     uint16 list (IANA "Processor Architecture Types"), 2·n bytes
 *  94 client NDI      type(1)=1 | major(1) | minor(1)
 *  97 client GUID     type(1)=0 | uuid(16)  (echoed back as received)
 *  77 user class      iPXE sends the bare string "iPXE" (not RFC 3004 TLVs)
 * 175 iPXE encap      sub-options TLV; its presence means "running iPXE"
 *  43 vendor specific PXE sub-options TLV + 255:
 *        6  discovery control (1 byte; bit 3 = boot from the file field, no 4011)
 *        8  boot servers  | 9 boot menu | 10 menu prompt
 *        71 boot item     type(2) | layer(2)  (echoed on the 4011 reply)
 */

/** The vendor-class families we answer. */
export type PxeVendor = 'PXEClient' | 'HTTPClient';

/** Option 60's family, when it starts with `PXEClient` or `HTTPClient`. */
export function pxeVendor(options: DhcpOptions): PxeVendor | undefined {
  const v = readText(options.get(Opt.VENDOR_CLASS));
  if (v === undefined) return undefined;
  if (v.startsWith('PXEClient')) return 'PXEClient';
  if (v.startsWith('HTTPClient')) return 'HTTPClient';
  return undefined;
}

/**
 * The client architectures of option 93 (a list of uint16, first = preferred). When 93
 * is missing, the `Arch:NNNNN` field of option 60 is used. Undefined when neither says.
 */
export function clientArchs(options: DhcpOptions): number[] | undefined {
  const v = options.get(Opt.CLIENT_ARCH);
  if (v && v.length >= 2 && v.length % 2 === 0) {
    const out: number[] = [];
    for (let i = 0; i < v.length; i += 2) out.push(v.readUInt16BE(i));
    return out;
  }
  const m = /:Arch:(\d{5})/.exec(readText(options.get(Opt.VENDOR_CLASS)) ?? '');
  return m ? [Number(m[1])] : undefined;
}

export function encodeClientArchs(archs: readonly number[]): Buffer {
  const b = Buffer.alloc(2 * archs.length);
  archs.forEach((a, i) => b.writeUInt16BE(a & 0xffff, 2 * i));
  return b;
}

/** The client GUID (option 97) as a UUID string, when it is type 0 + 16 bytes. */
export function clientGuid(options: DhcpOptions): string | undefined {
  const v = options.get(Opt.CLIENT_GUID);
  if (!v || v.length !== 17 || v[0] !== 0) return undefined;
  const h = v.subarray(1).toString('hex');
  if (/^0+$/.test(h)) return undefined;
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** True when the client is iPXE: option 77 is `iPXE`, or option 175 is present. */
export function isIpxe(options: DhcpOptions): boolean {
  if (options.has(Opt.IPXE_ENCAP)) return true;
  const uc = options.get(Opt.USER_CLASS);
  if (!uc) return false;
  if (readText(uc) === 'iPXE') return true;
  // RFC 3004 form: len-prefixed items.
  let i = 0;
  for (let n = 0; n < 32 && i < uc.length; n++) {
    const len = uc[i]!;
    if (uc.subarray(i + 1, i + 1 + len).toString('latin1') === 'iPXE') return true;
    i += 1 + len;
  }
  return false;
}

/** PXE discovery control bits (option 43 sub-option 6). */
export const DiscoveryControl = {
  /** Bit 3: use the boot file in this packet; do not discover boot servers (no 4011). */
  USE_BOOTFILE: 0x08,
} as const;

export interface PxeVendorOptions {
  discoveryControl?: number;
  /** Sub-option 71, echoed on the 4011 reply. */
  bootItem?: Buffer;
}

/** Option 43 for PXE clients: the sub-options TLV, ended with 255. */
export function encodePxeVendorOptions(o: PxeVendorOptions): Buffer {
  const subs: OptionEntry[] = [];
  if (o.discoveryControl !== undefined) subs.push([6, u8(o.discoveryControl)]);
  if (o.bootItem) subs.push([71, o.bootItem]);
  return encodeOptionArea(subs);
}

/** Sub-option 71 (boot item) of a client's option 43, when present and 4 bytes. */
export function pxeBootItem(options: DhcpOptions): Buffer | undefined {
  const v = options.get(Opt.VENDOR_SPECIFIC);
  if (!v) return undefined;
  let i = 0;
  for (let n = 0; n < 64 && i + 1 < v.length; n++) {
    const code = v[i]!;
    if (code === 255) return undefined;
    if (code === 0) {
      i++;
      continue;
    }
    const len = v[i + 1]!;
    if (code === 71 && len === 4 && i + 2 + len <= v.length) return Buffer.from(v.subarray(i + 2, i + 6));
    i += 2 + len;
  }
  return undefined;
}
