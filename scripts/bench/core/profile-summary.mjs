// Summarises a V8 .cpuprofile (from `node --cpu-prof`): self time by function, top N.
import { readFile } from 'node:fs/promises';

export async function summariseProfile(file, top = 15) {
  const profile = JSON.parse(await readFile(file, 'utf8'));
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const selfUs = new Map();
  const counts = new Map();
  for (const id of profile.samples) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples.length || 1;
  for (const [id, n] of counts) {
    const node = byId.get(id);
    const f = node.callFrame;
    const where = f.url ? `${f.url.replace(/^.*\/(node_modules|packages)\//, '$1/')}:${f.lineNumber + 1}` : '';
    const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
    selfUs.set(key, (selfUs.get(key) ?? 0) + n);
  }
  return [...selfUs.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, top)
    .map(([fn, n]) => ({ fn, selfPct: Math.round((n / total) * 1000) / 10 }));
}
