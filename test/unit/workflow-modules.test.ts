// Every module of workflows/ is preloaded into the Temporal SDK's reused V8 context and shared by
// all runs of a worker (src/task-worker.ts, WORKFLOW_PRELOAD_MODULES). A module that kept state at
// module scope would then leak it from one run into another (and break determinism on replay).
// This checks the source of each: at the top level only imports, types, functions, classes and
// constants, and the constants only literals or the SDK's pure definitions.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { WORKFLOW_PRELOAD_MODULES, WORKFLOWS_PATH } from '../../src/task-worker.ts';

const dir = resolve(WORKFLOWS_PATH, '..');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts')).sort();

/** Top-level statements that hold state a run could change, with why. */
const STATEFUL: [RegExp, string][] = [
  [/^(export\s+)?(let|var)\s/, 'a module-level variable'],
  [/^(export\s+)?const\s+\w+(\s*:[^=]+)?\s*=\s*new\s/, 'a module-level object made with new (a Map, a Set, an instance)'],
  [/^(export\s+)?const\s+\w+(\s*:[^=]+)?\s*=\s*(proxyActivities|proxyLocalActivities|workflowInfo|uuid4|Date|Math\.random)\b/, 'a module-level call that belongs inside a run'],
  [/^(?!export|import|const|function|async|class|interface|type|declare|enum|\/\/|\/\*|\*|\}|\)|\]|$)\S/, 'a top-level statement other than a declaration (a call run at load)'],
];

describe('workflows/ modules are safe to share between runs', () => {
  it('preloads every module of workflows/', () => {
    expect(WORKFLOW_PRELOAD_MODULES.map((p) => basename(p))).toEqual(files);
  });

  it.each(files)('%s keeps no state at module scope', (file) => {
    const problems: string[] = [];
    readFileSync(resolve(dir, file), 'utf8').split('\n').forEach((line, i) => {
      for (const [re, why] of STATEFUL) if (re.test(line)) problems.push(`${file}:${i + 1}: ${why}: ${line.trim()}`);
    });
    expect(problems).toEqual([]);
  });

  it('flags what it is meant to flag', () => {
    const flagged = (line: string) => STATEFUL.some(([re]) => re.test(line));
    expect(flagged('let count = 0;')).toBe(true);
    expect(flagged('export const cache = new Map<string, number>();')).toBe(true);
    expect(flagged('const acts = proxyActivities<A>({});')).toBe(true);
    expect(flagged('setHandler(x, y);')).toBe(true);
    expect(flagged("export const pauseSignal = defineSignal<[ControlRequest]>('pause');")).toBe(false);
    expect(flagged('const MAX = 10;')).toBe(false);
    expect(flagged('export async function run(input: Input) {')).toBe(false);
  });
});
