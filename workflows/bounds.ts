// Bounds on what one run may do, shared by the definition's validation at save
// (src/domain/definition-schema.ts, for literals) and the workflow at run time (for values
// templates resolve to, and for the walk as a whole). No dependencies: bundled into workflows.

/** Longest `wait` node. */
export const MAX_WAIT_MS = 30 * 86_400_000;
/** Longest approval timeout. */
export const MAX_APPROVAL_TIMEOUT_MS = 30 * 86_400_000;
/** Most iterations of one loop (its `count`, or its `maxIterations`). */
export const MAX_LOOP_COUNT = 100_000;
/** Longest `items` list a loop walks. */
export const MAX_LOOP_ITEMS = 10_000;

/**
 * Most node visits in one run (a loop's body counts once per iteration, the loop node once per
 * iteration plus one). A run that would go further fails with RUN_BUDGET_EXCEEDED; a definition
 * whose literal loop counts alone go further is refused at save.
 */
export const MAX_NODE_VISITS_PER_RUN = 20_000;
/**
 * Control-node visits (condition, loop, start, wait) the walk makes in one workflow task before
 * it yields to Temporal (a 1 ms timer): the task stays far below the SDK's deadline, and a
 * cancel or a pause lands within one yield.
 */
export const CONTROL_VISITS_PER_TASK = 1000;

export const RUN_BUDGET_EXCEEDED = 'RUN_BUDGET_EXCEEDED';
export const INVALID_PARAM_VALUE = 'INVALID_PARAM_VALUE';
