// Validates a workflow definition on every write and before every start: its JSON shape
// (zod) and its graph (one start, edges to real nodes, all reachable, cycles only through a
// loop, templates resolvable). Each fault names the node.
import { z } from 'zod';
import {
  isDeviceStep,
  templatePaths,
  type Definition,
} from '../../workflows/definition.ts';
import type { FieldError } from '../http/errors.ts';

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

/** Max JSON size of a definition: big enough for real automations, small enough for history. */
export const MAX_DEFINITION_BYTES = 512 * 1024;

export function validateDefinition(input: unknown, prefix = 'definition'): { definition?: Definition; errors: FieldError[] } {
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
    if (!isDeviceStep(n) && (n.retry || n.timeoutMs) && n.type !== 'approval' && n.type !== 'wait') {
      at(`node "${n.id}": retry and timeoutMs apply to device steps only`, `nodes.${i}`);
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
    if (n.type === 'condition') {
      const labels = edges.map((e) => e.when);
      if (!labels.includes('true') || !labels.includes('false')) {
        at(`condition node "${n.id}" needs edges with when "true" and when "false"`, `nodes.${i}`);
      }
    } else if (n.type === 'loop') {
      const labels = edges.map((e) => e.when);
      if (!labels.includes('body') || !labels.includes('done')) {
        at(`loop node "${n.id}" needs edges with when "body" and when "done"`, `nodes.${i}`);
      }
    } else if (edges.length > 1) {
      at(`node "${n.id}" has ${edges.length} outgoing edges; only condition and loop nodes branch`, `nodes.${i}`);
    }
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

  // Templates refer to parameters or to earlier nodes.
  def.nodes.forEach((n, i) => {
    for (const path of templatePaths(n.params ?? {})) {
      const head = path.split('.')[0];
      if (head !== 'params' && head !== 'loop' && !ids.has(head)) {
        at(`template "{{${path}}}" refers to unknown node "${head}"`, `nodes.${i}.params`);
      }
    }
  });

  return errors.length ? { errors } : { definition: def, errors: [] };
}
