import { PassThrough, Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readStdinLines } from '../../src/client/stdin.js';

describe('readStdinLines', () => {
  it('reads the first lines without their line ends (\\n or \\r\\n)', async () => {
    expect(await readStdinLines(Readable.from(['pass word 1\r\nsecond\nthird\n']), ['password'], 'x')).toEqual(['pass word 1']);
    expect(await readStdinLines(Readable.from(['old-one\r\n', 'new-', 'one']), ['current password', 'new password'], 'x')).toEqual(['old-one', 'new-one']);
  });

  it('stops at the lines it needs without waiting for the end of the input, and closes it', async () => {
    const pipe = new PassThrough();
    pipe.write('first line\nmore');
    // The stream never ends: a reader that waited for the end would time out.
    await expect(readStdinLines(pipe, ['password'], 'x')).resolves.toEqual(['first line']);
    expect(pipe.destroyed).toBe(true);
  });

  it('refuses a terminal, a missing or empty line and oversized input', async () => {
    await expect(readStdinLines(Object.assign(Readable.from(['pw\n']), { isTTY: true }), ['password'], 'x')).rejects.toMatchObject({ code: 'APPLIANCE_USAGE', message: expect.stringMatching(/not a terminal/) });
    await expect(readStdinLines(undefined, ['password'], 'x')).rejects.toMatchObject({ code: 'APPLIANCE_USAGE' });
    await expect(readStdinLines(Readable.from(['\nsecond\n']), ['password'], 'x')).rejects.toMatchObject({ message: 'no password on standard input (expected password, one a line)' });
    await expect(readStdinLines(Readable.from(['x'.repeat(9000)]), ['password'], 'x')).rejects.toMatchObject({ message: expect.stringMatching(/longer than 8192 bytes/) });
  });
});
