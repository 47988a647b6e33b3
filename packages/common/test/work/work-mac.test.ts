import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { agentTaskKey } from '../../src/task-key.js';
import { DerivedKeyCache, eventKey, eventMac, verifyEventMac, verifyTicket, withMac, workTicket, workTicketKey } from '../../src/work/work-mac.js';

const dk = randomBytes(32);
const digest = 'ab'.repeat(32);
const event = { id: 'r:a:0:0:succeeded', run: 'r', agent: 'a', step: 0, attempt: 0, state: 'succeeded', at: 5, exitCode: 0, output: 'hi\n' };

describe('work tickets and event MACs', () => {
  it('tickets bind the run digest and the agent, under a key a task server does not hold', () => {
    const tk = workTicketKey(dk);
    const t = workTicket(tk, digest, 'ag_1');
    expect(verifyTicket(tk, digest, 'ag_1', t)).toBe(true);
    expect(verifyTicket(tk, digest, 'ag_2', t)).toBe(false);
    expect(verifyTicket(tk, 'cd'.repeat(32), 'ag_1', t)).toBe(false);
    expect(verifyTicket(workTicketKey(randomBytes(32)), digest, 'ag_1', t)).toBe(false);
    // What the task server has for the agent mints nothing valid.
    expect(verifyTicket(tk, digest, 'ag_1', workTicket(agentTaskKey(dk, 'ss_1'), digest, 'ag_1'))).toBe(false);
  });

  it('MACs cover every member of an event but the MAC', () => {
    const ek = eventKey(dk);
    const signed = withMac(ek, event);
    expect(verifyEventMac(ek, signed)).toBe(true);
    expect(verifyEventMac(ek, { ...signed })).toBe(true);
    for (const k of Object.keys(event) as Array<keyof typeof event>) {
      expect(verifyEventMac(ek, { ...signed, [k]: typeof event[k] === 'number' ? (event[k] as number) + 1 : `${event[k]}x` })).toBe(false);
    }
    expect(verifyEventMac(ek, { ...signed, via: 'udp' })).toBe(false);
    expect(verifyEventMac(eventKey(randomBytes(32)), signed)).toBe(false);
    expect(verifyEventMac(workTicketKey(dk), signed)).toBe(false);
    expect(eventMac(ek, event)).toBe(signed.mac);
  });

  it('refuses garbled MACs and tickets without throwing (fuzzed)', () => {
    const ek = eventKey(dk);
    const signed = withMac(ek, event);
    for (let i = 0; i < 300; i++) {
      const b = Buffer.from(signed.mac, 'base64url');
      b[i % b.length]! ^= 1 + (i % 255);
      expect(verifyEventMac(ek, { ...signed, mac: b.toString('base64url') })).toBe(false);
      expect(verifyTicket(workTicketKey(dk), digest, 'a', randomBytes(i % 64).toString('base64url'))).toBe(false);
    }
    for (const junk of [undefined, null, 7, {}, '', '!'.repeat(43), 'A'.repeat(44)]) {
      expect(verifyEventMac(ek, { ...event, mac: junk })).toBe(false);
      expect(verifyTicket(workTicketKey(dk), digest, 'a', junk)).toBe(false);
    }
    expect(verifyEventMac(ek, { ...event, output: Number.NaN, mac: signed.mac })).toBe(false);
  });

  it('derives each agent key once per datagram key', () => {
    let n = 0;
    const c = new DerivedKeyCache((k) => (n++, workTicketKey(k)));
    expect(c.of(dk).equals(workTicketKey(dk))).toBe(true);
    c.of(dk);
    expect(n).toBe(1);
  });
});
