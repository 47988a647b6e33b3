/**
 * Prometheus exposition text → `name{labels}` → value (samples only; `# HELP`/`# TYPE`
 * lines skipped), for tests that scrape a service's `/metrics`.
 */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

/**
 * Sum of the samples of metric `name` whose label set contains `labels` (e.g.
 * `'status="200"'`; every sample of it when empty).
 */
export function metricTotal(samples: ReadonlyMap<string, number>, name: string, labels = ''): number {
  let n = 0;
  for (const [k, v] of samples) if ((k === name && labels === '') || (k.startsWith(`${name}{`) && k.includes(labels))) n += v;
  return n;
}
