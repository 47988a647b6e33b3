import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadConfig, validateConfig } from '@outpost/common';
import { agentConfigSchema, AgentErrors } from '../src/index.js';
import { caFingerprintOf, checkCaPin } from '../src/ca-pin.js';

const fixture = (path: string) => fileURLToPath(new URL(`./fixtures/${path}`, import.meta.url));
/** `openssl x509 -in fixtures/ca/other-ca.pem -noout -fingerprint -sha256` */
const OPENSSL = '05:EA:9A:AD:3B:6D:D7:FA:8C:52:EE:80:F3:4C:78:11:15:00:FA:27:61:1A:66:F3:E7:7F:6B:05:04:2F:D1:67';
const HEX = OPENSSL.replace(/:/g, '').toLowerCase();

describe('caFingerprint', () => {
  it('takes the fingerprint as openssl prints it, bare hex, or with a sha256: prefix, and keeps it as lowercase hex', () => {
    for (const given of [OPENSSL, HEX, `sha256:${HEX}`, ` ${OPENSSL.toLowerCase()} `]) {
      expect(validateConfig(agentConfigSchema, { coreUrl: 'http://h', caFingerprint: given }, { file: '<test>' }).caFingerprint).toBe(HEX);
    }
  });

  it('rejects what is not a sha256 fingerprint, naming the key', async () => {
    const err = await loadConfig(agentConfigSchema, { file: fixture('config/bad-fingerprint.json') }).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'COMMON_CONFIG_INVALID', details: { problems: [{ path: 'caFingerprint' }] } });
  });

  it('is the sha256 of the certificate, as openssl computes it', async () => {
    expect(caFingerprintOf(await readFile(fixture('ca/other-ca.pem'), 'utf8'))).toBe(HEX);
    expect(caFingerprintOf('not a certificate')).toBeUndefined();
  });

  it('accepts the pinned CA and refuses another, or none, with AGENT_CA_MISMATCH', async () => {
    const pem = await readFile(fixture('ca/other-ca.pem'), 'utf8');
    expect(() => checkCaPin(pem, HEX, 'test')).not.toThrow();
    const wrong = `${HEX.slice(0, -1)}0`;
    expect(() => checkCaPin(pem, wrong, 'test')).toThrow(expect.objectContaining({ code: AgentErrors.CA_MISMATCH, details: { expected: wrong, got: HEX } }));
    expect(() => checkCaPin(undefined, HEX, 'test')).toThrow(expect.objectContaining({ code: AgentErrors.CA_MISMATCH }));
    expect(() => checkCaPin('garbage', HEX, 'test')).toThrow(expect.objectContaining({ code: AgentErrors.CA_MISMATCH }));
  });
});
