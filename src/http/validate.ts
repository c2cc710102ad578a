// Parse at the edge: zod schemas turn bad input into 400 code 1001 with each field's path.
import type { z } from 'zod';
import { errors, type FieldError } from './errors.ts';

export function fieldErrors(err: z.ZodError): FieldError[] {
  return err.issues.map((i) => ({
    path: i.path.length ? i.path.map(String).join('.') : '(root)',
    message: i.message,
  }));
}

export function parse<S extends z.ZodType>(schema: S, input: unknown, where = 'body'): z.infer<S> {
  const res = schema.safeParse(input);
  if (!res.success) throw errors.invalid(`invalid ${where}`, fieldErrors(res.error));
  return res.data;
}
