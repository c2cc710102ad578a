// The import map of docs/design.md ("What each folder may import"), checked: every relative
// import of every .ts file under src/, workflows/, activities/ and workers/ must go to a place its
// folder may import. The table below is the doc's table as data; change both together.
import { readdirSync, readFileSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import { describe, expect, it } from '@jest/globals';

const root = resolve(import.meta.dirname, '..', '..');

/**
 * A place: a top-level folder, a folder of src/, or one of the single files at src/'s top.
 * `values`: what it may import anything from; `types`: what it may import types only from.
 * A place may always import from itself.
 */
interface Rule {
  values: string[];
  types?: string[];
}

/** The shared leaves at src/'s top: anything in src/ may use them. */
const SHARED = ['src/errors.ts', 'src/validation.ts', 'src/logger.ts', 'src/config.ts'];
const SRC_FOLDERS = ['src/protocol', 'src/db', 'src/domain', 'src/http', 'src/ws', 'src/temporal', 'src/telemetry', 'src/clients'];
const COMPOSITION = ['src/api-node.ts', 'src/task-worker.ts', 'src/reconciler.ts', 'src/boot.ts'];
const EVERYTHING_IN_SRC = [...SHARED, ...SRC_FOLDERS, ...COMPOSITION];

const MAP: Record<string, Rule> = {
  'src/errors.ts': { values: [] },
  'src/validation.ts': { values: ['src/errors.ts'] },
  'src/logger.ts': { values: [] },
  'src/config.ts': { values: [] },
  'src/protocol': { values: [] },
  'src/telemetry': { values: SHARED, types: ['src/protocol'] },
  'src/temporal': { values: [...SHARED, 'src/telemetry', 'workflows'] },
  'src/db': { values: [...SHARED, 'migrations'], types: ['workflows'] },
  'src/domain': { values: [...SHARED, 'src/db', 'src/temporal', 'workflows'] },
  'src/http': { values: [...SHARED, 'src/db', 'src/domain', 'src/telemetry'] },
  'src/ws': { values: [...SHARED, 'src/db', 'src/domain', 'src/protocol', 'src/temporal', 'src/telemetry', 'workflows'] },
  'src/clients': { values: ['src/protocol'] },
  'src/api-node.ts': { values: [...EVERYTHING_IN_SRC, 'activities', 'workflows'] },
  'src/task-worker.ts': { values: [...EVERYTHING_IN_SRC, 'activities', 'workflows'] },
  'src/reconciler.ts': { values: [...SHARED, 'src/db', 'src/domain', 'src/temporal', 'src/ws', 'workflows'] },
  'src/boot.ts': { values: SHARED },
  workflows: { values: [], types: ['activities', ...EVERYTHING_IN_SRC] },
  activities: { values: [...SHARED, 'src/db', 'src/domain', 'src/ws', 'src/protocol', 'workflows'] },
  workers: { values: [...EVERYTHING_IN_SRC, 'activities', 'workflows', 'migrations'] },
};

const CHECKED_FOLDERS = ['src', 'workflows', 'activities', 'workers'];

/** The place a repository path belongs to, or null when the map does not name it. */
function placeOf(path: string): string | null {
  const parts = path.split('/');
  if (parts[0] === 'src') return parts.length > 2 ? `src/${parts[1]}` : path;
  return parts[0];
}

interface Import {
  from: string;
  to: string;
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  return readdirSync(resolve(root, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(root, resolve(e.parentPath, e.name)));
}

/** Strings stay, comments go: an import named in a comment is not an import. */
const STRING_OR_COMMENT = /("(?:\\.|[^"\\\n])*"|'(?:\\.|[^'\\\n])*'|`(?:\\.|[^`\\])*`)|\/\*[\s\S]*?\*\/|\/\/[^\n]*/g;
/** `import … from '…'`, `export … from '…'`, with `type` before the clause or on each name. */
const FROM = /(?:^|[;\n])\s*(import|export)\s+(type\s+)?([\w$*{},\s]*?)\s*from\s*(['"])([^'"\n]+)\4/g;
/** `import '…'` (for its effects) and `import('…')` (dynamic). */
const BARE = /(?:^|[;\n])\s*import\s*(['"])([^'"\n]+)\1|\bimport\(\s*(['"])([^'"\n]+)\3\s*\)/g;

/** Whether an import clause brings in types only: `type` before it, or before each of its names. */
function typeOnlyClause(typeKeyword: string | undefined, clause: string): boolean {
  if (typeKeyword) return true;
  const braces = /^\{([\s\S]*)\}$/.exec(clause.trim());
  if (!braces) return false; // a default or namespace import is a value
  const names = braces[1].split(',').map((n) => n.trim()).filter(Boolean);
  return names.length > 0 && names.every((n) => /^type\s/.test(n));
}

/** Every relative import and re-export of a file, static or dynamic, type-only or not. */
function importsOf(file: string, text: string): Import[] {
  const code = text.replace(STRING_OR_COMMENT, (_m, str: string | undefined) => str ?? ' ');
  const found: Import[] = [];
  const add = (spec: string, typeOnly: boolean) => {
    if (spec.startsWith('.')) found.push({ from: file, to: relative(root, resolve(root, file, '..', spec)), typeOnly });
  };
  for (const m of code.matchAll(FROM)) add(m[5], typeOnlyClause(m[2], m[3]));
  for (const m of code.matchAll(BARE)) add(m[2] ?? m[4], false);
  return found;
}

/** Why an import breaks the map, or null when the map allows it. */
function violation(imp: Import): string | null {
  const from = placeOf(imp.from)!;
  const to = placeOf(imp.to);
  if (to === null || to === from) return null;
  const rule = MAP[from];
  if (!rule) return `${imp.from}: its place ${from} is not in the map`;
  if (rule.values.includes(to)) return null;
  if (imp.typeOnly && rule.types?.includes(to)) return null;
  const allowsTypes = rule.types?.includes(to);
  return `${imp.from} imports ${imp.typeOnly ? 'types' : 'values'} from ${imp.to}: ${from} may not`
    + (allowsTypes ? ' (types only)' : '');
}

describe('import map', () => {
  const imports = CHECKED_FOLDERS.flatMap(tsFiles).flatMap((f) => importsOf(f, readFileSync(resolve(root, f), 'utf8')));

  it('reads the imports of every checked file', () => {
    // Imports known from reading these files: a parser that misses or misjudges one fails here.
    const of = (file: string) => imports.filter((i) => i.from === file).map((i) => [i.to, i.typeOnly]);
    expect(of('workflows/device-step.ts')).toEqual(expect.arrayContaining([
      ['activities/types.ts', true], ['workflows/api.ts', false], ['workflows/run.ts', true],
    ]));
    expect(of('src/api-node.ts')).toEqual(expect.arrayContaining([['activities/device-steps.ts', false]]));
    expect(of('src/domain/tasks.ts')).toEqual(expect.arrayContaining([['workflows/search-attributes.ts', false]]));
    // Every file with a line `… from './…'` (a plain text search) has its imports read.
    const withRelativeFrom = CHECKED_FOLDERS.flatMap(tsFiles)
      .filter((f) => /^(?:import|export|\}).*\bfrom\s+['"]\.\.?\//m.test(readFileSync(resolve(root, f), 'utf8')));
    expect(new Set(imports.map((i) => i.from))).toEqual(new Set(withRelativeFrom));
  });

  it('names every place that holds code', () => {
    const places = new Set(CHECKED_FOLDERS.flatMap(tsFiles).map(placeOf));
    expect([...places].filter((p) => !MAP[p!]).sort()).toEqual([]);
  });

  it('finds no import the map forbids', () => {
    expect(imports.map(violation).filter(Boolean)).toEqual([]);
  });

  it('tells a forbidden import from an allowed one', () => {
    const text = [
      "import { SA } from '../src/temporal/search-attributes.ts';",
      "import type { Orm } from '../src/db/orm.ts';",
      "import {\n  type DeviceStepActivities,\n} from '../activities/types.ts';",
      "// import { gone } from '../src/db/tasks.ts';",
      "export { x } from '../activities/device-steps.ts';",
      "const later = () => import('../src/ws/gateway.ts');",
    ].join('\n');
    const found = importsOf('workflows/example.ts', text);
    expect(found.map((i) => [i.to, i.typeOnly])).toEqual([
      ['src/temporal/search-attributes.ts', false],
      ['src/db/orm.ts', true],
      ['activities/types.ts', true],
      ['activities/device-steps.ts', false],
      ['src/ws/gateway.ts', false],
    ]);
    expect(found.map((i) => violation(i) !== null)).toEqual([true, false, false, true, true]);
    expect(violation({ from: 'src/protocol/codec.ts', to: 'src/validation.ts', typeOnly: false })).not.toBeNull();
    expect(violation({ from: 'src/db/tasks.ts', to: 'src/http/route.ts', typeOnly: true })).not.toBeNull();
    expect(violation({ from: 'src/db/tasks.ts', to: 'src/errors.ts', typeOnly: false })).toBeNull();
  });
});
