/**
 * A level journal entry as stored: utf8 text in which keys and values are copied as they
 * are (no escaping: they are the records' JSON text, and escaping them again cost a third of
 * level's batch throughput).
 *
 *   <at>,<h>,<n>\n              decimal: time (ms since the epoch), the head when it was
 *                               written (every seq up to it was committed then), op count
 *   n times:
 *   <klen>,<vlen>\n<key><value> lengths in UTF-16 code units; vlen -1: a delete (no value)
 */
export interface StoredEntry {
  at: number;
  h: number;
  ops: Array<{ key: string; value: string | undefined }>;
}

export function encodeEntry(e: StoredEntry): string {
  let out = `${e.at},${e.h},${e.ops.length}\n`;
  for (const op of e.ops) out += op.value === undefined ? `${op.key.length},-1\n${op.key}` : `${op.key.length},${op.value.length}\n${op.key}${op.value}`;
  return out;
}

/** The entry, or undefined when `text` is not one (a decoder never throws on what it reads). */
export function decodeEntry(text: string): StoredEntry | undefined {
  let pos = 0;
  const line = (): number[] | undefined => {
    const end = text.indexOf('\n', pos);
    if (end < 0) return undefined;
    const fields = text.slice(pos, end).split(',');
    pos = end + 1;
    return fields.every((f) => /^-?\d{1,15}$/.test(f)) ? fields.map(Number) : undefined;
  };
  const head = line();
  if (!head || head.length !== 3 || head[2]! < 0) return undefined;
  const [at, h, n] = head as [number, number, number];
  const ops: StoredEntry['ops'] = [];
  for (let i = 0; i < n; i++) {
    const lens = line();
    if (!lens || lens.length !== 2) return undefined;
    const [klen, vlen] = lens as [number, number];
    if (klen < 0 || vlen < -1 || pos + klen + Math.max(vlen, 0) > text.length) return undefined;
    const key = text.slice(pos, (pos += klen));
    const value = vlen < 0 ? undefined : text.slice(pos, (pos += vlen));
    ops.push({ key, value });
  }
  return pos === text.length ? { at, h, ops } : undefined;
}
