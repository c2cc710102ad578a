// A small command-line parser for the tools in scripts/ (no dependency): `--name value`,
// `--name=value`, boolean `--flag` / `--no-flag`, positionals, values from the environment,
// typed and checked. Bad or missing arguments exit 2 with a clear message; --help prints usage.

export type OptType = 'string' | 'number' | 'int' | 'boolean' | 'range' | 'json';

export interface OptSpec {
  type: OptType;
  help: string;
  /** Environment variable read when the flag is absent. */
  env?: string;
  default?: unknown;
  required?: boolean;
  /** Shown in the usage: `--name <placeholder>`. */
  placeholder?: string;
  min?: number;
  max?: number;
  /** Allowed values of a string option. */
  choices?: readonly string[];
}

export type Spec = Record<string, OptSpec>;

/** A mistake in the command line: printed with a hint to --help, exit code 2. */
export class UsageError extends Error {}

export interface Parsed {
  values: Record<string, any>;
  positionals: string[];
  help: boolean;
}

export function parseArgs(argv: string[], spec: Spec, env: NodeJS.ProcessEnv = process.env): Parsed {
  const raw = new Map<string, string | boolean>();
  const positionals: string[] = [];
  let help = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positionals.push(...argv.slice(i + 1));
      break;
    }
    if (a === '--help' || a === '-h') {
      help = true;
      continue;
    }
    if (!a.startsWith('--') || a === '--') {
      if (a.startsWith('-') && a.length > 1 && !/^-\d/.test(a)) throw new UsageError(`unknown option ${a}`);
      positionals.push(a);
      continue;
    }
    const eq = a.indexOf('=');
    let name = eq > 0 ? a.slice(2, eq) : a.slice(2);
    let negated = false;
    if (!(name in spec) && name.startsWith('no-') && spec[name.slice(3)]?.type === 'boolean') {
      name = name.slice(3);
      negated = true;
    }
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option --${name}${suggest(name, spec)}`);
    if (s.type === 'boolean') {
      if (eq > 0) {
        const v = a.slice(eq + 1);
        if (!['true', 'false', '1', '0', 'yes', 'no'].includes(v)) throw new UsageError(`--${name} takes no value (or true/false), got "${v}"`);
        raw.set(name, ['true', '1', 'yes'].includes(v) !== negated);
      } else {
        raw.set(name, !negated);
      }
      continue;
    }
    if (negated) throw new UsageError(`unknown option --no-${name}`);
    let value: string | undefined;
    if (eq > 0) value = a.slice(eq + 1);
    else {
      value = argv[i + 1];
      if (value === undefined || (value.startsWith('--') && value.length > 2)) throw new UsageError(`--${name} needs a value (${placeholder(name, s)})`);
      i++;
    }
    raw.set(name, value);
  }

  const values: Record<string, any> = {};
  for (const [name, s] of Object.entries(spec)) {
    let v: string | boolean | undefined = raw.get(name);
    let from = `--${name}`;
    if (v === undefined && s.env && env[s.env] !== undefined && env[s.env] !== '') {
      v = s.type === 'boolean' ? ['1', 'true', 'yes'].includes(String(env[s.env])) : String(env[s.env]);
      from = `${s.env}`;
    }
    if (v === undefined) {
      if (s.required && !help) throw new UsageError(`missing --${name} (${placeholder(name, s)})${s.env ? ` or ${s.env}` : ''}`);
      values[name] = s.default;
      continue;
    }
    values[name] = convert(from, s, v);
  }
  return { values, positionals, help };
}

function convert(from: string, s: OptSpec, v: string | boolean): unknown {
  if (typeof v === 'boolean') return v;
  const bounds = (n: number) => {
    if (s.min !== undefined && n < s.min) throw new UsageError(`${from} must be at least ${s.min}, got ${n}`);
    if (s.max !== undefined && n > s.max) throw new UsageError(`${from} must be at most ${s.max}, got ${n}`);
    return n;
  };
  switch (s.type) {
    case 'string':
      if (s.choices && !s.choices.includes(v)) throw new UsageError(`${from} must be one of ${s.choices.join(', ')}, got "${v}"`);
      return v;
    case 'number': {
      const n = Number(v);
      if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${from} must be a number, got "${v}"`);
      return bounds(n);
    }
    case 'int': {
      const n = Number(v);
      if (!/^-?\d+$/.test(v.trim())) throw new UsageError(`${from} must be a whole number, got "${v}"`);
      return bounds(n);
    }
    case 'range': {
      const m = /^\s*(\d+(?:\.\d+)?)\s*(?:(?:\.\.|-)\s*(\d+(?:\.\d+)?)\s*)?$/.exec(v);
      if (!m) throw new UsageError(`${from} must be a number or a range like 20..200, got "${v}"`);
      const lo = bounds(Number(m[1]));
      const hi = bounds(Number(m[2] ?? m[1]));
      if (hi < lo) throw new UsageError(`${from}: the range ${v} ends before it starts`);
      return [lo, hi];
    }
    case 'json':
      try {
        return JSON.parse(v);
      } catch (err) {
        throw new UsageError(`${from} must be JSON, e.g. '{"k":1}': ${(err as Error).message}`);
      }
    default:
      return v;
  }
}

function placeholder(name: string, s: OptSpec): string {
  return s.placeholder ?? (s.type === 'range' ? 'min..max' : s.type === 'json' ? 'json' : s.type === 'int' || s.type === 'number' ? 'n' : name);
}

function suggest(name: string, spec: Spec): string {
  const close = Object.keys(spec).find((k) => k.startsWith(name) || name.startsWith(k) || editDistance(k, name) <= 2);
  return close ? ` (did you mean --${close}?)` : '';
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...new Array(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
  }
  return d[a.length][b.length];
}

/** The options block of a usage text. */
export function formatOptions(spec: Spec): string {
  const rows = Object.entries(spec).map(([name, s]) => {
    const flag = s.type === 'boolean' ? `--${name}` : `--${name} <${placeholder(name, s)}>`;
    const notes = [
      s.env ? `env ${s.env}` : '',
      s.default !== undefined && s.default !== false ? `default ${Array.isArray(s.default) ? s.default.join('..') : String(s.default)}` : '',
      s.required ? 'required' : '',
    ].filter(Boolean);
    return [flag, `${s.help}${notes.length ? ` (${notes.join('; ')})` : ''}`];
  });
  rows.push(['--help', 'this text']);
  const width = Math.min(34, Math.max(...rows.map(([f]) => f.length)) + 2);
  return rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`).join('\n');
}

/**
 * Runs a tool's main: its resolved number is the exit code. A UsageError prints the message
 * and a hint (exit 2); any other error prints its message (exit 1).
 */
export function runCli(name: string, main: () => Promise<number | void>): void {
  main().then(
    // Exit now: a tool is done when its main is (stdout and stderr are synchronous on Linux).
    (code) => process.exit(code ?? 0),
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${name}: ${err.message}\nRun with --help for usage.\n`);
        process.exit(2);
      }
      process.stderr.write(`${name}: ${(err as Error)?.message ?? String(err)}\n`);
      process.exit(1);
    },
  );
}

/** Wall-clock time for log lines: 12:34:56.789 */
export function clock(d = new Date()): string {
  return d.toISOString().slice(11, 23);
}
