// Examples for the OpenAPI document, built from the JSON Schemas it holds: a schema's own
// `examples` first (the resources in this folder carry hand-written ones), else a value that
// fits its type, format, enum and bounds. test/unit/openapi.test.ts parses every example with the
// route's zod schema, so an example that a schema change makes invalid fails there.
import { EXAMPLE } from './common.ts';

type Schema = Record<string, unknown>;

/** Ids by property name, so an example's references line up with the resource examples. */
const UUID_BY_NAME: Record<string, string> = {
  workflow_id: EXAMPLE.workflowId,
  device_id: EXAMPLE.deviceId,
  task_id: EXAMPLE.taskId,
  id: EXAMPLE.taskId,
};

/** Sample strings by property name, where a type alone would give a poor example. */
const BY_NAME: Record<string, string> = {
  email: 'ada@example.com',
  password: 'correct horse battery',
  name: 'Example',
  device_name: 'Office PC',
  device_id: 'pc-office',
  message: 'Backup finished',
  refresh_token: 'rt_q8Yx3v0bW9kqLrR2mZ7c1A',
  reason: 'Paused from the dashboard',
  comment: 'Looks right',
  description: 'Echoes a greeting on the PC',
  category: 'demo',
  os_type: 'windows',
  os_version: '11',
  app_version: '1.4.0',
  idempotency_key: 'nightly-2026-03-02',
  timezone: 'Europe/Paris',
};

const BY_FORMAT: Record<string, string> = {
  uuid: '6f1d2c3b-4a5e-4d7f-8a9b-0c1d2e3f4a5b',
  'date-time': '2026-03-02T09:15:00.000Z',
  date: '2026-03-02',
  email: 'ada@example.com',
  uri: 'https://example.com/',
};

export interface ExampleOptions {
  /** Resolves `$ref`s (`#/components/schemas/X`). */
  resolve(ref: string): Schema | undefined;
  /** Request side: optional properties with a `pattern` are left out (a made-up value would not match). */
  input?: boolean;
}

export function exampleOf(schema: Schema | undefined, opts: ExampleOptions, name = '', depth = 0): unknown {
  if (!schema || depth > 12) return null;
  if (Array.isArray(schema.examples) && schema.examples.length) return schema.examples[0];
  if ('const' in schema) return schema.const;
  if ('default' in schema) return schema.default;
  if (typeof schema.$ref === 'string') return exampleOf(opts.resolve(schema.$ref), opts, name, depth + 1);
  if (Array.isArray(schema.enum)) return schema.enum[0];
  for (const key of ['anyOf', 'oneOf'] as const) {
    const options = schema[key] as Schema[] | undefined;
    if (options?.length) return exampleOf(options.find((o) => o.type !== 'null') ?? options[0], opts, name, depth + 1);
  }
  if (Array.isArray(schema.allOf)) {
    return Object.assign({}, ...(schema.allOf as Schema[]).map((s) => exampleOf(s, opts, name, depth + 1)));
  }
  const type = Array.isArray(schema.type) ? (schema.type as string[]).find((t) => t !== 'null') : schema.type;
  switch (type) {
    case 'object': {
      const props = (schema.properties ?? {}) as Record<string, Schema>;
      const required = new Set((schema.required as string[] | undefined) ?? []);
      const out: Record<string, unknown> = {};
      for (const [key, prop] of Object.entries(props)) {
        if (opts.input && !required.has(key) && typeof prop.pattern === 'string') continue;
        out[key] = exampleOf(prop, opts, key, depth + 1);
      }
      return out;
    }
    case 'array': {
      const min = typeof schema.minItems === 'number' ? schema.minItems : 1;
      return Array.from({ length: Math.max(1, min) }, () => exampleOf(schema.items as Schema, opts, name, depth + 1));
    }
    case 'string': {
      const fromFormat = schema.format === 'uuid' && UUID_BY_NAME[name]
        ? UUID_BY_NAME[name]
        : typeof schema.format === 'string' ? BY_FORMAT[schema.format] : undefined;
      const s = fromFormat ?? BY_NAME[name] ?? (name ? name.replaceAll('_', ' ') : 'text');
      const min = typeof schema.minLength === 'number' ? schema.minLength : 0;
      const max = typeof schema.maxLength === 'number' ? schema.maxLength : Infinity;
      return s.padEnd(min, '.').slice(0, max);
    }
    case 'integer':
    case 'number': {
      const min = typeof schema.minimum === 'number' ? schema.minimum : typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum + 1 : 1;
      const max = typeof schema.maximum === 'number' ? schema.maximum : Infinity;
      return Math.min(Math.max(min, 1), max);
    }
    case 'boolean':
      return true;
    case 'null':
      return null;
    default:
      return {};
  }
}
