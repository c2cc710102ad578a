// Hand-written SQL (src/db/sql.ts): a statement is text plus values, bound as $n alone or
// written as literals in a batch, and either way no value becomes statement text unquoted.
import { describe, expect, it } from '@jest/globals';
import { join, jsonb, literal, raw, sql } from '../../src/db/sql.ts';

describe('literal', () => {
  it('quotes strings, doubling quotes and escaping backslashes', () => {
    expect(literal("it's")).toBe("'it''s'");
    expect(literal('a\\b')).toBe(" E'a\\\\b'");
  });

  it('writes numbers, booleans, null and dates', () => {
    expect(literal(42)).toBe('42');
    expect(literal(-1.5)).toBe('-1.5');
    expect(literal(true)).toBe('true');
    expect(literal(null)).toBe('null');
    expect(literal(undefined)).toBe('null');
    expect(literal(new Date('2026-11-30T00:00:00Z'))).toBe("'2026-11-30T00:00:00.000Z'::timestamptz");
  });

  it('writes arrays as ARRAY[...] of literals, an empty one as the typeless {}', () => {
    expect(literal(["it's", null, 'b'])).toBe("ARRAY['it''s', null, 'b']");
    expect(literal([])).toBe("'{}'");
    expect(() => literal([{ a: 1 }])).toThrow(TypeError);
  });

  it('refuses what it cannot write safely', () => {
    expect(() => literal(Number.NaN)).toThrow(TypeError);
    expect(() => literal(Infinity)).toThrow(TypeError);
    expect(() => literal(new Date('nope'))).toThrow(TypeError);
    expect(() => literal({ a: 1 })).toThrow(TypeError);
    expect(() => literal(10n)).toThrow(TypeError);
  });
});

describe('sql', () => {
  it('numbers the values as parameters, in order', () => {
    const q = sql`select * from t where a = ${1} and b = ${"x'"}`;
    expect(q.text).toBe('select * from t where a = $1 and b = $2');
    expect(q.values).toEqual([1, "x'"]);
  });

  it('writes the same statement with literals for a batch', () => {
    expect(sql`select ${"it's"}, ${2}, ${null}`.inline()).toBe("select 'it''s', 2, null");
  });

  it('splices nested pieces with their values, renumbering', () => {
    const inner = sql`b = ${2} and c = ${3}`;
    const q = sql`select ${raw('x, y')} from t where a = ${1} and ${inner} and d = ${4}`;
    expect(q.text).toBe('select x, y from t where a = $1 and b = $2 and c = $3 and d = $4');
    expect(q.values).toEqual([1, 2, 3, 4]);
    expect(q.inline()).toBe('select x, y from t where a = 1 and b = 2 and c = 3 and d = 4');
  });

  it('joins pieces, and an empty list to nothing', () => {
    const q = sql`values ${join([sql`(${1}, ${'a'})`, sql`(${2}, ${'b'})`])}`;
    expect(q.text).toBe('values ($1, $2), ($3, $4)');
    expect(q.values).toEqual([1, 'a', 2, 'b']);
    expect(sql`a${join([])}b`.text).toBe('ab');
  });

  it('passes JSON as a jsonb cast of its text, and null as SQL null', () => {
    const q = sql`select ${jsonb({ a: "'" })}, ${jsonb(null)}`;
    expect(q.text).toBe('select $1::jsonb, null');
    expect(q.values).toEqual(['{"a":"\'"}']);
    expect(q.inline()).toBe(`select '{"a":"''"}'::jsonb, null`);
  });
});
