/*
 * netascii (RFC 764 via RFC 1350): on the wire a line ends in CR LF and a bare CR is
 * sent as CR NUL. These converters are stateful so a CR at the end of one chunk pairs
 * with the LF or NUL at the start of the next.
 */

const CR = 0x0d;
const LF = 0x0a;

/** Local bytes -> wire bytes (LF -> CR LF, CR -> CR NUL). */
export class NetasciiEncoder {
  push(chunk: Uint8Array): Buffer {
    let extra = 0;
    for (let i = 0; i < chunk.length; i++) if (chunk[i] === LF || chunk[i] === CR) extra++;
    if (extra === 0) return Buffer.from(chunk.buffer, chunk.byteOffset, chunk.length);
    const out = Buffer.allocUnsafe(chunk.length + extra);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
      } else if (b === CR) {
        out[o++] = CR;
        out[o++] = 0;
      } else out[o++] = b;
    }
    return out;
  }
}

/** Wire bytes -> local bytes (CR LF -> LF, CR NUL -> CR; a lone CR is kept). */
export class NetasciiDecoder {
  private pendingCr = false;

  push(chunk: Uint8Array): Buffer {
    const out = Buffer.allocUnsafe(chunk.length + 1);
    let o = 0;
    for (let i = 0; i < chunk.length; i++) {
      const b = chunk[i]!;
      if (this.pendingCr) {
        this.pendingCr = false;
        if (b === LF) {
          out[o++] = LF;
          continue;
        }
        out[o++] = CR;
        if (b === 0) continue;
      }
      if (b === CR) this.pendingCr = true;
      else out[o++] = b;
    }
    return out.subarray(0, o);
  }

  /** Call at the end of the transfer: flushes a trailing CR. */
  end(): Buffer {
    if (!this.pendingCr) return Buffer.alloc(0);
    this.pendingCr = false;
    return Buffer.from([CR]);
  }
}
