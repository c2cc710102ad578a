// Parse at the edge: zod schemas turn bad input into 400 code 1001 with each field's path.
import type { z } from 'zod';
import { errors, type FieldError } from './errors.ts';

export function fieldErrors(err: z.ZodError): FieldError[] {
  return err.issues.map((i) => ({
    path: i.path.length ? i.path.map(String).join('.') : '(root)',
    message: i.message,
  }));
}

/** Deepest nesting accepted anywhere in a request's input (storing deeper JSON overflows the stack). */
export const MAX_INPUT_DEPTH = 64;
/** Most keys in one object of a request's input. */
export const MAX_INPUT_KEYS = 1_000;
/** Most items in one array of a request's input (a loop's literal items are the longest). */
export const MAX_INPUT_ITEMS = 10_000;
/**
 * Most values (objects, arrays, strings, numbers...) in one request's input. Validating and
 * storing costs per value, so this bounds what any body can cost however it is shaped; the
 * largest legitimate input, a 500-node definition, stays well below it.
 */
export const MAX_INPUT_VALUES = 50_000;

/** NUL (PostgreSQL text and jsonb cannot hold it) or a UTF-16 surrogate without its pair (not Unicode). */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The first reason the input cannot be taken, checked before any schema sees it: a string (key
 * or value) the database cannot store, nesting over MAX_INPUT_DEPTH, an object or array over its
 * cap, or more than MAX_INPUT_VALUES values in all. Such input is a 400 here, at a cost bounded by
 * the caps, rather than a 500 from PostgreSQL or seconds of schema work later. Iterative, so
 * hostile nesting cannot overflow the stack; it stops at the first fault.
 */
export function unstorableInput(input: unknown): FieldError | null {
  // Paths are built only for the one fault reported: each value carries a link to its parent.
  type Where = { key: string; up: Where | null; depth: number } | null;
  const at = (w: Where, key?: string) => {
    const parts: string[] = key === undefined ? [] : [key];
    for (let x = w; x; x = x.up) parts.push(x.key);
    return parts.length ? parts.reverse().join('.') : '(root)';
  };
  const todo: [unknown, Where][] = [[input, null]];
  let values = 0;
  while (todo.length) {
    const [value, where] = todo.pop()!;
    if (++values > MAX_INPUT_VALUES) return { path: '(root)', message: `more than ${MAX_INPUT_VALUES} values in all` };
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return { path: at(where), message: 'contains a NUL character or an unpaired surrogate' };
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    const depth = where ? where.depth : 0;
    if (depth >= MAX_INPUT_DEPTH) return { path: at(where), message: `nested deeper than ${MAX_INPUT_DEPTH} levels` };
    if (Array.isArray(value)) {
      if (value.length > MAX_INPUT_ITEMS) return { path: at(where), message: `more than ${MAX_INPUT_ITEMS} items` };
      // Reversed onto the stack: the first fault in document order is the one reported.
      for (let i = value.length - 1; i >= 0; i--) todo.push([value[i], { key: String(i), up: where, depth: depth + 1 }]);
      continue;
    }
    // Counted before anything copies them.
    let count = 0;
    for (const k in value) if (Object.hasOwn(value, k) && ++count > MAX_INPUT_KEYS) return { path: at(where), message: `more than ${MAX_INPUT_KEYS} keys` };
    const keys = Object.keys(value);
    for (const k of keys) if (UNSTORABLE.test(k)) return { path: at(where, k), message: 'key contains a NUL character or an unpaired surrogate' };
    for (let i = keys.length - 1; i >= 0; i--) {
      todo.push([(value as Record<string, unknown>)[keys[i]], { key: keys[i], up: where, depth: depth + 1 }]);
    }
  }
  return null;
}

export function parse<S extends z.ZodType>(schema: S, input: unknown, where = 'body'): z.infer<S> {
  const bad = unstorableInput(input);
  if (bad) throw errors.invalid(`invalid ${where}`, [bad]);
  const res = schema.safeParse(input);
  if (!res.success) throw errors.invalid(`invalid ${where}`, fieldErrors(res.error));
  return res.data;
}
