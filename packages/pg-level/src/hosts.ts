/**
 * node-postgres takes one host per connection string; libpq takes several
 * (`postgres://u@db1:5432,db2:5432/outpost?target_session_attrs=read-write`) and picks the
 * first that answers (and, with read-write, is not a standby). This splits such a URL into
 * one URL per host, and says whether a read-write server is required.
 */
export function splitHosts(url: string): { urls: string[]; readWrite: boolean } {
  const m = /^(postgres(?:ql)?:\/\/)([^@/?#]*@)?([^/?#]*)(.*)$/.exec(url);
  if (!m) return { urls: [url], readWrite: false };
  const [, scheme, auth = '', hosts, rest = ''] = m as unknown as [string, string, string | undefined, string, string | undefined];
  const q = rest.indexOf('?');
  const path = q < 0 ? rest : rest.slice(0, q);
  const params = new URLSearchParams(q < 0 ? '' : rest.slice(q + 1));
  const attrs = params.get('target_session_attrs');
  params.delete('target_session_attrs');
  const query = params.size > 0 ? `?${params}` : '';
  const list = hosts.split(',').filter((h) => h !== '');
  return { urls: (list.length > 0 ? list : ['']).map((h) => `${scheme}${auth}${h}${path}${query}`), readWrite: attrs === 'read-write' || attrs === 'primary' };
}
