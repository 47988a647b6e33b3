import { describe, expect, it } from 'vitest';
import { coreUrls, z } from '../src/config-schema.js';
import { isOneOfCoreUrls } from '../src/site-link/identity.js';

describe('coreUrls', () => {
  it('takes one URL, several separated by commas, or a list and gives a list, trailing slashes and repeats dropped', () => {
    expect(coreUrls.parse('http://core-a:8080/')).toEqual(['http://core-a:8080']);
    expect(coreUrls.parse(['http://core-a:8080', 'https://core-b/base/', 'http://core-a:8080/'])).toEqual(['http://core-a:8080', 'https://core-b/base']);
    expect(coreUrls.parse('http://core-a:8080, http://core-b:8080/')).toEqual(['http://core-a:8080', 'http://core-b:8080']);
  });

  it('rejects an empty list, a URL that is not http(s) and a list of more than 16, naming the entry', () => {
    const schema = z.object({ coreUrl: coreUrls });
    expect(schema.safeParse({ coreUrl: [] }).success).toBe(false);
    const bad = schema.safeParse({ coreUrl: ['http://ok', 'ftp://no'] });
    expect(bad.success).toBe(false);
    expect(bad.error?.issues.some((i) => i.path.join('.') === 'coreUrl.1' || i.path.join('.') === 'coreUrl')).toBe(true);
    expect(schema.safeParse({ coreUrl: 'not a url' }).success).toBe(false);
    expect(schema.safeParse({ coreUrl: ' , ' }).success).toBe(false);
    expect(schema.safeParse({ coreUrl: Array.from({ length: 17 }, (_, i) => `http://c${i}`) }).success).toBe(false);
  });
});

describe('isOneOfCoreUrls', () => {
  it('is true for any URL of the list, trailing slashes aside, and false for another', () => {
    expect(isOneOfCoreUrls('http://core-a:8080/', ['http://core-b:8080', 'http://core-a:8080'])).toBe(true);
    expect(isOneOfCoreUrls('http://core-c:8080', ['http://core-b:8080', 'http://core-a:8080'])).toBe(false);
  });
});
