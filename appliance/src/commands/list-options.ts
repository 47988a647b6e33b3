import { UsageError } from '../errors.js';

interface ArgToken {
  kind: 'option' | 'positional' | 'option-terminator';
  name?: string;
  value?: string | undefined;
}

/**
 * Splits parseArgs tokens into the command's positionals and the values of its list
 * options (`lists`): `--role a --role b`, `--role a,b` and `--role a b` all give `[a, b]`
 * (positionals right after a list option are more of its values).
 */
export function listOptions<L extends string>(
  tokens: readonly ArgToken[],
  lists: readonly L[],
): { positionals: string[]; lists: Record<L, string[] | undefined> } {
  const positionals: string[] = [];
  const out = Object.fromEntries(lists.map((l) => [l, undefined])) as Record<L, string[] | undefined>;
  let current: L | undefined;
  const add = (list: L, value: string): void => {
    out[list] = [...(out[list] ?? []), ...value.split(',').filter((v) => v !== '')];
  };
  for (const t of tokens) {
    if (t.kind === 'option') {
      current = (lists as readonly string[]).includes(t.name ?? '') ? (t.name as L) : undefined;
      if (current !== undefined && t.value !== undefined) add(current, t.value);
    } else if (t.kind === 'positional' && t.value !== undefined) {
      if (current !== undefined) add(current, t.value);
      else positionals.push(t.value);
    } else {
      current = undefined;
    }
  }
  return { positionals, lists: out };
}

/** Exactly `names.length` positionals, else a usage error naming the first one missing. */
export function expectPositionals(positionals: readonly string[], names: readonly string[], command: string): string[] {
  if (positionals.length < names.length) throw new UsageError(`missing ${names[positionals.length]}`, command);
  if (positionals.length > names.length) throw new UsageError(`unexpected argument '${positionals[names.length]}' (expected ${names.join(' ')})`, command);
  return [...positionals];
}
