import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { removeDir, tempDir } from '@outpost/testing';
import { versionText } from '../../src/cli/version.js';

let dir: string;
beforeEach(async () => {
  dir = await tempDir('outpost-version-');
});
afterEach(async () => {
  await removeDir(dir);
});

describe('outpost-agent --version', () => {
  it("prints the package's version, the Node.js it runs on, and the config's core URL(s)", async () => {
    const { version } = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
    const file = join(dir, 'agent.yaml');
    await writeFile(file, 'coreUrl: [http://a:1, http://b:1]\n');
    expect(await versionText(file, {})).toBe(`outpost-agent ${version} (node ${process.version})\ncore: http://a:1, http://b:1 (config ${file})`);
  });

  it('says "not configured" without a config file, and takes OUTPOST_AGENT__CORE_URL', async () => {
    const file = join(dir, 'missing.yaml');
    expect(await versionText(file, {})).toContain(`core: not configured (config ${file})`);
    expect(await versionText(file, { OUTPOST_AGENT__CORE_URL: 'http://env:1' })).toContain('core: http://env:1 (config');
  });

  it('reports a config it cannot parse on the core line instead of failing', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, 'coreUrl: [\n');
    expect(await versionText(file, {})).toMatch(/^core: not configured \(config .*bad\.yaml: cannot parse config file/m);
  });
});
