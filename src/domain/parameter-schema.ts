// A workflow version's `parameters` is a JSON Schema (draft 2020-12) of the parameters a run
// takes: checked when the version is saved, and every run's parameters (POST /tasks, schedules)
// are validated against the version they run, with the schema's defaults filled in.
import Ajv2020Module from 'ajv/dist/2020.js';
import type { ErrorObject, ValidateFunction } from 'ajv/dist/2020.js';
import type { RegExpEngine } from 'ajv/dist/types/index.js';
import addFormatsModule from 'ajv-formats';
import { RE2JS } from 're2js';
import type { WorkflowVersion } from '../db/entities.ts';
import type { OwnedRepos } from '../db/owned.ts';
import * as workflowsDb from '../db/workflows.ts';
import { errors, type FieldError } from '../errors.ts';

// CommonJS modules whose export is also their `default`: the same at run time under Node's ESM
// loader and in the compiler's view.
const Ajv2020 = Ajv2020Module.default;
const addFormats = addFormatsModule.default;

type Options = ConstructorParameters<typeof Ajv2020>[0];

/**
 * `pattern` and `patternProperties` run on RE2 (linear time): a schema is the user's, and a
 * backtracking pattern such as `^(a+)+$` against a long parameter would hold the API node's event
 * loop. RE2 has no lookaround or backreferences; a schema using them is refused at save.
 */
const linearRegExp: RegExpEngine = Object.assign((pattern: string) => RE2JS.compile(pattern), { code: 'RE2JS.compile' });

/**
 * At save: strict about keywords and formats, so a typo (`requried`, `format: "e-mail"`) is an
 * error rather than a rule silently not applied; not about the style of types (`properties`
 * without `type: "object"` is valid JSON Schema).
 */
const SAVE: Options = { strict: true, strictTypes: false, strictTuples: false, allErrors: true };
/**
 * At run: versions saved before the check may hold keywords the strict check refuses; they are
 * ignored here (annotations), so those versions keep running.
 */
const RUN: Options = { strict: false, allErrors: true, useDefaults: true };

function compiler(options: Options) {
  const ajv = new Ajv2020({ ...options, code: { regExp: linearRegExp } });
  addFormats(ajv);
  return ajv;
}

/** `/a/0/b~1c` as `parameters.a.0.b/c`, the way the other 400s name fields. */
function fieldPath(prefix: string, pointer: string, child?: string): string {
  const parts = pointer.split('/').slice(1).map((p) => p.replace(/~1/g, '/').replace(/~0/g, '~'));
  if (child !== undefined) parts.push(child);
  return [prefix, ...parts].join('.');
}

function fieldErrors(prefix: string, list: ErrorObject[] | null | undefined): FieldError[] {
  return (list ?? []).map((e) => {
    const p = e.params as { missingProperty?: string; additionalProperty?: string };
    const child = e.keyword === 'required' ? p.missingProperty : e.keyword === 'additionalProperties' ? p.additionalProperty : undefined;
    const message = e.keyword === 'required' ? 'is required' : e.keyword === 'additionalProperties' ? 'is not a known parameter' : e.message ?? 'is not valid';
    return { path: fieldPath(prefix, e.instancePath, child), message };
  });
}

/** Throws a 400 naming what is wrong unless `schema` is a JSON Schema (draft 2020-12) a run can be checked with. */
export function checkParameterSchema(schema: Record<string, unknown> | null | undefined): void {
  if (schema == null) return;
  const ajv = compiler(SAVE);
  if (!ajv.validateSchema(schema)) {
    throw errors.invalid('parameters is not a valid JSON Schema (draft 2020-12)', fieldErrors('parameters', ajv.errors));
  }
  if (schema.$async) throw errors.invalid('parameters is not a valid JSON Schema', [{ path: 'parameters.$async', message: 'asynchronous schemas are not supported' }]);
  try {
    ajv.compile(schema);
  } catch (err) {
    // Unknown keywords and formats, references that lead nowhere (no remote schemas are loaded).
    throw errors.invalid('parameters is not a valid JSON Schema (draft 2020-12)', [{ path: 'parameters', message: (err as Error).message }]);
  }
}

/** Compiled validators by version id (versions never change), for the process's life. */
const validators = new Map<string, ValidateFunction>();
const MAX_VALIDATORS = 1000;

function validatorOf(version: Pick<WorkflowVersion, 'id' | 'parameters'>): ValidateFunction | null {
  if (version.parameters == null) return null;
  let validate = validators.get(version.id);
  if (!validate) {
    try {
      validate = compiler(RUN).compile(version.parameters);
    } catch (err) {
      throw errors.invalid('the workflow version\'s parameter schema is not valid; save a new version', [
        { path: 'workflow.parameters', message: (err as Error).message },
      ]);
    }
    if (validators.size >= MAX_VALIDATORS) validators.delete(validators.keys().next().value!);
    validators.set(version.id, validate);
  }
  return validate;
}

/**
 * A run's parameters checked against the schema of the version it runs, with the schema's
 * defaults filled in (a copy: the caller's object is left alone). A 400 names each bad field.
 * A version without a schema takes any parameters.
 */
export function checkedParameters(version: Pick<WorkflowVersion, 'id' | 'parameters'>, given: Record<string, unknown>): Record<string, unknown> {
  const validate = validatorOf(version);
  if (!validate) return given;
  const parameters = structuredClone(given);
  if (!validate(parameters)) {
    throw errors.invalid('parameters do not match the workflow\'s parameter schema', fieldErrors('parameters', validate.errors));
  }
  return parameters;
}

/**
 * Throws a 400 naming each bad field unless `given` fits the schema of the user's workflow's
 * current version (a schedule's parameters, checked when it is made; its runs are checked again,
 * against the version current when each fires, with the defaults filled in then).
 */
export async function checkWorkflowParameters(repos: OwnedRepos, workflowId: string, given: Record<string, unknown>): Promise<void> {
  const workflow = await workflowsDb.get(repos, workflowId);
  checkedParameters(await workflowsDb.currentVersion(repos, workflow), given);
}
