import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { applyEnvOverrides, CommonErrors, loadConfig, OutpostError, readConfigFile, validateConfig, z } from '@outpost/common';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/config/${name}`, import.meta.url));

const Schema = z.strictObject({
  core: z
    .strictObject({
      http: z
        .strictObject({
          host: z.string().default('0.0.0.0'),
          port: z.number().int().min(0).max(65535).default(8080),
        })
        .prefault({}),
      dataDir: z.string().default('/var/lib/outpost'),
      tags: z.array(z.string()).default([]),
      debug: z.boolean().default(false),
    })
    .prefault({}),
});

const FROM_FILE = { core: { http: { host: '127.0.0.1', port: 9000 }, dataDir: '/srv/outpost', tags: ['edge', 'lab'] } };

/** Runs `fn`, expecting an OutpostError; returns it. */
async function caught(fn: () => unknown): Promise<OutpostError> {
  try {
    await fn();
  } catch (err) {
    expect(err).toBeInstanceOf(OutpostError);
    return err as OutpostError;
  }
  throw new Error('expected an OutpostError, nothing was thrown');
}

describe('readConfigFile', () => {
  it('reads a YAML file', async () => {
    expect(await readConfigFile(fixture('valid.yaml'))).toEqual(FROM_FILE);
  });

  it('reads a JSON file to the same tree as the equivalent YAML', async () => {
    expect(await readConfigFile(fixture('valid.json'))).toEqual(FROM_FILE);
  });

  it('parses a .json file strictly as JSON, not as YAML', async () => {
    const err = await caught(() => readConfigFile(fixture('yaml-in.json')));
    expect(err.code).toBe(CommonErrors.CONFIG_PARSE);
    expect(err.message).toContain('yaml-in.json');
  });

  it.each(['empty.yaml', 'comments-only.yaml'])('reads an empty YAML file (%s) as an empty config', async (name) => {
    expect(await readConfigFile(fixture(name))).toEqual({});
  });

  it.each(['empty.json', 'whitespace.json'])('reads an empty JSON file (%s) as an empty config', async (name) => {
    expect(await readConfigFile(fixture(name))).toEqual({});
  });

  it.each(['top-level-list.yaml', 'top-level-scalar.yaml', 'top-level-array.json'])(
    'rejects a file whose top level is not a mapping (%s) with COMMON_CONFIG_PARSE naming the file',
    async (name) => {
      const err = await caught(() => readConfigFile(fixture(name)));
      expect(err.code).toBe(CommonErrors.CONFIG_PARSE);
      expect(err.message).toContain(fixture(name));
      expect(err.message).toMatch(/top level must be a mapping/);
    },
  );

  it('rejects malformed YAML with COMMON_CONFIG_PARSE naming the file and keeping the cause', async () => {
    const err = await caught(() => readConfigFile(fixture('broken.yaml')));
    expect(err.code).toBe(CommonErrors.CONFIG_PARSE);
    expect(err.message).toContain('broken.yaml');
    expect(err.cause).toBeInstanceOf(Error);
  });

  it('rejects a YAML mapping with a duplicate key', async () => {
    const err = await caught(() => readConfigFile(fixture('duplicate-key.yaml')));
    expect(err.code).toBe(CommonErrors.CONFIG_PARSE);
  });

  it('fails with COMMON_CONFIG_FILE_UNREADABLE naming a missing file', async () => {
    const err = await caught(() => readConfigFile(fixture('does-not-exist.yaml')));
    expect(err.code).toBe(CommonErrors.CONFIG_FILE_UNREADABLE);
    expect(err.message).toContain('does-not-exist.yaml');
    expect((err.cause as NodeJS.ErrnoException).code).toBe('ENOENT');
  });

  it('reads a __proto__ key as a plain key without polluting Object.prototype', async () => {
    const raw = await readConfigFile(fixture('proto.yaml'));
    expect(Object.getPrototypeOf(raw)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(raw)).toEqual(['__proto__', 'core']);
    // ...and a strict schema refuses it as an unknown key.
    const err = await caught(() => validateConfig(Schema, raw, { file: 'proto.yaml' }));
    expect(err.details?.problems).toEqual([{ path: '(top level)', message: "unknown key(s) '__proto__'" }]);
  });
});

describe('applyEnvOverrides', () => {
  it('sets a nested key from OUTPOST_CORE__HTTP__PORT=8080, parsing the number', () => {
    expect(applyEnvOverrides({}, { OUTPOST_CORE__HTTP__PORT: '8080' })).toEqual({ core: { http: { port: 8080 } } });
  });

  it('turns snake_case segments into camelCase keys', () => {
    const out = applyEnvOverrides({}, { OUTPOST_CORE__DATA_DIR: '/srv', OUTPOST_CORE__MAX_UPLOAD_SIZE_2: '1' });
    expect(out).toEqual({ core: { dataDir: '/srv', maxUploadSize2: 1 } });
  });

  it('parses JSON values (booleans, arrays, objects, null) and keeps everything else as the raw string', () => {
    const out = applyEnvOverrides(
      {},
      {
        OUTPOST_A__BOOL: 'true',
        OUTPOST_A__LIST: '["x", 2]',
        OUTPOST_A__OBJ: '{"k": {"n": 1}}',
        OUTPOST_A__NULL: 'null',
        OUTPOST_A__PADDED: ' 42 ',
        OUTPOST_A__TEXT: 'hello world',
        OUTPOST_A__HOST: '10.0.0.1',
        OUTPOST_A__EMPTY: '',
      },
    );
    expect(out).toEqual({
      a: { bool: true, list: ['x', 2], obj: { k: { n: 1 } }, null: null, padded: 42, text: 'hello world', host: '10.0.0.1', empty: '' },
    });
  });

  it('overrides a value from the file and keeps its siblings', () => {
    const out = applyEnvOverrides(structuredClone(FROM_FILE), { OUTPOST_CORE__HTTP__PORT: '1234' });
    expect(out).toEqual({ core: { ...FROM_FILE.core, http: { host: '127.0.0.1', port: 1234 } } });
  });

  it('replaces a scalar or array on the way with a mapping', () => {
    const out = applyEnvOverrides({ core: { http: 'x', tags: ['a'] } }, { OUTPOST_CORE__HTTP__PORT: '1', OUTPOST_CORE__TAGS__FIRST: 'b' });
    expect(out).toEqual({ core: { http: { port: 1 }, tags: { first: 'b' } } });
  });

  it('applies overrides in name order, so a deeper variable wins over a whole-object one', () => {
    const env = { OUTPOST_CORE__HTTP__PORT: '2', OUTPOST_CORE__HTTP: '{"port": 1, "host": "h"}' };
    expect(applyEnvOverrides({}, env)).toEqual({ core: { http: { port: 2, host: 'h' } } });
  });

  it('ignores variables without "__" (OUTPOST_URL, OUTPOST_TOKEN, OUTPOST_E2E) and other prefixes', () => {
    const env = { OUTPOST_URL: 'http://x', OUTPOST_TOKEN: 't', OUTPOST_E2E: 'required', OTHER_CORE__HTTP__PORT: '1', PATH: '/bin' };
    expect(applyEnvOverrides({ keep: 1 }, env)).toEqual({ keep: 1 });
  });

  it('honours a custom prefix', () => {
    expect(applyEnvOverrides({}, { TEST_CORE__PORT: '1', OUTPOST_CORE__PORT: '2' }, 'TEST_')).toEqual({ core: { port: 1 } });
  });

  it('ignores names with prototype-polluting or empty segments', () => {
    const env = {
      OUTPOST_CONSTRUCTOR__PROTOTYPE__POLLUTED: '1',
      OUTPOST_CORE__CONSTRUCTOR__POLLUTED: '1',
      OUTPOST_CORE__PROTOTYPE__POLLUTED: '1',
      OUTPOST___PROTO____POLLUTED: '1',
      OUTPOST_CORE____PORT: '1',
      OUTPOST_CORE__: '1',
    };
    const out = applyEnvOverrides({ core: {} }, env);
    expect(out).toEqual({ core: {} });
    expect(Object.getOwnPropertyNames(out.core)).toEqual([]);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect((Object.prototype as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('returns a new object and leaves its input untouched', () => {
    const raw = structuredClone(FROM_FILE);
    const out = applyEnvOverrides(raw, { OUTPOST_CORE__HTTP__PORT: '1' });
    expect(raw).toEqual(FROM_FILE);
    expect(out).not.toBe(raw);
  });
});

describe('validateConfig', () => {
  it('fills in defaults from the schema', () => {
    expect(validateConfig(Schema, {}, { file: 'x.yaml' })).toEqual({
      core: { http: { host: '0.0.0.0', port: 8080 }, dataDir: '/var/lib/outpost', tags: [], debug: false },
    });
  });

  it('lists every bad path in one COMMON_CONFIG_INVALID error that names the file', async () => {
    const file = fixture('many-problems.yaml');
    const raw = await readConfigFile(file);
    const err = await caught(() => validateConfig(Schema, raw, { file }));
    expect(err.code).toBe(CommonErrors.CONFIG_INVALID);
    const problems = err.details?.problems as { path: string; message: string }[];
    expect(problems.map((p) => p.path).sort()).toEqual(['(top level)', 'core.http', 'core.http.port', 'core.tags.1']);
    expect(problems.find((p) => p.path === 'core.http')?.message).toBe("unknown key(s) 'tls'");
    expect(problems.find((p) => p.path === '(top level)')?.message).toBe("unknown key(s) 'tftp'");
    expect(err.details?.file).toBe(file);
    expect(err.message).toContain(`invalid config (${file})`);
    for (const p of problems) expect(err.message).toContain(`  - ${p.path}: ${p.message}`);
  });

  it('returns a deeply frozen config', () => {
    const config = validateConfig(Schema, structuredClone(FROM_FILE), { file: 'x.yaml' });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.core)).toBe(true);
    expect(Object.isFrozen(config.core.http)).toBe(true);
    expect(Object.isFrozen(config.core.tags)).toBe(true);
    expect(() => {
      (config.core.http as { port: number }).port = 1;
    }).toThrow(TypeError);
    expect(() => (config.core.tags as string[]).push('x')).toThrow(TypeError);
  });
});

describe('loadConfig', () => {
  it('reads the file, applies env overrides over it, validates and freezes', async () => {
    const config = await loadConfig(Schema, { file: fixture('valid.yaml'), env: { OUTPOST_CORE__HTTP__PORT: '8443', OUTPOST_CORE__DEBUG: 'true' } });
    expect(config.core).toEqual({ http: { host: '127.0.0.1', port: 8443 }, dataDir: '/srv/outpost', tags: ['edge', 'lab'], debug: true });
    expect(Object.isFrozen(config.core.http)).toBe(true);
  });

  it('without a file, starts from the given defaults and names "<defaults>" in errors', async () => {
    const ok = await loadConfig(Schema, { defaults: { core: { dataDir: '/d' } }, env: {} });
    expect(ok.core.dataDir).toBe('/d');
    const err = await caught(() => loadConfig(Schema, { env: { OUTPOST_CORE__HTTP__PORT: '"eighty"' } }));
    expect(err.code).toBe(CommonErrors.CONFIG_INVALID);
    expect(err.message).toContain('<defaults>');
    expect(err.details?.problems).toEqual([{ path: 'core.http.port', message: expect.any(String) }]);
  });

  it('reports an env override that breaks the schema under the file it was applied to', async () => {
    const file = fixture('valid.yaml');
    const err = await caught(() => loadConfig(Schema, { file, env: { OUTPOST_CORE__HTTP__PORT: '70000', OUTPOST_CORE__NOPE: '1' } }));
    expect(err.details?.file).toBe(file);
    expect((err.details?.problems as { path: string }[]).map((p) => p.path).sort()).toEqual(['core', 'core.http.port']);
  });
});
