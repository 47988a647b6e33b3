// What the task benchmarks ask of their task servers (tasks/ts-child.mjs) and swarms
// (tasks/swarm-child.mjs): shared by bench:tasks and bench:hierarchy.

/** Has a task server pull its agents from the core now (else on its next poll); resolves with how many it knows. */
export function syncTaskServer(child, timeoutMs = 60_000) {
  return new Promise((res, rej) => {
    const t = setTimeout(() => rej(new Error('the task server did not sync')), timeoutMs);
    const on = (m) => {
      if (!m.synced) return;
      child.off('message', on);
      clearTimeout(t);
      res(m.stats.agents);
    };
    child.on('message', on);
    child.send('sync');
  });
}

/**
 * Attaches a swarm's `count` agents (`call`: its IPC call) in `mode`, again every 2 s (20
 * tries at most) until every one is: a task server looks up agents it does not know at a
 * bounded rate (TASK_LOOKUP_LIMITED), so a first attach of thousands leaves some out.
 * Returns the last answer ({attached}).
 */
export async function attachAll(call, count, mode) {
  let a = { attached: 0 };
  for (let tries = 0; tries < 20 && a.attached < count; tries++) {
    if (tries > 0) await new Promise((r) => setTimeout(r, 2_000));
    a = await call('attach', { mode });
  }
  return a;
}
