// Entities as the database has them (migrations in /migrations own the schema).
// Foreign keys are plain id columns: every query is by id, and owner scoping stays explicit.
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

const now = () => new Date();

export const TASK_STATUSES = ['pending', 'running', 'paused', 'completed', 'failed', 'cancelled'] as const;
export type TaskStatus = (typeof TASK_STATUSES)[number];
export const FINISHED_STATUSES: readonly TaskStatus[] = ['completed', 'failed', 'cancelled'];
export const PRIORITIES = ['high', 'medium', 'low'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const User = defineEntity({
  name: 'User',
  tableName: 'users',
  properties: {
    id: p.uuid().primary(),
    email: p.string(),
    passwordHash: p.text().hidden(),
    name: p.string().nullable(),
    createdAt: p.datetime().onCreate(now),
    updatedAt: p.datetime().onCreate(now).onUpdate(now),
  },
});
export type User = InferEntity<typeof User>;

export const Device = defineEntity({
  name: 'Device',
  tableName: 'devices',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** The client's own id for the machine (unique per user). */
    deviceId: p.string(),
    deviceName: p.string(),
    osType: p.string().nullable(),
    osVersion: p.string().nullable(),
    appVersion: p.string().nullable(),
    tokenHash: p.string().hidden(),
    capabilities: p.json<string[]>().nullable(),
    isOnline: p.boolean().default(false),
    /** API node holding the live socket; null when offline. */
    nodeId: p.string().nullable(),
    sessionId: p.string().nullable(),
    /** When the current session started: an older session's late write never wins. */
    sessionStartedAt: p.datetime().nullable(),
    lastOnlineAt: p.datetime().nullable(),
    createdAt: p.datetime().onCreate(now),
    updatedAt: p.datetime().onCreate(now).onUpdate(now),
  },
});
export type Device = InferEntity<typeof Device>;

export const Workflow = defineEntity({
  name: 'Workflow',
  tableName: 'workflows',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    name: p.string(),
    description: p.text().nullable(),
    category: p.string().nullable(),
    tags: p.json<string[]>(),
    currentVersion: p.integer(),
    isArchived: p.boolean().default(false),
    createdAt: p.datetime().onCreate(now),
    updatedAt: p.datetime().onCreate(now).onUpdate(now),
  },
});
export type Workflow = InferEntity<typeof Workflow>;

export const WorkflowVersion = defineEntity({
  name: 'WorkflowVersion',
  tableName: 'workflow_versions',
  properties: {
    id: p.uuid().primary(),
    workflowId: p.uuid(),
    version: p.integer(),
    definition: p.json<Record<string, unknown>>(),
    parameters: p.json<Record<string, unknown>>().nullable(),
    createdAt: p.datetime().onCreate(now),
  },
});
export type WorkflowVersion = InferEntity<typeof WorkflowVersion>;

export const Task = defineEntity({
  name: 'Task',
  tableName: 'tasks',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    workflowId: p.uuid(),
    workflowVersionId: p.uuid(),
    deviceId: p.uuid(),
    status: p.enum(TASK_STATUSES),
    statusReason: p.string().nullable(),
    priority: p.enum(PRIORITIES),
    parameters: p.json<Record<string, unknown>>(),
    idempotencyKey: p.string().nullable(),
    temporalWorkflowId: p.string(),
    temporalRunId: p.string().nullable(),
    currentNode: p.string().nullable(),
    progress: p.integer().default(0),
    result: p.json<unknown>().nullable(),
    error: p.json<{ code: string; message: string; [k: string]: unknown }>().nullable(),
    lastSeq: p.integer().default(0),
    createdAt: p.datetime().onCreate(now),
    updatedAt: p.datetime().onCreate(now).onUpdate(now),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    durationMs: p.integer().nullable(),
  },
});
export type Task = InferEntity<typeof Task>;

export const TaskStep = defineEntity({
  name: 'TaskStep',
  tableName: 'task_steps',
  properties: {
    id: p.uuid().primary(),
    taskId: p.uuid(),
    nodeId: p.string(),
    nodeType: p.string(),
    name: p.string().nullable(),
    attempt: p.integer(),
    key: p.string(),
    status: p.enum(['running', 'completed', 'failed', 'cancelled'] as const),
    output: p.json<unknown>().nullable(),
    error: p.json<unknown>().nullable(),
    startedAt: p.datetime(),
    finishedAt: p.datetime().nullable(),
  },
});
export type TaskStep = InferEntity<typeof TaskStep>;

export const TaskEvent = defineEntity({
  name: 'TaskEvent',
  tableName: 'task_events',
  properties: {
    taskId: p.uuid().primary(),
    seq: p.integer().primary(),
    kind: p.string(),
    at: p.datetime(),
    data: p.json<Record<string, unknown>>(),
  },
  primaryKeys: ['taskId', 'seq'],
});
export type TaskEvent = InferEntity<typeof TaskEvent>;

export const Schedule = defineEntity({
  name: 'Schedule',
  tableName: 'schedules',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    workflowId: p.uuid(),
    deviceId: p.uuid(),
    name: p.string().nullable(),
    parameters: p.json<Record<string, unknown>>(),
    priority: p.enum(PRIORITIES),
    cron: p.string().nullable(),
    intervalSeconds: p.integer().nullable(),
    timezone: p.string().nullable(),
    paused: p.boolean().default(false),
    temporalScheduleId: p.string(),
    createdAt: p.datetime().onCreate(now),
    updatedAt: p.datetime().onCreate(now).onUpdate(now),
  },
});
export type Schedule = InferEntity<typeof Schedule>;

export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export const LOG_CATEGORIES = ['system', 'task', 'device', 'message', 'error'] as const;
export type LogCategory = (typeof LOG_CATEGORIES)[number];

export const Log = defineEntity({
  name: 'Log',
  tableName: 'logs',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** Null when the log is about no task (or named a task that is not the user's). */
    taskId: p.uuid().nullable(),
    deviceId: p.uuid().nullable(),
    level: p.enum(LOG_LEVELS),
    category: p.enum(LOG_CATEGORIES),
    message: p.text(),
    /** Free JSON, with secret-looking keys stripped before storing (src/domain/logs.ts). */
    details: p.json<unknown>().nullable(),
    createdAt: p.datetime().onCreate(now),
  },
});
export type Log = InferEntity<typeof Log>;

/** An uploaded file's metadata; its bytes are in the file store (src/storage/) under storageKey. */
export const StoredFile = defineEntity({
  name: 'StoredFile',
  tableName: 'files',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    name: p.string(),
    /** Detected from the content, never taken from the client. */
    contentType: p.string(),
    sizeBytes: p.bigint('number'),
    sha256: p.string(),
    storageKey: p.string(),
    createdAt: p.datetime().onCreate(now),
  },
});
export type StoredFile = InferEntity<typeof StoredFile>;

export const ENTITIES = [User, Device, Workflow, WorkflowVersion, Task, TaskStep, TaskEvent, Schedule, Log, StoredFile];
