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
export const MAX_INPUT_VALUES = 20_000;

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

/**
 * The same caps as unstorableInput (depth, keys per object, items per array, values in all),
 * checked on JSON text before it is parsed: one pass over the characters, string contents
 * skipped with indexOf, no value built. A body that would pass the caps costs its parse; one that
 * would not is refused for the price of this scan (a 1 MiB object of 96k keys, or 100k nested
 * brackets, never reaches JSON.parse). Counts exactly as unstorableInput does, so whatever this
 * accepts the walk after the parse accepts too, but for unstorable strings, which only it sees.
 * Malformed JSON is left for JSON.parse to report.
 */
export function jsonShapeProblem(text: string): FieldError | null {
  // Per open container: whether it is an array, its key or item count, whether it is empty, and
  // for an object where its current key's string starts and ends (read only to name a fault).
  const isArray: boolean[] = [];
  const counts: number[] = [];
  const empty: boolean[] = [];
  const keyFrom: number[] = [];
  const keyTo: number[] = [];
  let lastString = [0, 0];
  /** The path of the container at `depth` (the current element of each one around it). */
  const pathTo = (depth: number) => {
    const parts: string[] = [];
    for (let d = 0; d < depth; d++) {
      if (isArray[d]) parts.push(String(counts[d] - 1));
      else parts.push(JSON.parse(text.slice(keyFrom[d], keyTo[d] + 1)) as string);
    }
    return parts.length ? parts.join('.') : '(root)';
  };
  let values = 1;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 32 || c === 10 || c === 13 || c === 9) continue;
    const top = isArray.length - 1;
    if (top >= 0 && isArray[top] && empty[top] && c !== 93 /* ] */) {
      empty[top] = false;
      counts[top] = 1;
      if (++values > MAX_INPUT_VALUES) return { path: '(root)', message: `more than ${MAX_INPUT_VALUES} values in all` };
    }
    switch (c) {
      case 34: { // a string: jump to its closing quote (one not escaped by an odd run of backslashes)
        let j = text.indexOf('"', i + 1);
        while (j !== -1) {
          let k = j - 1;
          while (text.charCodeAt(k) === 92) k--;
          if ((j - k - 1) % 2 === 0) break;
          j = text.indexOf('"', j + 1);
        }
        if (j === -1) return null; // unterminated: JSON.parse says so
        lastString = [i, j];
        i = j;
        break;
      }
      case 123: // {
      case 91: // [
        if (isArray.length >= MAX_INPUT_DEPTH) return { path: pathTo(isArray.length), message: `nested deeper than ${MAX_INPUT_DEPTH} levels` };
        isArray.push(c === 91);
        counts.push(0);
        empty.push(true);
        keyFrom.push(0);
        keyTo.push(0);
        break;
      case 125: // }
      case 93: // ]
        isArray.pop();
        counts.pop();
        empty.pop();
        keyFrom.pop();
        keyTo.pop();
        break;
      case 58: // : one more key of the object, and its value
        if (top >= 0 && !isArray[top]) {
          if (++counts[top] > MAX_INPUT_KEYS) return { path: pathTo(top), message: `more than ${MAX_INPUT_KEYS} keys` };
          if (++values > MAX_INPUT_VALUES) return { path: '(root)', message: `more than ${MAX_INPUT_VALUES} values in all` };
          keyFrom[top] = lastString[0];
          keyTo[top] = lastString[1];
        }
        break;
      case 44: // , one more item of the array
        if (top >= 0 && isArray[top]) {
          if (++counts[top] > MAX_INPUT_ITEMS) return { path: pathTo(top), message: `more than ${MAX_INPUT_ITEMS} items` };
          if (++values > MAX_INPUT_VALUES) return { path: '(root)', message: `more than ${MAX_INPUT_VALUES} values in all` };
        }
        break;
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
