// The request/answer protocol of the bench children (scripts/bench/tasks/*-child.mjs) over a fork's IPC channel.

/** A request/answer channel over a forked child's IPC; pending requests fail when the child exits. */
export function ipc(child) {
  const waiting = new Map();
  child.on('message', (m) => {
    const w = waiting.get(m.cmd);
    if (!w) return;
    waiting.delete(m.cmd);
    if (m.error) w.rej(new Error(m.error));
    else w.res(m.result);
  });
  child.once('exit', (code) => {
    for (const w of waiting.values()) w.rej(new Error(`child exited (${code})`));
    waiting.clear();
  });
  return (cmd, extra = {}, expect = cmd) =>
    new Promise((res, rej) => {
      waiting.set(expect, { res, rej });
      if (cmd) child.send({ cmd, ...extra });
    });
}
