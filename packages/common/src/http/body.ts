import type { IncomingMessage } from 'node:http';
import getRawBody from 'raw-body';
import type { z } from 'zod';
import { CommonErrors, OutpostError } from '../errors.js';
import type { AppContext } from './context.js';

/** Default request body limit. */
export const DEFAULT_BODY_LIMIT = 1024 * 1024;

/** Turns zod issues into `{ path, message }` lines for an error's details. */
export function zodProblems(error: z.ZodError): { path: string; message: string }[] {
  return error.issues.map((i) => ({
    path: i.path.map(String).join('.') || '(body)',
    message: i.code === 'unrecognized_keys' ? `unknown field(s) ${i.keys.map((k) => `'${k}'`).join(', ')}` : i.message,
  }));
}

/** Validates `value` (a parsed body, query or params) or throws `COMMON_VALIDATION` (400). */
export function validate<S extends z.ZodType>(schema: S, value: unknown, what = 'request'): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const problems = zodProblems(result.error);
  throw new OutpostError(
    CommonErrors.VALIDATION,
    `invalid ${what}: ${problems.map((p) => `${p.path}: ${p.message}`).join('; ')}`,
    { status: 400, details: { problems } },
  );
}

/**
 * Reads a request body as UTF-8 text, at most `limit` bytes (`length`: the declared
 * Content-Length, refused at once when over the limit). Errors: 413
 * `COMMON_BODY_TOO_LARGE`, 400 `COMMON_BAD_JSON` when the read itself fails.
 */
export async function readBodyText(req: IncomingMessage, limit: number, length?: number): Promise<string> {
  try {
    return await getRawBody(req, { limit, length, encoding: 'utf8' });
  } catch (err) {
    const type = (err as { type?: string }).type;
    if (type === 'entity.too.large') {
      throw new OutpostError(CommonErrors.BODY_TOO_LARGE, `the request body is larger than ${limit} bytes`, { status: 413 });
    }
    throw new OutpostError(CommonErrors.BAD_JSON, `cannot read the request body: ${(err as Error).message}`, { status: 400, cause: err });
  }
}

/** Parses a JSON body's text (empty = `{}`) and validates it. Errors: 400 `COMMON_BAD_JSON` / `COMMON_VALIDATION`. */
export function parseJsonBody<S extends z.ZodType>(schema: S, text: string): z.output<S> {
  let parsed: unknown = {};
  if (text.trim() !== '') {
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new OutpostError(CommonErrors.BAD_JSON, `the request body is not valid JSON: ${(err as Error).message}`, { status: 400 });
    }
  }
  return validate(schema, parsed, 'request body');
}

/**
 * Reads a JSON body (size-limited, `application/json` only) and validates it against
 * `schema`. An empty body is `{}`. Errors: 413 `COMMON_BODY_TOO_LARGE`,
 * 415 `COMMON_UNSUPPORTED_MEDIA_TYPE`, 400 `COMMON_BAD_JSON` / `COMMON_VALIDATION`.
 */
export async function readJson<S extends z.ZodType>(ctx: AppContext, schema: S, limit = ctx.app.context.bodyLimit ?? DEFAULT_BODY_LIMIT): Promise<z.output<S>> {
  const length = ctx.request.length;
  let text = '';
  if (length !== 0 && (length || ctx.request.headers['transfer-encoding'])) {
    if (!ctx.is('application/json', '+json')) {
      throw new OutpostError(CommonErrors.UNSUPPORTED_MEDIA_TYPE, 'the request body must be application/json', { status: 415 });
    }
    text = await readBodyText(ctx.req, limit, length);
    (ctx.state as { bodyText?: string }).bodyText = text; // the core's audit log records it (redacted)
  }
  return parseJsonBody(schema, text);
}
