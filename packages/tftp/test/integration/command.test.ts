import { describe, it, expect, afterEach } from 'vitest';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { pino } from 'pino';
import { tempDir, removeDir } from '@outpost/testing';
import { runTftpServeCommand, tftpGet, defaultWorkers } from '../../src/index.js';
import { writeFiles } from './helpers.js';

let root: string | undefined;
afterEach(async () => {
  await removeDir(root);
  root = undefined;
});

const sink = () => {
  let text = '';
  return { write: (s: string) => (text += s), get text() { return text; } };
};

describe('outpost tftp serve', () => {
  it('serves DIR until stopped and exits 0', async () => {
    root = await tempDir('tftp-cmd-');
    await writeFiles(root, { hello: Buffer.from('hello') });
    const ac = new AbortController();
    let port = 0;
    let listening: () => void = () => {};
    const ready = new Promise<void>((r) => (listening = r));
    const code = runTftpServeCommand(['serve', root, '--port', '0', '--address', '127.0.0.1', '--max-blksize', '1024'], {
      logger: pino({ enabled: false }),
      signal: ac.signal,
      onListening: (s) => {
        port = s.address().port;
        expect(s.config.maxBlksize).toBe(1024);
        expect(s.config.workers).toBe(defaultWorkers());
        listening();
      },
    });
    await ready; // the test timeout bounds it
    const r = await tftpGet({ host: '127.0.0.1', port, filename: 'hello', blksize: 1468 });
    expect(r.data!.toString()).toBe('hello');
    expect(r.blksize).toBe(1024);
    ac.abort();
    expect(await code).toBe(0);
  });

  it.each([
    [['serve'], 2],
    [['serve', '/tmp', '--port', 'x'], 2],
    [['serve', '/tmp', '--max-blksize', '7'], 2],
    [['serve', '/tmp', '--bogus'], 2],
    [['fetch', '/tmp'], 2],
    [['--help'], 0],
  ])('exits %j with code %i and prints usage or the reason', async (argv, expected) => {
    const err = sink();
    expect(await runTftpServeCommand(argv, { stderr: err, logger: pino({ enabled: false }) })).toBe(expected);
    expect(err.text.length).toBeGreaterThan(0);
  });

  it('exits 1 when the root does not exist', async () => {
    const err = sink();
    const code = await runTftpServeCommand(['serve', '/nonexistent/tftp-root', '--port', '0'], { stderr: err, logger: pino({ enabled: false }) });
    expect(code).toBe(1);
    expect(err.text).toContain('TFTP_ROOT_INVALID');
  });

  it('runs as the outpost-tftp bin, logs JSON with the port, and stops on SIGTERM', async () => {
    root = await tempDir('tftp-bin-');
    await writeFiles(root, { f: Buffer.from('bin!') });
    const child = spawn(process.execPath, [join(import.meta.dirname, '../../dist/bin.js'), 'serve', root, '--port', '0', '--address', '127.0.0.1'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    let port = 0;
    for await (const line of lines) {
      const rec = JSON.parse(line) as { event?: string; port?: number; module?: string };
      if (rec.event === 'listening') {
        expect(rec.module).toBe('tftp');
        port = rec.port!;
        break;
      }
    }
    expect((await tftpGet({ host: '127.0.0.1', port, filename: 'f' })).data!.toString()).toBe('bin!');
    const exited = new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
  });
});
