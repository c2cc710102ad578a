// Values inlined into SQL text (src/db/native-sql.ts) go through `literal()` only.
import { describe, expect, it } from '@jest/globals';
import { jsonb, literal, sql, uuid } from '../../src/db/native-sql.ts';

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

  it('refuses what it cannot write safely', () => {
    expect(() => literal(Number.NaN)).toThrow(TypeError);
    expect(() => literal(Infinity)).toThrow(TypeError);
    expect(() => literal(new Date('nope'))).toThrow(TypeError);
    expect(() => literal({ a: 1 })).toThrow(TypeError);
    expect(() => literal(10n)).toThrow(TypeError);
  });

  it('inlines fragments made here as they are', () => {
    expect(sql`select ${jsonb({ a: "'" })}, ${uuid("x'")}, ${jsonb(null)}`).toBe(`select '{"a":"''"}'::jsonb, 'x'''::uuid, null`);
  });
});

describe('fragments', () => {
  it('read as their SQL text wherever they are joined', () => {
    expect([jsonb({ a: 1 }), uuid('u')].join(', ')).toBe(`'{"a":1}'::jsonb, 'u'::uuid`);
  });
});
