import { describe, it, expect } from 'vitest';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parseTftpServerConfig, createTftpServer, TftpErrors } from '../src/index.js';

const dir = join(import.meta.dirname, 'fixtures/config');
const expected: Record<string, string[]> = {
  'bad-ranges-and-unknown-key.json': ['(root)', 'port', 'maxBlksize'],
  'bad-window-and-write.json': ['maxWindowsize', 'write.dir', 'write.overwrite'],
  'bad-enums.json': ['busyErrorCode', 'absolutePaths'],
};

describe('server config', () => {
  it('fills every default', () => {
    const c = parseTftpServerConfig({});
    expect(c).toMatchObject({ address: '0.0.0.0', port: 69, maxBlksize: 1468, maxWindowsize: 64, maxTransfers: 200, retries: 5, timeoutMs: 1000, busyErrorCode: 0 });
    expect(Object.isFrozen(c)).toBe(true);
  });

  for (const file of readdirSync(dir)) {
    it(`rejects ${file}, naming every bad path`, () => {
      const input: unknown = JSON.parse(readFileSync(join(dir, file), 'utf8'));
      let err: unknown;
      try {
        createTftpServer(input as never);
      } catch (e) {
        err = e;
      }
      expect(err).toMatchObject({ code: TftpErrors.CONFIG_INVALID });
      const paths = ((err as { details: { issues: Array<{ path: string }> } }).details.issues).map((i) => i.path);
      expect(paths.sort()).toEqual(expected[file]!.slice().sort());
    });
  }
});
