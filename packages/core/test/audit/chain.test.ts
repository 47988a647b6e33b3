import { describe, expect, it } from 'vitest';
import { entryHash, verifyChain, type ChainPoint } from '../../src/audit/chain.js';
import { GENESIS, type AuditEntry } from '../../src/audit/entry.js';

function chain(n: number, from: ChainPoint = { seq: 0, hash: GENESIS }): AuditEntry[] {
  const out: AuditEntry[] = [];
  let prev = from.hash;
  for (let seq = from.seq + 1; seq <= from.seq + n; seq++) {
    const e: AuditEntry = {
      seq,
      at: new Date(1_700_000_000_000 + seq * 1000).toISOString(),
      actor: { kind: 'admin', admin: 'admin', via: 'bootstrap', credential: 'admin-token' },
      from: { address: '127.0.0.1', requestId: `r${seq}` },
      action: 'sites.create',
      method: 'POST',
      route: '/api/v1/sites',
      request: { name: `s${seq}`, subnets: [`10.${seq}.0.0/16`] },
      outcome: { status: 201, result: 'ok' },
      prev,
      hash: '',
    };
    e.hash = entryHash(e)!;
    prev = e.hash;
    out.push(e);
  }
  return out;
}

const keyed = (es: AuditEntry[]): [number, AuditEntry][] => es.map((e) => [e.seq, e]);
const headOf = (es: AuditEntry[]): ChainPoint => ({ seq: es.at(-1)!.seq, hash: es.at(-1)!.hash });
const genesis = { seq: 0, hash: GENESIS };

describe('audit chain', () => {
  it('hashes sha256(prev + canonical JSON without hash): key order does not matter, every field does', () => {
    const [e] = chain(1);
    const reordered = Object.fromEntries(Object.entries(e!).reverse()) as unknown as AuditEntry;
    expect(entryHash(reordered)).toBe(e!.hash);
    expect(entryHash({ ...e!, from: { ...e!.from, address: '127.0.0.2' } })).not.toBe(e!.hash);
    expect(entryHash({ ...e!, prev: '1'.repeat(64) })).not.toBe(e!.hash);
    expect(e!.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('verifies an intact chain from genesis and from an anchor', async () => {
    const es = chain(10);
    expect(await verifyChain(keyed(es), genesis, headOf(es))).toEqual({ ok: true, entries: 10, first: 1, last: 10 });
    const anchor = { seq: es[3]!.seq, hash: es[3]!.hash };
    expect(await verifyChain(keyed(es.slice(4)), anchor, headOf(es))).toEqual({ ok: true, entries: 6, first: 5, last: 10 });
    expect(await verifyChain([], genesis, genesis)).toEqual({ ok: true, entries: 0 });
  });

  it('names the first changed entry (hash mismatch), even when a later one is changed too', async () => {
    const es = chain(10);
    es[4] = { ...es[4]!, outcome: { status: 403, result: 'refused' } };
    es[7] = { ...es[7]!, actor: { kind: 'admin', admin: 'mallory' } };
    const r = await verifyChain(keyed(es), genesis, headOf(es));
    expect(r).toMatchObject({ ok: false, entries: 4, broken: { seq: 5 } });
    expect(r.broken!.reason).toMatch(/hash mismatch/);
  });

  it('names the entry after one whose hash was recomputed (prev mismatch)', async () => {
    const es = chain(6);
    const forged = { ...es[2]!, action: 'sites.delete' };
    forged.hash = entryHash(forged)!;
    es[2] = forged;
    const r = await verifyChain(keyed(es), genesis, headOf(es));
    expect(r.broken).toEqual({ seq: 4, reason: expect.stringMatching(/prev mismatch/) });
  });

  it('names a missing entry in the middle and missing entries at the end', async () => {
    const es = chain(8);
    const gap = await verifyChain(keyed(es.filter((e) => e.seq !== 3)), genesis, headOf(es));
    expect(gap.broken).toEqual({ seq: 3, reason: expect.stringMatching(/missing/) });
    const tail = await verifyChain(keyed(es.slice(0, 6)), genesis, headOf(es));
    expect(tail.broken).toEqual({ seq: 7, reason: expect.stringMatching(/missing/) });
    const first = await verifyChain(keyed(es.slice(1)), genesis, headOf(es));
    expect(first.broken?.seq).toBe(1);
  });

  it('names an entry stored under another seq, and a last entry the head does not name', async () => {
    const es = chain(4);
    const moved = keyed(es);
    moved[1] = [2, es[2]!];
    expect((await verifyChain(moved, genesis, headOf(es))).broken?.seq).toBe(2);
    const forged = { ...es[3]!, object: 'x' };
    forged.hash = entryHash(forged)!;
    expect((await verifyChain(keyed([...es.slice(0, 3), forged]), genesis, headOf(es))).broken).toEqual({ seq: 4, reason: expect.stringMatching(/head/) });
  });
});
