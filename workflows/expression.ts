// Structured condition expressions: JSON data, evaluated without eval, side-effect free.
//   { "var": "s1.ok", "eq": true }
//   { "all": [ ... ] }  { "any": [ ... ] }  { "not": { ... } }
//   operators: eq ne gt gte lt lte in contains exists truthy
// A comparison value may itself be { "var": "path" } to compare two values of the run.
import { lookup } from './definition.ts';

export const COMPARISON_OPS = ['eq', 'ne', 'gt', 'gte', 'lt', 'lte', 'in', 'contains', 'exists', 'truthy'] as const;
export type ComparisonOp = (typeof COMPARISON_OPS)[number];

export type Expr =
  | boolean
  | { all: Expr[] }
  | { any: Expr[] }
  | { not: Expr }
  | ({ var: string } & Partial<Record<ComparisonOp, unknown>>);

function operand(v: unknown, scope: Record<string, unknown>): unknown {
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'var' in v) {
    return lookup(scope, String((v as { var: unknown }).var));
  }
  return v;
}

function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}

function ordered(a: unknown, b: unknown): [number, number] | [string, string] | null {
  if (typeof a === 'number' && typeof b === 'number') return [a, b];
  if (typeof a === 'string' && typeof b === 'string') return [a, b];
  return null;
}

export function evaluate(expr: Expr, scope: Record<string, unknown>): boolean {
  if (typeof expr === 'boolean') return expr;
  if ('all' in expr) return expr.all.every((e) => evaluate(e, scope));
  if ('any' in expr) return expr.any.some((e) => evaluate(e, scope));
  if ('not' in expr) return !evaluate(expr.not, scope);
  const value = lookup(scope, expr.var);
  const ops = COMPARISON_OPS.filter((op) => op in expr);
  if (ops.length === 0) return Boolean(value); // { "var": "x" } alone: truthiness
  return ops.every((op) => {
    const arg = operand(expr[op], scope);
    switch (op) {
      case 'eq': return equal(value, arg);
      case 'ne': return !equal(value, arg);
      case 'gt': case 'gte': case 'lt': case 'lte': {
        const pair = ordered(value, arg);
        if (!pair) return false;
        const [x, y] = pair as [number, number];
        return op === 'gt' ? x > y : op === 'gte' ? x >= y : op === 'lt' ? x < y : x <= y;
      }
      case 'in': return Array.isArray(arg) && arg.some((a) => equal(value, a));
      case 'contains':
        if (typeof value === 'string') return typeof arg === 'string' && value.includes(arg);
        return Array.isArray(value) && value.some((v) => equal(v, arg));
      case 'exists': return (value !== undefined && value !== null) === Boolean(arg);
      case 'truthy': return Boolean(value) === Boolean(arg);
    }
  });
}
