// Input caps checked before any schema: each cap refuses just past its bound and accepts at it,
// and a refusal costs a bounded walk however large the input.
import { describe, expect, it } from '@jest/globals';
import { capFieldErrors, errors, MAX_FIELD_ERRORS } from '../../src/errors.ts';
import fc from 'fast-check';
import {
  jsonShapeProblem, MAX_INPUT_DEPTH, MAX_INPUT_ITEMS, MAX_INPUT_KEYS, MAX_INPUT_VALUES, unstorableInput,
} from '../../src/validation.ts';

const objectWithKeys = (n: number) => Object.fromEntries(Array.from({ length: n }, (_, i) => [`k${i}`, i]));
const nested = (levels: number) => {
  let v: unknown = 'leaf';
  for (let i = 0; i < levels; i++) v = { a: v };
  return v;
};

describe('unstorableInput', () => {
  it('accepts each cap exactly and refuses one past it, naming the path', () => {
    expect(unstorableInput({ p: objectWithKeys(MAX_INPUT_KEYS) })).toBeNull();
    expect(unstorableInput({ p: objectWithKeys(MAX_INPUT_KEYS + 1) })).toEqual({ path: 'p', message: `more than ${MAX_INPUT_KEYS} keys` });
    expect(unstorableInput({ items: new Array(MAX_INPUT_ITEMS).fill(0) })).toBeNull();
    expect(unstorableInput({ items: new Array(MAX_INPUT_ITEMS + 1).fill(0) })).toEqual({ path: 'items', message: `more than ${MAX_INPUT_ITEMS} items` });
    expect(unstorableInput(nested(MAX_INPUT_DEPTH))).toBeNull();
    expect(unstorableInput(nested(MAX_INPUT_DEPTH + 1))?.message).toBe(`nested deeper than ${MAX_INPUT_DEPTH} levels`);
  });

  it('caps the number of values in all, whatever the shape', () => {
    // Arrays of small objects, each under its own cap: the total is what bounds the work.
    const per = 999; // keys per object, values per object = per + 1
    const objects = Math.ceil(MAX_INPUT_VALUES / (per + 1)) + 1;
    const wide = { list: Array.from({ length: objects }, () => objectWithKeys(per)) };
    expect(unstorableInput(wide)).toEqual({ path: '(root)', message: `more than ${MAX_INPUT_VALUES} values in all` });
    const fits = { list: Array.from({ length: Math.floor((MAX_INPUT_VALUES - 2) / (per + 1)) }, () => objectWithKeys(per)) };
    expect(unstorableInput(fits)).toBeNull();
  });

  it('still refuses what PostgreSQL cannot store', () => {
    expect(unstorableInput({ a: ['ok', 'bad\u0000'] })).toEqual({ path: 'a.1', message: 'contains a NUL character or an unpaired surrogate' });
    expect(unstorableInput({ ['\ud800']: 1 })?.message).toMatch(/^key contains/);
  });
});

describe('field error lists', () => {
  it('are capped, the last entry counting the rest', () => {
    const many = Array.from({ length: 40_000 }, (_, i) => ({ path: `nodes.${i}`, message: 'bad template' }));
    const capped = capFieldErrors(many);
    expect(capped).toHaveLength(MAX_FIELD_ERRORS);
    expect(capped.slice(0, -1)).toEqual(many.slice(0, MAX_FIELD_ERRORS - 1));
    expect(capped.at(-1)).toEqual({ path: '(root)', message: `and ${40_000 - MAX_FIELD_ERRORS + 1} more errors` });
    expect((errors.invalid('x', many).data as { errors: unknown[] }).errors).toHaveLength(MAX_FIELD_ERRORS);
    expect(capFieldErrors(many.slice(0, MAX_FIELD_ERRORS))).toHaveLength(MAX_FIELD_ERRORS);
  });
});

describe('jsonShapeProblem (the same caps, on the text before parsing)', () => {
  /** What the walk after parsing says of `v`'s shape (null: nothing, or only of its strings). */
  const walkSays = (v: unknown) => {
    const p = unstorableInput(v);
    return p !== null && !/NUL|surrogate/.test(p.message) ? p : null;
  };

  it('agrees with the walk at and past every cap', () => {
    const cases: unknown[] = [
      objectWithKeys(MAX_INPUT_KEYS), objectWithKeys(MAX_INPUT_KEYS + 1),
      { items: new Array(MAX_INPUT_ITEMS).fill(0) }, { items: new Array(MAX_INPUT_ITEMS + 1).fill(0) },
      nested(MAX_INPUT_DEPTH), nested(MAX_INPUT_DEPTH + 1),
      Array.from({ length: 20 }, () => objectWithKeys(999)), Array.from({ length: 21 }, () => objectWithKeys(999)),
      Array.from({ length: 19 }, () => new Array(1051).fill([])),
      [], {}, [[]], [{}], { a: [] },
    ];
    for (const v of cases) {
      const text = JSON.stringify(v);
      // The same verdict, at the same path, with the same words.
      expect({ size: text.length, scan: jsonShapeProblem(text) }).toEqual({ size: text.length, scan: walkSays(v) });
    }
    // Paths name keys (escapes read) and array indexes the way the walk does.
    const deep = { parameters: { 'p "q"': [[{ x: nested(MAX_INPUT_DEPTH) }]] } };
    expect(jsonShapeProblem(JSON.stringify(deep))).toEqual(walkSays(deep));
    expect(jsonShapeProblem(JSON.stringify(deep))?.path).toMatch(/^parameters\.p "q"\.0\.0\.x\.a\.a/);
    const wide = { list: [1, 2, { k: objectWithKeys(MAX_INPUT_KEYS + 1) }] };
    expect(jsonShapeProblem(JSON.stringify(wide))).toEqual({ path: 'list.2.k', message: `more than ${MAX_INPUT_KEYS} keys` });
  });

  it('is not fooled by brackets, colons, commas and escaped quotes inside strings', () => {
    const tricky = { s: '[[[{{{:::,,,"\\', t: '\\"', u: `${'['.repeat(200)}${':'.repeat(5000)}`, k: { ['{[:,"']: 1 } };
    expect(jsonShapeProblem(JSON.stringify(tricky))).toBeNull();
    expect(jsonShapeProblem(JSON.stringify({ a: `${'\\'.repeat(3)}"`, b: nested(MAX_INPUT_DEPTH + 1) }))).not.toBeNull();
  });

  it('agrees with the walk on arbitrary JSON', () => {
    fc.assert(fc.property(fc.jsonValue({ maxDepth: 70 }), (v) => {
      expect(jsonShapeProblem(JSON.stringify(v))).toEqual(walkSays(v));
    }), { numRuns: 300 });
  });

  it('refuses a 1 MiB object of 96k keys and 100k nested brackets without parsing them', () => {
    const keys = `{${Array.from({ length: 96_000 }, (_, i) => `"k${i}":1`).join(',')}}`;
    expect(jsonShapeProblem(keys)).toEqual({ path: '(root)', message: `more than ${MAX_INPUT_KEYS} keys` });
    expect(jsonShapeProblem(`${'['.repeat(100_000)}${']'.repeat(100_000)}`)?.message).toBe(`nested deeper than ${MAX_INPUT_DEPTH} levels`);
  });
});
