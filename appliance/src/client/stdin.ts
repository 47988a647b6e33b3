import { UsageError } from '../errors.js';

/** What {@link readStdinLines} reads: standard input, or a stream a test passes. */
export type StdinStream = NodeJS.ReadableStream & { isTTY?: boolean; destroy?: () => void };

/** Longest input read for secrets: a password is at most 1024 characters (the core's limit). */
const MAX_BYTES = 8 * 1024;

/**
 * Reads one line of `stream` per entry of `what` (a pipe: `printf '%s\n' "$PW" | outpost ...`),
 * without their line ends (`\n` or `\r\n`), then closes it (an open pipe would keep the
 * process alive; nothing reads it after). A terminal is refused (it would echo the
 * password), and so is input with fewer lines or an empty one: each is a
 * {@link UsageError} for `command`, naming `what` (the lines, in order).
 */
export async function readStdinLines(stream: StdinStream | undefined, what: readonly string[], command: string): Promise<string[]> {
  if (!stream) throw new UsageError('no standard input to read the password from', command);
  if (stream.isTTY) {
    throw new UsageError(`--password-stdin reads ${what.join(', then ')} from a pipe, not a terminal (it would be echoed): printf '%s\\n' "$PASSWORD" | outpost ${command} ...`, command);
  }
  const text = await new Promise<string>((resolve, reject) => {
    let got = '';
    const enough = (): boolean => got.split('\n').length > what.length || got.length > MAX_BYTES;
    const finish = (): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      stream.off('error', onError);
      stream.pause();
      stream.destroy?.();
      resolve(got);
    };
    const onData = (chunk: Buffer | string): void => {
      got += typeof chunk === 'string' ? chunk : chunk.toString('utf8');
      if (enough()) finish();
    };
    const onEnd = (): void => finish();
    const onError = (err: Error): void => {
      stream.off('data', onData);
      stream.off('end', onEnd);
      reject(err);
    };
    stream.on('data', onData);
    stream.on('end', onEnd);
    stream.on('error', onError);
    stream.resume();
  });
  if (text.length > MAX_BYTES) throw new UsageError(`standard input is longer than ${MAX_BYTES} bytes; expected ${what.join(', then ')}, one a line`, command);
  const lines = text.split('\n').slice(0, what.length).map((l) => l.replace(/\r$/, ''));
  for (let i = 0; i < what.length; i++) {
    if (lines[i] === undefined || lines[i] === '') throw new UsageError(`no ${what[i]} on standard input (expected ${what.join(', then ')}, one a line)`, command);
  }
  return lines;
}
