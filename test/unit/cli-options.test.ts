// The tools' command line (scripts/lib/cli.ts): flags, values from the environment, the zod
// checks and the usage text, on a spec shaped like the tools' own.
import { describe, expect, it } from '@jest/globals';
import { z } from 'zod';
import { UsageError, arg, parseCommandLine, usageText, type Spec, type Tool } from '../../scripts/lib/cli.ts';

const options = {
  token: { schema: arg.text(), env: 'DEMO_TOKEN', placeholder: 'access token', help: 'who you are' },
  api: { schema: arg.url('http:', 'https:').default('http://127.0.0.1:3000/api/v1'), env: 'DEMO_API', placeholder: 'url', help: 'REST base URL' },
  limit: { schema: arg.int(1, 100).default(20), placeholder: 'n', help: 'how many' },
  rate: { schema: arg.number(0, 1).default(0), placeholder: 'n', help: 'a probability' },
  'latency-ms': { schema: arg.range(0).default([20, 200]), placeholder: 'min..max', help: 'a range' },
  params: { schema: arg.object().optional(), placeholder: '{"k":1}', help: 'a JSON object' },
  priority: { schema: arg.choice(['high', 'low']).optional(), help: 'high or low' },
  progress: { schema: arg.flag(true), flag: true, help: 'on unless --no-progress' },
  verbose: { schema: arg.flag(), flag: true, env: 'DEMO_VERBOSE', help: 'more lines' },
  email: { schema: z.string().optional(), env: 'DEMO_EMAIL', help: 'an email' },
} satisfies Spec;
const tool: Tool<typeof options> = { name: 'demo', usage: 'Usage: demo [options] <command>', options };

const parse = (argv: string[], env: NodeJS.ProcessEnv = {}) => parseCommandLine(tool, argv, env);
const refusal = (argv: string[], env: NodeJS.ProcessEnv = {}) => {
  try {
    parse(argv, env);
  } catch (err) {
    expect(err).toBeInstanceOf(UsageError);
    return (err as Error).message;
  }
  throw new Error(`accepted: ${argv.join(' ')}`);
};

describe('the tools\' command line', () => {
  it('reads values, flags and positionals, with the defaults for what is absent', () => {
    const cli = parse(['list', '--token', 't1', '--limit=5', '--latency-ms', '5..50', '--params', '{"k":1}', '--no-progress', 'extra']);
    expect(cli?.positionals).toEqual(['list', 'extra']);
    expect(cli?.options).toEqual({
      token: 't1', api: 'http://127.0.0.1:3000/api/v1', limit: 5, rate: 0, 'latency-ms': [5, 50],
      params: { k: 1 }, priority: undefined, progress: false, verbose: false, email: undefined,
    });
    expect(parse(['--token', 't', '--latency-ms', '7'])?.options['latency-ms']).toEqual([7, 7]);
    expect(parse(['--token', 't', '--latency-ms', '10-20'])?.options['latency-ms']).toEqual([10, 20]);
  });

  it('falls back to the environment, and a flag on the command line wins over it', () => {
    const env = { DEMO_TOKEN: 'from-env', DEMO_API: 'https://jarvis.example/api/v1', DEMO_VERBOSE: '1', DEMO_EMAIL: '' };
    expect(parse([], env)?.options).toMatchObject({ token: 'from-env', api: 'https://jarvis.example/api/v1', verbose: true, email: undefined });
    expect(parse(['--token', 'flag', '--api', 'http://other/api/v1'], env)?.options).toMatchObject({ token: 'flag', api: 'http://other/api/v1' });
    expect(refusal([], { DEMO_TOKEN: 't', DEMO_API: 'nope' })).toBe('DEMO_API is not a URL, got "nope"');
  });

  it('refuses what the schemas refuse, naming the option and the value', () => {
    expect(refusal([])).toBe('missing --token (access token) or DEMO_TOKEN');
    expect(refusal(['--token', 't', '--limit', '0'])).toBe('--limit must be at least 1, got "0"');
    expect(refusal(['--token', 't', '--limit', '2.5'])).toBe('--limit must be a whole number, got "2.5"');
    expect(refusal(['--token', 't', '--rate', 'x'])).toBe('--rate must be a number, got "x"');
    expect(refusal(['--token', 't', '--rate', '1.5'])).toBe('--rate must be at most 1, got "1.5"');
    expect(refusal(['--token', 't', '--latency-ms', '200..20'])).toBe('--latency-ms is a range that ends before it starts, got "200..20"');
    expect(refusal(['--token', 't', '--params', '[1]'])).toContain('--params must be a JSON object');
    expect(refusal(['--token', 't', '--params', '{x'])).toContain('--params must be JSON');
    expect(refusal(['--token', 't', '--priority', 'urgent'])).toBe('--priority must be one of high, low, got "urgent"');
    expect(refusal(['--token', 't', '--api', 'ws://x'])).toBe('--api must be a http:// or https:// URL, got "ws://x"');
  });

  it('refuses unknown options and missing values (util.parseArgs)', () => {
    expect(refusal(['--token', 't', '--limt', '5'])).toContain("'--limt'");
    expect(refusal(['--token'])).toContain('--token');
    expect(refusal(['--token', 't', '--verbose=yes'])).toContain('--verbose');
  });

  it('answers --help with null, before checking anything', () => {
    expect(parse(['--help'])).toBeNull();
    expect(parse(['-h', '--limit', '0'])).toBeNull();
  });

  it('lists every option in the usage with its environment variable, default or requirement', () => {
    const text = usageText(tool);
    expect(text.startsWith('Usage: demo [options] <command>\n\nOptions:\n')).toBe(true);
    const line = (flag: string) => text.split('\n').find((l) => l.trimStart().startsWith(`${flag} `));
    expect(line('--token')).toMatch(/--token <access token>\s+who you are \(env DEMO_TOKEN; required\)$/);
    expect(line('--api')).toMatch(/\(env DEMO_API; default http:\/\/127\.0\.0\.1:3000\/api\/v1\)$/);
    expect(line('--latency-ms')).toMatch(/a range \(default 20\.\.200\)$/);
    expect(line('--verbose')).toMatch(/--verbose\s+more lines \(env DEMO_VERBOSE\)$/);
    expect(line('--help')).toMatch(/this text$/);
  });
});
