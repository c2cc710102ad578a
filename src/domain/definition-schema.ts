// Validates a workflow definition on every write and before every start: its JSON shape
// (zod) and its graph (one start, edges to real nodes, all reachable, cycles only through a
// loop, templates resolvable). Each fault names the node.
import { z } from 'zod';
import {
  ON_INTERRUPT,
  isDeviceStep,
  templatePaths,
  type Definition,
  type DefinitionNode,
} from '../../workflows/definition.ts';
import { COMPARISON_OPS, type Expr } from '../../workflows/expression.ts';
import {
  MAX_APPROVAL_TIMEOUT_MS,
  MAX_LOOP_COUNT,
  MAX_LOOP_ITEMS,
  MAX_NODE_VISITS_PER_RUN,
  MAX_WAIT_MS,
} from '../../workflows/bounds.ts';
import type { FieldError } from '../errors.ts';

const nodeId = z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'node id: 1-64 letters, digits, "_" or "-"');

const retrySchema = z
  .object({
    maxAttempts: z.number().int().min(1).max(100).optional(),
    initialIntervalMs: z.number().int().min(0).max(3_600_000).optional(),
    backoffCoefficient: z.number().min(1).max(10).optional(),
    maxIntervalMs: z.number().int().min(0).max(86_400_000).optional(),
    retryableCodes: z.array(z.string().min(1).max(100)).max(50).optional(),
  })
  .strict();

const nodeSchema = z
  .object({
    id: nodeId,
    type: z.string().regex(/^[A-Za-z][A-Za-z0-9_.:-]{0,99}$/, 'type: a name like "browser.open"'),
    name: z.string().min(1).max(200).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    retry: retrySchema.optional(),
    timeoutMs: z.number().int().min(1000).max(7 * 86_400_000).optional(),
    heartbeatTimeoutMs: z.number().int().min(1000).max(86_400_000).optional(),
    onInterrupt: z.enum(ON_INTERRUPT).optional(),
  })
  .strict();

const edgeSchema = z
  .object({
    from: nodeId,
    to: nodeId,
    when: z.string().min(1).max(50).optional(),
  })
  .strict();

export const definitionSchema = z
  .object({
    nodes: z.array(nodeSchema).min(2).max(500),
    edges: z.array(edgeSchema).max(2000),
  })
  .strict();

const varPath = z.string().regex(/^[A-Za-z0-9_.-]{1,200}$/, 'a dotted path like "s1.ok" or "params.limit"');

/** Condition expressions (workflows/expression.ts), recursive. */
export const exprSchema: z.ZodType<Expr> = z.lazy(() =>
  z.union([
    z.boolean(),
    z.object({ all: z.array(exprSchema).min(1).max(50) }).strict(),
    z.object({ any: z.array(exprSchema).min(1).max(50) }).strict(),
    z.object({ not: exprSchema }).strict(),
    z.object({ var: varPath, ...Object.fromEntries(COMPARISON_OPS.map((op) => [op, z.unknown().optional()])) }).strict(),
  ]),
) as z.ZodType<Expr>;

const templated = (inner: z.ZodType) => z.union([inner, z.string().regex(/^\{\{\s*[A-Za-z0-9_.-]+\s*\}\}$/, 'a number or one {{template}}')]);

/** Params of the control nodes the engine runs itself. */
const controlParams: Record<string, z.ZodType> = {
  start: z.object({}).strict(),
  end: z.object({}).strict(),
  condition: z.object({ if: exprSchema }).strict(),
  wait: z.object({ durationMs: templated(z.number().int().min(0).max(MAX_WAIT_MS)) }).strict(),
  approval: z.object({
    message: z.string().max(2000).optional(),
    timeoutMs: z.number().int().min(1000).max(MAX_APPROVAL_TIMEOUT_MS).optional(),
    onTimeout: z.enum(['approve', 'reject', 'fail']).optional(),
  }).strict(),
  loop: z.object({
    count: templated(z.number().int().min(0).max(MAX_LOOP_COUNT)).optional(),
    items: z.union([z.array(z.unknown()).max(MAX_LOOP_ITEMS), z.string().regex(/^\{\{\s*[A-Za-z0-9_.-]+\s*\}\}$/)]).optional(),
    maxIterations: z.number().int().min(1).max(MAX_LOOP_COUNT).optional(),
  }).strict().refine((p) => (p.count === undefined) !== (p.items === undefined), 'a loop has either count or items'),
};

/** Deepest nesting allowed anywhere in a definition (stops hostile deep JSON early). */
export const MAX_DEPTH = 32;

function depth(value: unknown, limit: number, level = 0): number {
  if (level > limit) return level;
  if (!value || typeof value !== 'object') return level;
  let max = level;
  for (const v of Object.values(value)) {
    max = Math.max(max, depth(v, limit, level + 1));
    if (max > limit) break;
  }
  return max;
}

/** Max JSON size of a definition: big enough for real automations, small enough for history. */
export const MAX_DEFINITION_BYTES = 512 * 1024;

export function validateDefinition(input: unknown, prefix = 'definition'): { definition?: Definition; errors: FieldError[] } {
  if (depth(input, MAX_DEPTH) > MAX_DEPTH) {
    return { errors: [{ path: prefix, message: `nested deeper than ${MAX_DEPTH} levels` }] };
  }
  const parsed = definitionSchema.safeParse(input);
  if (!parsed.success) {
    return {
      errors: parsed.error.issues.map((i) => ({
        path: [prefix, ...i.path.map(String)].join('.'),
        message: i.message,
      })),
    };
  }
  const def = parsed.data as Definition;
  const errors: FieldError[] = [];
  const at = (msg: string, path: string) => errors.push({ path: `${prefix}.${path}`, message: msg });

  if (JSON.stringify(def).length > MAX_DEFINITION_BYTES) at(`definition is larger than ${MAX_DEFINITION_BYTES} bytes`, 'nodes');

  const ids = new Map<string, number>();
  def.nodes.forEach((n, i) => {
    if (ids.has(n.id)) at(`duplicate node id "${n.id}"`, `nodes.${i}.id`);
    else ids.set(n.id, i);
    // Prototype keys would shadow the run's scope ({{params}}, {{<node>.x}}).
    if (['params', '__proto__', 'constructor', 'prototype'].includes(n.id)) at(`node id "${n.id}" is reserved`, `nodes.${i}.id`);
    if (!isDeviceStep(n)) {
      if (n.retry || n.timeoutMs || n.heartbeatTimeoutMs || n.onInterrupt) {
        at(`node "${n.id}": retry, timeouts and onInterrupt apply to device steps only`, `nodes.${i}`);
      }
      const res = controlParams[n.type].safeParse(n.params ?? {});
      if (!res.success) {
        for (const issue of res.error.issues) {
          at(`node "${n.id}" (${n.type}): ${issue.message}`, ['nodes', i, 'params', ...issue.path.map(String)].join('.'));
        }
      }
    }
  });

  const starts = def.nodes.filter((n) => n.type === 'start');
  if (starts.length !== 1) at(`a definition has exactly one start node (found ${starts.length})`, 'nodes');
  if (!def.nodes.some((n) => n.type === 'end')) at('a definition needs at least one end node', 'nodes');

  const out = new Map<string, string[]>();
  def.edges.forEach((e, i) => {
    if (!ids.has(e.from)) at(`edge from unknown node "${e.from}"`, `edges.${i}.from`);
    if (!ids.has(e.to)) at(`edge to unknown node "${e.to}"`, `edges.${i}.to`);
    if (e.to === starts[0]?.id) at(`edge into the start node "${e.to}"`, `edges.${i}.to`);
    const list = out.get(e.from) ?? [];
    list.push(e.to);
    out.set(e.from, list);
  });

  def.nodes.forEach((n, i) => {
    const edges = def.edges.filter((e) => e.from === n.id);
    if (n.type === 'end' && edges.length) at(`end node "${n.id}" has outgoing edges`, `nodes.${i}`);
    if (n.type !== 'end' && edges.length === 0) at(`node "${n.id}" has no outgoing edge (add an edge to an end node)`, `nodes.${i}`);
    const problem = branchProblem(n, edges.map((e) => e.when));
    if (problem) at(problem, `nodes.${i}`);
  });
  if (errors.length) return { errors };

  // Every node reachable from start.
  const seen = new Set<string>();
  const stack = [starts[0].id];
  while (stack.length) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const to of out.get(id) ?? []) stack.push(to);
  }
  def.nodes.forEach((n, i) => {
    if (!seen.has(n.id)) at(`node "${n.id}" is not reachable from the start node`, `nodes.${i}`);
  });

  // Cycles only through a loop node: the graph without loop nodes' "body" back-edges is acyclic.
  const types = new Map(def.nodes.map((n) => [n.id, n.type]));
  const color = new Map<string, 0 | 1 | 2>();
  const visit = (id: string): string | null => {
    color.set(id, 1);
    for (const to of out.get(id) ?? []) {
      if (types.get(to) === 'loop' && color.get(to) === 1) continue; // back to a loop head: allowed
      const c = color.get(to) ?? 0;
      if (c === 1) return to;
      if (c === 0) {
        const found = visit(to);
        if (found) return found;
      }
    }
    color.set(id, 2);
    return null;
  };
  const cycleAt = visit(starts[0].id);
  if (cycleAt) {
    at(`cycle through node "${cycleAt}" that does not pass a loop node`, `nodes.${ids.get(cycleAt)}`);
  }

  const heaviest = heaviestNode(def, out);
  if (heaviest.visits > MAX_NODE_VISITS_PER_RUN) {
    at(`the loops around node "${heaviest.id}" make a run visit up to ${heaviest.visits} nodes ` +
      `(at most ${MAX_NODE_VISITS_PER_RUN} allowed)`, `nodes.${ids.get(heaviest.id)}`);
  }

  // Templates refer to parameters, the loop, or nodes that run before (can reach this node).
  const reaches = (fromId: string, toId: string): boolean => {
    const seenR = new Set<string>();
    const todo = [...(out.get(fromId) ?? [])];
    while (todo.length) {
      const id = todo.pop()!;
      if (id === toId) return true;
      if (seenR.has(id)) continue;
      seenR.add(id);
      todo.push(...(out.get(id) ?? []));
    }
    return false;
  };
  def.nodes.forEach((n, i) => {
    for (const path of templatePaths(n.params ?? {})) {
      const head = path.split('.')[0];
      if (head === 'params' || head === 'loop') continue;
      if (!ids.has(head)) at(`template "{{${path}}}" refers to unknown node "${head}"`, `nodes.${i}.params`);
      else if (!reaches(head, n.id)) at(`template "{{${path}}}": node "${head}" does not run before "${n.id}"`, `nodes.${i}.params`);
    }
  });

  return errors.length ? { errors } : { definition: def, errors: [] };
}

/**
 * How often a loop runs its body as far as the definition says: a literal count or item list,
 * else its maxIterations; a templated count without maxIterations is known only at run time
 * (where the run's node budget bounds it), counted once here.
 */
function loopTimes(n: DefinitionNode): number {
  const p = (n.params ?? {}) as { count?: unknown; items?: unknown; maxIterations?: unknown };
  if (typeof p.count === 'number') return p.count;
  if (Array.isArray(p.items)) return p.items.length;
  return typeof p.maxIterations === 'number' ? p.maxIterations : 1;
}

/**
 * The node visited most often by a run, by the product of the counts of the loops around it
 * (a node is inside a loop when the loop's body reaches it before coming back to the loop), and
 * the total visits of all nodes: a run over MAX_NODE_VISITS_PER_RUN would fail, so it is refused
 * at save. The total is what is compared; the node names where the weight sits.
 */
function heaviestNode(def: Definition, out: Map<string, string[]>): { id: string; visits: number } {
  const times = new Map<string, number>(def.nodes.map((n) => [n.id, 1]));
  for (const loop of def.nodes.filter((n) => n.type === 'loop')) {
    const k = loopTimes(loop);
    times.set(loop.id, times.get(loop.id)! * (k + 1));
    const body = def.edges.find((e) => e.from === loop.id && e.when === 'body')?.to;
    const inside = new Set<string>();
    const todo = body === undefined ? [] : [body];
    while (todo.length) {
      const id = todo.pop()!;
      if (id === loop.id || inside.has(id)) continue;
      inside.add(id);
      todo.push(...(out.get(id) ?? []));
    }
    for (const id of inside) times.set(id, times.get(id)! * k);
  }
  let total = 0;
  let top = { id: def.nodes[0].id, visits: 0 };
  for (const [id, visits] of times) {
    total += visits;
    if (visits > top.visits) top = { id, visits };
  }
  return { id: top.id, visits: total };
}

/** Which outgoing edge labels each node type takes. */
const BRANCHES: Record<string, { required: string[]; optional: string[] }> = {
  condition: { required: ['true', 'false'], optional: [] },
  loop: { required: ['body', 'done'], optional: [] },
  approval: { required: [], optional: ['approved', 'rejected'] },
};

function branchProblem(n: DefinitionNode, labels: (string | undefined)[]): string | null {
  const rule = BRANCHES[n.type];
  const dup = labels.find((l, i) => labels.indexOf(l) !== i);
  if (dup !== undefined || (labels.length > 1 && labels.includes(undefined))) {
    return `node "${n.id}" has ambiguous outgoing edges (${labels.map((l) => l ?? '(none)').join(', ')})`;
  }
  if (!rule) {
    if (labels.length > 1) return `node "${n.id}" has ${labels.length} outgoing edges; only condition, loop and approval nodes branch`;
    if (labels[0] !== undefined) return `node "${n.id}": edge label "${labels[0]}" only applies to branching nodes`;
    return null;
  }
  for (const r of rule.required) {
    if (!labels.includes(r)) return `${n.type} node "${n.id}" needs an edge with when "${r}"`;
  }
  for (const l of labels) {
    if (l !== undefined && !rule.required.includes(l) && !rule.optional.includes(l)) {
      return `${n.type} node "${n.id}": unknown edge label "${l}" (use ${[...rule.required, ...rule.optional].join(', ')})`;
    }
  }
  if (n.type === 'approval' && labels.includes(undefined) && labels.length > 1) {
    return `approval node "${n.id}": label every edge (approved, rejected) or use one unlabeled edge`;
  }
  return null;
}
