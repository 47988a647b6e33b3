/** Range options as abstract-level hands them to the private API (already encoded). */
export interface RangeOptions {
  gt?: Buffer;
  gte?: Buffer;
  lt?: Buffer;
  lte?: Buffer;
}

/**
 * The SQL condition of a range over `key`, with its parameters numbered from `first`.
 * Keys and bounds are bytea: PostgreSQL compares them bytewise, as LevelDB does.
 */
export function rangeWhere(o: RangeOptions, first = 1): { sql: string; params: Buffer[] } {
  const parts: string[] = [];
  const params: Buffer[] = [];
  const add = (op: string, v: Buffer | undefined) => {
    if (v === undefined) return;
    params.push(v);
    parts.push(`key ${op} $${first + params.length - 1}`);
  };
  // As in LevelDB: gte wins over gt, lte over lt.
  if (o.gte !== undefined) add('>=', o.gte);
  else add('>', o.gt);
  if (o.lte !== undefined) add('<=', o.lte);
  else add('<', o.lt);
  return { sql: parts.length > 0 ? parts.join(' AND ') : 'TRUE', params };
}
