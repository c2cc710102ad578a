// The command line of the tools in scripts/: node's util.parseArgs reads it (`--name value`,
// `--name=value`, `--flag` / `--no-flag`, positionals), each option falls back to its
// environment variable, and a zod schema per option checks and converts the value. A mistake
// exits 2 with a message and a hint to --help; --help prints the usage and the options table.
import { parseArgs } from 'node:util';
import { z } from 'zod';

export interface OptionSpec<T extends z.ZodType = z.ZodType> {
  /** Checks and converts the text given (a boolean for a flag; undefined when absent). */
  schema: T;
  help: string;
  /** A switch: `--name` / `--no-name`, no value. */
  flag?: boolean;
  /** Environment variable read when the option is absent. */
  env?: string;
  /** Shown in the usage: `--name <placeholder>`. */
  placeholder?: string;
}

export type Spec = Record<string, OptionSpec>;
export type Options<S extends Spec> = { [K in keyof S]: z.output<S[K]['schema']> };

export interface Tool<S extends Spec> {
  /** The program name in messages. */
  name: string;
  /** The usage text above the options table. */
  usage: string;
  options: S;
}

export interface CommandLine<S extends Spec> {
  options: Options<S>;
  positionals: string[];
}

/** A mistake in the command line: printed with a hint to --help, exit code 2. */
export class UsageError extends Error {}

/** Schemas for option values, which arrive as text. */
export const arg = {
  text: () => z.string().trim().min(1, 'must not be empty'),
  int: (min = Number.MIN_SAFE_INTEGER, max = Number.MAX_SAFE_INTEGER) =>
    z.string().trim().regex(/^-?\d+$/, 'must be a whole number').transform(Number).pipe(bounded(min, max)),
  number: (min = -Infinity, max = Infinity) =>
    z.string().trim().min(1, 'must be a number').transform(Number)
      .pipe(z.number({ error: 'must be a number' }).refine(Number.isFinite, 'must be a number').pipe(bounded(min, max))),
  /** `20..200` (or `20-200`, or one number for both ends) as [low, high]. */
  range: (min = -Infinity, max = Infinity) =>
    z.string()
      .regex(/^\s*\d+(\.\d+)?\s*((\.\.|-)\s*\d+(\.\d+)?\s*)?$/, 'must be a number or a range like 20..200')
      .transform((v) => {
        const [lo, hi = lo] = v.split(/\.\.|(?<=\d)\s*-/).map(Number);
        return [lo, hi] as [number, number];
      })
      .pipe(z.tuple([bounded(min, max), bounded(min, max)]).refine(([lo, hi]) => lo <= hi, 'is a range that ends before it starts')),
  choice: <const T extends readonly [string, ...string[]]>(values: T) =>
    z.enum(values, { error: `must be one of ${values.join(', ')}` }),
  /** A URL with one of the given protocols (`http:`, `ws:`...). */
  url: (...protocols: string[]) =>
    z.string().trim().superRefine((v, ctx) => {
      if (!URL.canParse(v)) ctx.addIssue({ code: 'custom', message: 'is not a URL' });
      else if (protocols.length && !protocols.includes(new URL(v).protocol)) {
        ctx.addIssue({ code: 'custom', message: `must be a ${protocols.map((p) => `${p}//`).join(' or ')} URL` });
      }
    }),
  /** JSON text, parsed; `object` only accepts a JSON object. */
  json: () => z.string().transform((v, ctx) => {
    try {
      return JSON.parse(v) as unknown;
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: `must be JSON, e.g. '{"k":1}': ${(err as Error).message}` });
      return z.NEVER;
    }
  }),
  object: () => arg.json().pipe(z.record(z.string(), z.unknown(), { error: 'must be a JSON object, e.g. \'{"k":1}\'' })),
  flag: (fallback = false) => z.boolean().default(fallback),
};

function bounded(min: number, max: number) {
  return z.number().min(min, `must be at least ${min}`).max(max, `must be at most ${max}`);
}

/**
 * Reads the command line against `tool.options`. Throws UsageError for an unknown option, a
 * missing value or one its schema refuses; returns null when --help was asked.
 */
export function parseCommandLine<S extends Spec>(tool: Tool<S>, argv: string[], env: NodeJS.ProcessEnv = process.env): CommandLine<S> | null {
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({
      args: argv,
      options: {
        help: { type: 'boolean', short: 'h' },
        ...Object.fromEntries(Object.entries(tool.options).map(([name, o]) => [name, { type: o.flag ? 'boolean' : 'string' } as const])),
      },
      strict: true,
      allowPositionals: true,
      allowNegative: true,
    });
  } catch (err) {
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS_')) throw new UsageError((err as Error).message);
    throw err;
  }
  if (parsed.values.help) return null;

  const options: Record<string, unknown> = {};
  for (const [name, o] of Object.entries(tool.options)) {
    let value = parsed.values[name];
    let from = `--${name}`;
    const fromEnv = o.env ? env[o.env] : undefined;
    if (value === undefined && fromEnv !== undefined && fromEnv !== '') {
      value = o.flag ? ['1', 'true', 'yes'].includes(fromEnv) : fromEnv;
      from = o.env!;
    }
    const result = o.schema.safeParse(value);
    if (!result.success) {
      if (value === undefined) throw new UsageError(`missing --${name} (${placeholder(name, o)})${o.env ? ` or ${o.env}` : ''}`);
      throw new UsageError(`${from} ${result.error.issues[0]?.message ?? 'is not valid'}, got "${String(value)}"`);
    }
    options[name] = result.data;
  }
  return { options: options as Options<S>, positionals: parsed.positionals };
}

function placeholder(name: string, o: OptionSpec): string {
  return o.placeholder ?? name;
}

/** The usage text with the options table. */
export function usageText(tool: Tool<Spec>): string {
  const rows = Object.entries(tool.options).map(([name, o]) => {
    const flag = o.flag ? `--${name}` : `--${name} <${placeholder(name, o)}>`;
    const absent = o.schema.safeParse(undefined);
    const fallback = absent.success ? absent.data : undefined;
    const notes = [
      o.env ? `env ${o.env}` : '',
      fallback !== undefined && fallback !== false ? `default ${Array.isArray(fallback) ? fallback.join('..') : String(fallback)}` : '',
      absent.success ? '' : 'required',
    ].filter(Boolean);
    return [flag, `${o.help}${notes.length ? ` (${notes.join('; ')})` : ''}`];
  });
  rows.push(['--help', 'this text']);
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  return `${tool.usage}\n\nOptions:\n${rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n')}\n`;
}

/**
 * The command line of a tool, or the exit: --help prints the usage (exit 0), a mistake its
 * message and a hint (exit 2).
 */
export function readCommandLine<S extends Spec>(tool: Tool<S>, argv = process.argv.slice(2)): CommandLine<S> {
  let cli: CommandLine<S> | null;
  try {
    cli = parseCommandLine(tool, argv);
  } catch (err) {
    if (err instanceof UsageError) usageFailure(tool.name, err);
    throw err;
  }
  if (!cli) {
    process.stdout.write(usageText(tool));
    process.exit(0);
  }
  return cli;
}

function usageFailure(name: string, err: UsageError): never {
  process.stderr.write(`${name}: ${err.message}\nRun with --help for usage.\n`);
  process.exit(2);
}

/**
 * Runs a tool: reads its command line, then its main, whose resolved number is the exit code.
 * A UsageError prints the message and a hint (exit 2); any other error prints its message
 * (exit 1).
 */
export function runCli<S extends Spec>(tool: Tool<S>, main: (cli: CommandLine<S>) => Promise<number | void>): void {
  Promise.resolve().then(() => main(readCommandLine(tool))).then(
    // Exit now: a tool is done when its main is (stdout and stderr are synchronous on Linux).
    (code) => process.exit(code ?? 0),
    (err: unknown) => {
      if (err instanceof UsageError) usageFailure(tool.name, err);
      process.stderr.write(`${tool.name}: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/** Wall-clock time for log lines: 12:34:56.789 */
export function clock(d = new Date()): string {
  return d.toISOString().slice(11, 23);
}
