// The step graph of a workflow definition: types and pure helpers shared by the API's
// validator and the workflow code (so no Node APIs and no dependencies here).

export interface RetrySpec {
  /** Total attempts, including the first. */
  maxAttempts?: number;
  initialIntervalMs?: number;
  backoffCoefficient?: number;
  maxIntervalMs?: number;
  /** Device error codes worth another attempt; default: errors the device marks retryable. */
  retryableCodes?: string[];
}

export interface DefinitionNode {
  id: string;
  type: string;
  name?: string;
  params?: Record<string, unknown>;
  retry?: RetrySpec;
  timeoutMs?: number;
  /** A device step fails (retryable) when the device reports no progress for this long. */
  heartbeatTimeoutMs?: number;
  /** What a device step does when the PC stopped in the middle of it (see ON_INTERRUPT). */
  onInterrupt?: OnInterrupt;
}

/**
 * What a device step does when the PC stopped in the middle of it (the app died or was killed,
 * so nobody knows whether the step took effect; the device answers STEP_INTERRUPTED):
 * `retry`, a new attempt as the retry policy allows (for idempotent steps; the default);
 * `fail`, the run fails with STEP_INTERRUPTED; `ask`, the run waits for the person to say
 * whether to run the step again.
 */
export const ON_INTERRUPT = ['retry', 'fail', 'ask'] as const;
export type OnInterrupt = (typeof ON_INTERRUPT)[number];
/** The code a device answers for a step it started and never finished (docs/PROTOCOL.md). */
export const STEP_INTERRUPTED = 'STEP_INTERRUPTED';

export interface DefinitionEdge {
  from: string;
  to: string;
  /** Branch label: condition nodes take "true"/"false"; loops "body"/"done". */
  when?: string;
}

export interface Definition {
  nodes: DefinitionNode[];
  edges: DefinitionEdge[];
}

/** Node types the engine runs itself; every other type is a device step, opaque to us. */
export const CONTROL_NODE_TYPES = ['start', 'end', 'condition', 'wait', 'approval', 'loop'] as const;
export type ControlNodeType = (typeof CONTROL_NODE_TYPES)[number];

export function isDeviceStep(node: DefinitionNode): boolean {
  return !(CONTROL_NODE_TYPES as readonly string[]).includes(node.type);
}

export function outgoing(def: Definition, nodeId: string): DefinitionEdge[] {
  return def.edges.filter((e) => e.from === nodeId);
}

/** The next node after `nodeId`, following the edge labelled `branch` when one is given. */
export function nextNodeId(def: Definition, nodeId: string, branch?: string): string | undefined {
  const edges = outgoing(def, nodeId);
  if (branch !== undefined) {
    return (edges.find((e) => e.when === branch) ?? edges.find((e) => e.when === undefined))?.to;
  }
  return edges[0]?.to;
}

const TEMPLATE = /\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}/g;
const WHOLE_TEMPLATE = /^\{\{\s*([A-Za-z0-9_.-]+)\s*\}\}$/;

/** Whether a run from `from` (else the start node) dispatches a device step before anything else. */
export function beginsWithDeviceStep(def: Definition, from?: string): boolean {
  const start = from ?? def.nodes.find((n) => n.type === 'start')?.id;
  const first = from ?? (start === undefined ? undefined : nextNodeId(def, start));
  const node = first === undefined ? undefined : def.nodes.find((n) => n.id === first);
  return node !== undefined && isDeviceStep(node);
}

/** Reads a dotted path ("params.url", "n2.output.ok") from the run's scope. */
export function lookup(scope: Record<string, unknown>, path: string): unknown {
  let cur: unknown = scope;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    if (!Object.prototype.hasOwnProperty.call(cur, part)) return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

/**
 * Fills `{{path}}` templates. A string that is exactly one template keeps the value's type;
 * templates inside longer strings are stringified.
 */
export function render(value: unknown, scope: Record<string, unknown>): unknown {
  if (typeof value === 'string') {
    const whole = WHOLE_TEMPLATE.exec(value);
    if (whole) return lookup(scope, whole[1]);
    return value.replace(TEMPLATE, (_, path: string) => {
      const v = lookup(scope, path);
      if (v === undefined || v === null) return '';
      return typeof v === 'object' ? JSON.stringify(v) : String(v);
    });
  }
  if (Array.isArray(value)) return value.map((v) => render(v, scope));
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = render(v, scope);
    return out;
  }
  return value;
}

/** Every `{{path}}` referenced anywhere in a value. */
export function templatePaths(value: unknown, found: string[] = []): string[] {
  if (typeof value === 'string') {
    for (const m of value.matchAll(TEMPLATE)) found.push(m[1]);
  } else if (Array.isArray(value)) {
    for (const v of value) templatePaths(v, found);
  } else if (value && typeof value === 'object') {
    for (const v of Object.values(value)) templatePaths(v, found);
  }
  return found;
}
