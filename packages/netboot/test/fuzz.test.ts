import { describe, expect, it } from 'vitest';
import { decodeDhcp, DHCP_DECODE_ERRORS, Opt, type DhcpDecodeError } from '../src/index.js';
import { prng } from '@outpost/testing';
import { clientPacket } from './helpers.js';

const ROUNDS = 20_000;

/** A DISCOVER whose option 52 says file and sname hold options too. */
function overloaded(): Buffer {
  const p = clientPacket();
  let i = 240;
  while (p[i] !== Opt.END) i += 2 + p[i + 1]!;
  return Buffer.concat([p.subarray(0, i), Buffer.from([Opt.OVERLOAD, 1, 3, Opt.END])]);
}

describe('DHCP decoder fuzz (seeded, bounded)', () => {
  it(`never throws on ${ROUNDS} mutated, truncated, overflowing and overloaded packets; every failure is a typed error`, () => {
    const rnd = prng(0x0b007);
    const base = [clientPacket({ vendor: 'PXEClient:Arch:00000:UNDI:002001', arch: 0, ipxe: true }), overloaded(), clientPacket()];
    const seen = new Map<DhcpDecodeError | 'ok', number>();
    const start = Date.now();
    for (let i = 0; i < ROUNDS; i++) {
      const src = base[i % base.length]!;
      let p: Buffer;
      switch (i % 6) {
        case 0: // short packets
          p = src.subarray(0, Math.floor(rnd() * 260));
          break;
        case 1: {
          // random bytes in the options area (option overflow, lengths past the end)
          p = Buffer.from(src);
          for (let k = 0; k < 8; k++) p[240 + Math.floor(rnd() * (p.length - 240))] = Math.floor(rnd() * 256);
          break;
        }
        case 2: {
          // bad magic cookie
          p = Buffer.from(src);
          p[236 + Math.floor(rnd() * 4)] ^= 1 + Math.floor(rnd() * 255);
          break;
        }
        case 3: {
          // option 52 everywhere: file and sname full of overload options pointing at each other
          p = Buffer.from(src);
          for (let k = 44; k < 236; k += 3) {
            p[k] = Opt.OVERLOAD;
            p[k + 1] = 1;
            p[k + 2] = 1 + Math.floor(rnd() * 3);
          }
          break;
        }
        case 4: {
          // a length byte pointing past the end
          p = Buffer.concat([src.subarray(0, 243), Buffer.from([Opt.HOSTNAME, 200, 1, 2, 3])]);
          break;
        }
        default:
          p = Buffer.from(Array.from({ length: Math.floor(rnd() * 600) }, () => Math.floor(rnd() * 256)));
      }
      const r = decodeDhcp(p);
      const key = r.ok ? 'ok' : r.error;
      if (!r.ok) expect(DHCP_DECODE_ERRORS).toContain(r.error);
      seen.set(key, (seen.get(key) ?? 0) + 1);
    }
    expect(Date.now() - start).toBeLessThan(20_000);
    for (const e of ['short', 'bad-cookie', 'option-overflow'] as const) expect(seen.get(e) ?? 0).toBeGreaterThan(0);
  });
});
