import { describe, expect, it } from 'vitest';
import { DatagramType, datagramKey, decodeDatagram, encodeDatagram, verifyDatagram } from '@outpost/common';
import { encodeHeartbeat, openHeartbeatAck, parseAckPayload } from '../src/index.js';

const key = datagramKey('secret-a');
const other = datagramKey('secret-b');
const ack = (payload: string, k = key, sender = 'core', type: DatagramType = DatagramType.HEARTBEAT_ACK): Buffer =>
  encodeDatagram({ type, flags: 0, timestamp: Date.now(), seq: 1, sender, payload: Buffer.from(payload) }, k);

describe('heartbeat datagram', () => {
  it('encodes a HEARTBEAT signed with the agent key, payload {"s": serial}', () => {
    const buf = encodeHeartbeat('ag_1', key, 'abc123', { timestamp: 1_700_000_000_000, seq: 7 });
    const d = decodeDatagram(buf);
    expect(d.ok).toBe(true);
    if (!d.ok) return;
    expect(d.value).toMatchObject({ type: DatagramType.HEARTBEAT, sender: 'ag_1', seq: 7, timestamp: 1_700_000_000_000 });
    expect(JSON.parse(d.value.payload.toString())).toEqual({ s: 'abc123' });
    expect(verifyDatagram(d.value, key)).toBe(true);
    expect(verifyDatagram(d.value, other)).toBe(false);
  });

  it('sends {} before the agent has a config serial', () => {
    const d = decodeDatagram(encodeHeartbeat('ag_1', key, undefined, { timestamp: 1, seq: 0 }));
    expect(d.ok && d.value.payload.toString()).toBe('{}');
  });

  it('opens an ack for a known agent, verified with that agent key', () => {
    const r = openHeartbeatAck(ack('{"a":"ag_1","s":"x9"}'), (a) => (a === 'ag_1' ? key : undefined));
    expect(r).toMatchObject({ ok: true, value: { agentId: 'ag_1', configSerial: 'x9' } });
  });

  it('drops, never throws on, garbage, forgeries and acks for others', () => {
    const keyFor = (a: string) => (a === 'ag_1' ? key : undefined);
    expect(openHeartbeatAck(Buffer.from('garbage'), keyFor)).toEqual({ ok: false, reason: 'not-a-datagram' });
    expect(openHeartbeatAck(Buffer.alloc(0), keyFor)).toEqual({ ok: false, reason: 'not-a-datagram' });
    expect(openHeartbeatAck(ack('{"a":"ag_1"}', key, 'core', DatagramType.TICKLE), keyFor)).toEqual({ ok: false, reason: 'not-an-ack' });
    expect(openHeartbeatAck(ack('{"a":"ag_1"}', key, 'mallory'), keyFor)).toEqual({ ok: false, reason: 'bad-sender' });
    expect(openHeartbeatAck(ack('not json'), keyFor)).toEqual({ ok: false, reason: 'bad-payload' });
    expect(openHeartbeatAck(ack('{"a":"ag_2","s":1}'), keyFor)).toEqual({ ok: false, reason: 'unknown-agent' });
    expect(openHeartbeatAck(ack('{"a":"ag_1","s":1}', other), keyFor)).toEqual({ ok: false, reason: 'bad-mac' });
    const flipped = ack('{"a":"ag_1","s":1}');
    flipped[flipped.length - 1]! ^= 1;
    expect(openHeartbeatAck(flipped, keyFor)).toEqual({ ok: false, reason: 'bad-mac' });
  });

  it('accepts string or integer serials and nothing else in the ack payload', () => {
    expect(parseAckPayload(Buffer.from('{"a":"x","s":"abc"}'))).toEqual({ a: 'x', s: 'abc' });
    expect(parseAckPayload(Buffer.from('{"a":"x","s":3}'))).toEqual({ a: 'x', s: 3 });
    expect(parseAckPayload(Buffer.from('{"a":"x"}'))).toEqual({ a: 'x', s: undefined });
    expect(parseAckPayload(Buffer.from('{"a":"x","s":1.5}'))).toBeUndefined();
    expect(parseAckPayload(Buffer.from('{"a":""}'))).toBeUndefined();
    expect(parseAckPayload(Buffer.from('[1]'))).toBeUndefined();
    expect(parseAckPayload(Buffer.from('null'))).toBeUndefined();
  });
});
