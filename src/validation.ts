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

/** NUL (PostgreSQL text and jsonb cannot hold it) or a UTF-16 surrogate without its pair (not Unicode). */
const UNSTORABLE = /\u0000|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/**
 * The first string (key or value) the database cannot store, or nesting over MAX_INPUT_DEPTH:
 * such input is a 400 here rather than a 500 from PostgreSQL or JSON.stringify later. Iterative,
 * so hostile nesting cannot overflow the stack.
 */
export function unstorableInput(input: unknown): FieldError | null {
  const at = (path: string[]) => (path.length ? path.join('.') : '(root)');
  const todo: [unknown, string[]][] = [[input, []]];
  while (todo.length) {
    const [value, path] = todo.pop()!;
    if (typeof value === 'string') {
      if (UNSTORABLE.test(value)) return { path: at(path), message: 'contains a NUL character or an unpaired surrogate' };
      continue;
    }
    if (!value || typeof value !== 'object') continue;
    if (path.length >= MAX_INPUT_DEPTH) return { path: at(path), message: `nested deeper than ${MAX_INPUT_DEPTH} levels` };
    const entries = Object.entries(value);
    const badKey = entries.find(([k]) => UNSTORABLE.test(k));
    if (badKey) return { path: at([...path, badKey[0]]), message: 'key contains a NUL character or an unpaired surrogate' };
    // Reversed onto the stack: the first fault in document order is the one reported.
    for (let i = entries.length - 1; i >= 0; i--) todo.push([entries[i][1], [...path, entries[i][0]]]);
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
