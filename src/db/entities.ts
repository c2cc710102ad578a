// Entities as the database has them: every table, column, index, unique and check constraint
// that the migrations (/migrations, which own the schema) build is declared here too, and
// test/integration/schema.test.ts fails when the two differ. Foreign keys are plain id columns
// (every query is by id, and owner scoping stays explicit in src/db), so the constraints behind
// them are listed in FOREIGN_KEYS below, and checked by the same test.
import { defineEntity, p, type InferEntity } from '@mikro-orm/core';

const now = () => new Date();
/** Columns the database fills with now() when an insert leaves them out (hand-written SQL does). */
const NOW = 'now()';

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
    email: p.string().length(254),
    passwordHash: p.text().hidden(),
    name: p.string().length(100).nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  // One account per address, whatever its case.
  uniques: [{ name: 'users_email_key', expression: 'create unique index users_email_key on users (lower(email))' }],
});
export type User = InferEntity<typeof User>;

/** A device's machine readings as it reported them (percentages 0-100). */
export interface DeviceReadings {
  cpu_percent?: number;
  memory_percent?: number;
  battery?: { percent: number; charging?: boolean };
}

export const Device = defineEntity({
  name: 'Device',
  tableName: 'devices',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** The client's own id for the machine (unique per user). */
    deviceId: p.string(),
    deviceName: p.string(),
    osType: p.string().length(50).nullable(),
    osVersion: p.string().length(50).nullable(),
    appVersion: p.string().length(50).nullable(),
    tokenHash: p.string().length(64).hidden().unique('devices_token_hash_key'),
    capabilities: p.json<string[]>().nullable(),
    isOnline: p.boolean().default(false),
    /** API node holding the live socket; null when offline. */
    nodeId: p.string().length(64).nullable(),
    /**
     * The current device connection's id (its hello `session_id`); the column keeps the
     * protocol's word, the property says it is a connection, not a login session.
     */
    connectionId: p.string().length(64).nullable().fieldName('session_id'),
    /** When the current connection started: an older connection's late write never wins. */
    connectionStartedAt: p.datetime().nullable().fieldName('session_started_at'),
    lastOnlineAt: p.datetime().nullable(),
    /** What the device's current connection last said in `device/status` (false when offline). */
    isBusy: p.boolean().default(false),
    /** Its last machine readings, merged field by field as `device/status` frames bring them. */
    status: p.json<DeviceReadings>().nullable(),
    statusAt: p.datetime().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  uniques: [{ name: 'devices_user_id_device_id_key', properties: ['userId', 'deviceId'] }],
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
    category: p.string().length(50).nullable(),
    tags: p.json<string[]>().defaultRaw(`'[]'`),
    currentVersion: p.integer(),
    isArchived: p.boolean().default(false),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  indexes: [{ name: 'workflows_user_idx', columns: [{ name: 'user_id' }, { name: 'updated_at', sort: 'desc' }] }],
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
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  uniques: [{ name: 'workflow_versions_workflow_id_version_key', properties: ['workflowId', 'version'] }],
});
export type WorkflowVersion = InferEntity<typeof WorkflowVersion>;

/** What tasks.step_progress holds. */
export interface StepProgressRecord {
  step_id: string;
  key: string;
  attempt: number;
  percent?: number;
  message?: string;
  /** Epoch ms the device reported it. */
  at: number;
}

export const Task = defineEntity({
  name: 'Task',
  tableName: 'tasks',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    workflowId: p.uuid(),
    workflowVersionId: p.uuid(),
    deviceId: p.uuid(),
    status: p.enum(TASK_STATUSES).columnType('varchar(16)'),
    statusReason: p.string().nullable(),
    priority: p.enum(PRIORITIES).columnType('varchar(8)'),
    parameters: p.json<Record<string, unknown>>().defaultRaw(`'{}'`),
    idempotencyKey: p.string().nullable(),
    temporalWorkflowId: p.string(),
    temporalRunId: p.string().length(64).nullable(),
    currentNode: p.string().nullable(),
    progress: p.integer().default(0),
    result: p.json<unknown>().nullable(),
    error: p.json<{ code: string; message: string; [k: string]: unknown }>().nullable(),
    lastSeq: p.integer().default(0),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
    startedAt: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    durationMs: p.integer().nullable(),
    /** The running step's last progress (src/domain/step-progress.ts writes it, throttled). */
    stepProgress: p.json<StepProgressRecord>().nullable().lazy(),
  },
  indexes: [
    // As an expression: MikroORM 7.2's introspection reads `id desc` as ascending when another
    // column's name ends in "id" (it matches `user_id`), so the structural form always differs.
    { name: 'tasks_user_created_idx', expression: 'create index tasks_user_created_idx on tasks (user_id, created_at desc, id desc)' },
    { name: 'tasks_device_status_idx', properties: ['deviceId', 'status'] },
    // Counting a user's unfinished runs (the per-account limit, src/db/quotas.ts).
    {
      name: 'tasks_user_unfinished_idx',
      expression: "create index tasks_user_unfinished_idx on tasks (user_id) where status in ('pending', 'running', 'paused')",
    },
  ],
  uniques: [{
    name: 'tasks_idempotency_key',
    expression: 'create unique index tasks_idempotency_key on tasks (user_id, idempotency_key) where idempotency_key is not null',
  }],
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
    key: p.string().length(600).unique('task_steps_key_key'),
    status: p.enum(['running', 'completed', 'failed', 'cancelled'] as const).columnType('varchar(16)'),
    output: p.json<unknown>().nullable(),
    error: p.json<unknown>().nullable(),
    startedAt: p.datetime(),
    finishedAt: p.datetime().nullable(),
  },
  indexes: [{ name: 'task_steps_task_idx', properties: ['taskId', 'startedAt'] }],
});
export type TaskStep = InferEntity<typeof TaskStep>;

export const TaskEvent = defineEntity({
  name: 'TaskEvent',
  tableName: 'task_events',
  properties: {
    taskId: p.uuid().primary(),
    seq: p.integer().primary(),
    kind: p.string().length(64),
    at: p.datetime(),
    data: p.json<Record<string, unknown>>().defaultRaw(`'{}'`),
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
    parameters: p.json<Record<string, unknown>>().defaultRaw(`'{}'`),
    priority: p.enum(PRIORITIES).columnType('varchar(8)'),
    cron: p.string().nullable(),
    intervalSeconds: p.integer().nullable(),
    timezone: p.string().length(64).nullable(),
    paused: p.boolean().default(false),
    temporalScheduleId: p.string().unique('schedules_temporal_schedule_id_key'),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  indexes: [{ name: 'schedules_user_idx', columns: [{ name: 'user_id' }, { name: 'created_at', sort: 'desc' }] }],
  checks: [
    // Exactly one of the two ways to recur.
    { name: 'schedules_check', expression: '(cron is null) <> (interval_seconds is null)' },
    { name: 'schedules_interval_seconds_check', expression: 'interval_seconds is null or interval_seconds >= 60' },
  ],
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
    level: p.enum(LOG_LEVELS).columnType('varchar(8)'),
    category: p.enum(LOG_CATEGORIES).columnType('varchar(16)'),
    message: p.text(),
    /** Free JSON, with secret-looking keys stripped before storing (src/domain/logs.ts). */
    details: p.json<unknown>().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [
    // An expression for the reason given at tasks_user_created_idx.
    { name: 'logs_user_idx', expression: 'create index logs_user_idx on logs (user_id, created_at desc, id desc)' },
    { name: 'logs_task_idx', expression: 'create index logs_task_idx on logs (task_id, created_at) where task_id is not null' },
  ],
});
export type Log = InferEntity<typeof Log>;

/** An uploaded file's metadata; its bytes are in the file store (src/db/file-chunks.ts) under storageKey. */
export const StoredFile = defineEntity({
  name: 'StoredFile',
  tableName: 'files',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    name: p.string(),
    /** Detected from the content, never taken from the client. */
    contentType: p.string().length(100),
    sizeBytes: p.bigint('number'),
    sha256: p.string().columnType('char(64)'),
    storageKey: p.string().unique('files_storage_key_key'),
    /** The run a step artifact's file belongs to (deleted with it); null for an upload. */
    taskId: p.uuid().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [
    { name: 'files_user_idx', columns: [{ name: 'user_id' }, { name: 'created_at', sort: 'desc' }] },
    { name: 'files_task_idx', expression: 'create index files_task_idx on files (task_id, created_at) where task_id is not null' },
  ],
  checks: [{ name: 'files_size_bytes_check', expression: 'size_bytes >= 0' }],
});
export type StoredFile = InferEntity<typeof StoredFile>;

export const ARTIFACT_KINDS = ['screenshot', 'file'] as const;
export type ArtifactKind = (typeof ARTIFACT_KINDS)[number];

/** What a device attached to a step of a run: its bytes are a file of the user's (`fileId`). */
export const StepArtifact = defineEntity({
  name: 'StepArtifact',
  tableName: 'step_artifacts',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    taskId: p.uuid(),
    stepId: p.string(),
    attempt: p.integer(),
    stepKey: p.string().length(600),
    kind: p.string().length(20).$type<ArtifactKind>(),
    fileId: p.uuid().unique('step_artifacts_file_id_key'),
    /** A small WebP of an image, for phones; null for other types. */
    thumbnailFileId: p.uuid().nullable().unique('step_artifacts_thumbnail_file_id_key'),
    width: p.integer().nullable(),
    height: p.integer().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [{ name: 'step_artifacts_task_idx', expression: 'create index step_artifacts_task_idx on step_artifacts (task_id, created_at, id)' }],
  checks: [
    { name: 'step_artifacts_attempt_check', expression: 'attempt >= 1' },
    { name: 'step_artifacts_kind_check', expression: "kind in ('screenshot', 'file')" },
  ],
});
export type StepArtifact = InferEntity<typeof StepArtifact>;

/** A file's bytes, in fixed-size pieces (src/db/file-chunks.ts); they go with their file's row. */
export const FileChunk = defineEntity({
  name: 'FileChunk',
  tableName: 'file_chunks',
  properties: {
    storageKey: p.string().length(255).primary(),
    seq: p.integer().primary(),
    data: p.blob(),
  },
  checks: [{ name: 'file_chunks_seq_check', expression: 'seq >= 0' }],
});
export type FileChunk = InferEntity<typeof FileChunk>;


/** A login session: one refresh-token family (src/db/sessions.ts). */
export const Session = defineEntity({
  name: 'Session',
  tableName: 'sessions',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid().index('sessions_user_idx'),
    client: p.string().length(100).nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    revokedAt: p.datetime().nullable(),
    revokedReason: p.string().length(100).nullable(),
  },
});
export type Session = InferEntity<typeof Session>;

/** One refresh token of a session; spent when `usedAt` is set. Only its hash is stored. */
export const RefreshToken = defineEntity({
  name: 'RefreshToken',
  tableName: 'refresh_tokens',
  properties: {
    id: p.uuid().primary(),
    sessionId: p.uuid().index('refresh_tokens_session_idx'),
    tokenHash: p.string().length(64).hidden().unique('refresh_tokens_token_hash_key'),
    expiresAt: p.datetime(),
    usedAt: p.datetime().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
});
export type RefreshToken = InferEntity<typeof RefreshToken>;

/** Which run holds a device (src/db/lanes.ts); changed only by the lane_* SQL functions. */
export const DeviceLane = defineEntity({
  name: 'DeviceLane',
  tableName: 'device_lanes',
  properties: {
    deviceId: p.uuid().primary(),
    holderTaskId: p.uuid().nullable(),
    holderWorkflowId: p.string().nullable(),
    /** Whether the holder's run has been told (by the grant's answer or by a signal). */
    holderNotified: p.boolean().default(false),
    grantedAt: p.datetime().nullable(),
  },
});
export type DeviceLane = InferEntity<typeof DeviceLane>;

/** A run waiting for its device, served by rank (high first), then submission, then arrival. */
export const LaneRequest = defineEntity({
  name: 'LaneRequest',
  tableName: 'lane_requests',
  properties: {
    taskId: p.uuid().primary(),
    deviceId: p.uuid(),
    workflowId: p.string(),
    priorityRank: p.smallint(),
    /** ms since epoch. */
    submittedAt: p.bigint('number'),
    arrival: p.bigint('number').autoincrement(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [{
    name: 'lane_requests_order_idx',
    columns: [{ name: 'device_id' }, { name: 'priority_rank', sort: 'desc' }, { name: 'submitted_at' }, { name: 'arrival' }],
  }],
});
export type LaneRequest = InferEntity<typeof LaneRequest>;

export const NOTIFICATION_KINDS = [
  'run.completed', 'run.failed', 'run.cancelled', 'approval.requested', 'approval.expiring', 'device.offline', 'schedule.run_failed',
] as const;
export type NotificationKind = (typeof NOTIFICATION_KINDS)[number];

/** Something a user should hear about (src/domain/notifications.ts says what), kept until deleted with its user or task. */
export const Notification = defineEntity({
  name: 'Notification',
  tableName: 'notifications',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    kind: p.enum(NOTIFICATION_KINDS).columnType('varchar(32)'),
    title: p.string(),
    body: p.text().nullable(),
    taskId: p.uuid().nullable(),
    /** The run event that caused it: one notification of a kind per event. */
    seq: p.integer().nullable(),
    workflowId: p.uuid().nullable(),
    workflowName: p.string().nullable(),
    deviceId: p.uuid().nullable(),
    deviceName: p.string().nullable(),
    /** approval.requested and approval.expiring: when the approval times out. */
    expiresAt: p.datetime().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    readAt: p.datetime().nullable(),
    /** When the dispatcher decided its deliveries (src/domain/notification-dispatch.ts); null: not yet. */
    dispatchedAt: p.datetime().nullable(),
  },
  indexes: [
    // An expression for the reason given at tasks_user_created_idx.
    { name: 'notifications_user_idx', expression: 'create index notifications_user_idx on notifications (user_id, created_at desc, id desc)' },
    { name: 'notifications_user_unread_idx', expression: 'create index notifications_user_unread_idx on notifications (user_id) where read_at is null' },
    // The reminder sweep's scan (src/db/notifications.ts, insertApprovalReminders).
    {
      name: 'notifications_expiring_idx',
      expression: "create index notifications_expiring_idx on notifications (expires_at) where kind = 'approval.requested'",
    },
    // The dispatcher's queue.
    {
      name: 'notifications_undispatched_idx',
      expression: 'create index notifications_undispatched_idx on notifications (created_at) where dispatched_at is null',
    },
  ],
  uniques: [{
    name: 'notifications_task_seq_key',
    expression: 'create unique index notifications_task_seq_key on notifications (task_id, seq, kind) where task_id is not null',
  }],
});
export type Notification = InferEntity<typeof Notification>;

/** Where a notification may go besides the list and the open app's feed. */
export const NOTIFICATION_CHANNELS = ['web_push', 'fcm', 'webhook'] as const;
export type NotificationChannel = (typeof NOTIFICATION_CHANNELS)[number];

/** Per channel: on or off, and off for the kinds listed false; left out: on (src/domain/notification-settings.ts). */
export type ChannelSettings = Partial<Record<NotificationChannel, { enabled?: boolean; kinds?: Partial<Record<NotificationKind, boolean>> }>>;
/** Local times "HH:MM" in an IANA zone; `end` before `start` spans midnight. */
export interface QuietHours {
  start: string;
  end: string;
  timezone: string;
}

/** A user's notification settings; no row: the defaults. */
export const NotificationSettings = defineEntity({
  name: 'NotificationSettings',
  tableName: 'notification_settings',
  properties: {
    userId: p.uuid().primary(),
    channels: p.json<ChannelSettings>().defaultRaw(`'{}'`),
    quietHours: p.json<QuietHours>().nullable(),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
});
export type NotificationSettings = InferEntity<typeof NotificationSettings>;

/** A user's webhook: notifications of the listed kinds (none listed: all) POSTed to `url`, signed with `secret`. */
export const WebhookEndpoint = defineEntity({
  name: 'WebhookEndpoint',
  tableName: 'webhook_endpoints',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    url: p.string().length(2048),
    /** Standard Webhooks secret ("whsec_" + base64): shown once, kept to sign each delivery. */
    secret: p.string().length(100).hidden(),
    kinds: p.json<NotificationKind[]>().defaultRaw(`'[]'`),
    enabled: p.boolean().default(true),
    description: p.string().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  indexes: [
    { name: 'webhook_endpoints_user_idx', expression: 'create index webhook_endpoints_user_idx on webhook_endpoints (user_id, created_at desc, id desc)' },
  ],
});
export type WebhookEndpoint = InferEntity<typeof WebhookEndpoint>;

/** A browser's Web Push subscription (its PushSubscription JSON), one of a user's. */
export const PushSubscription = defineEntity({
  name: 'PushSubscription',
  tableName: 'push_subscriptions',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** The push service's URL for this browser: unique, a browser re-subscribing gets the same row. */
    endpoint: p.string().length(2048).unique('push_subscriptions_endpoint_key'),
    p256dh: p.string(),
    auth: p.string(),
    userAgent: p.string().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [
    { name: 'push_subscriptions_user_idx', expression: 'create index push_subscriptions_user_idx on push_subscriptions (user_id, created_at desc, id desc)' },
  ],
});
export type PushSubscription = InferEntity<typeof PushSubscription>;

/** digested: held during quiet hours, then sent inside another delivery's digest (`digestId`). */
/** A phone app's Firebase Cloud Messaging registration token, one of a user's. */
export const FcmToken = defineEntity({
  name: 'FcmToken',
  tableName: 'fcm_tokens',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    /** The app instance's token: unique, an app registering again gets the same row. */
    token: p.string().length(4096).unique('fcm_tokens_token_key'),
    platform: p.string().length(16).nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
  },
  indexes: [
    { name: 'fcm_tokens_user_idx', expression: 'create index fcm_tokens_user_idx on fcm_tokens (user_id, created_at desc, id desc)' },
  ],
});
export type FcmToken = InferEntity<typeof FcmToken>;

export const DELIVERY_STATUSES = ['pending', 'succeeded', 'failed', 'digested'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** One notification to one target (a webhook endpoint, a push subscription, an FCM token), delivered by its own Temporal workflow. */
export const NotificationDelivery = defineEntity({
  name: 'NotificationDelivery',
  tableName: 'notification_deliveries',
  properties: {
    id: p.uuid().primary(),
    userId: p.uuid(),
    notificationId: p.uuid(),
    channel: p.enum(NOTIFICATION_CHANNELS).columnType('varchar(16)'),
    endpointId: p.uuid().nullable(),
    subscriptionId: p.uuid().nullable(),
    fcmTokenId: p.uuid().nullable(),
    status: p.enum(DELIVERY_STATUSES).columnType('varchar(16)'),
    /** A push held during quiet hours waits until then (and goes out in one digest). */
    notBefore: p.datetime().nullable(),
    /** The delivery whose digest carried this one. */
    digestId: p.uuid().nullable(),
    /** HTTP requests made, over every delivery of it (redeliveries included). */
    attempts: p.integer().default(0),
    /** How many times a person asked for it again: each is a workflow of its own. */
    redeliveries: p.integer().default(0),
    lastStatusCode: p.integer().nullable(),
    lastError: p.text().nullable(),
    /** When its current workflow was started; null: the dispatcher starts it. */
    startedAt: p.datetime().nullable(),
    /** Its attempt in flight holds one of the account's permits until then (takePermit). */
    attemptingUntil: p.datetime().nullable(),
    finishedAt: p.datetime().nullable(),
    createdAt: p.datetime().defaultRaw(NOW).onCreate(now),
    updatedAt: p.datetime().defaultRaw(NOW).onCreate(now).onUpdate(now),
  },
  indexes: [
    {
      name: 'notification_deliveries_endpoint_idx',
      expression: 'create index notification_deliveries_endpoint_idx on notification_deliveries (endpoint_id, created_at desc, id desc)',
    },
    {
      name: 'notification_deliveries_unstarted_idx',
      expression: "create index notification_deliveries_unstarted_idx on notification_deliveries (created_at) where started_at is null and status = 'pending'",
    },
    {
      // Counting an account's delivery attempts in flight (its permits: db/deliveries.ts).
      name: 'notification_deliveries_attempting_idx',
      expression: 'create index notification_deliveries_attempting_idx on notification_deliveries (user_id, attempting_until) where attempting_until is not null',
    },
  ],
  uniques: [{
    name: 'notification_deliveries_endpoint_key',
    expression: 'create unique index notification_deliveries_endpoint_key on notification_deliveries (notification_id, endpoint_id) where endpoint_id is not null',
  }, {
    name: 'notification_deliveries_subscription_key',
    expression: 'create unique index notification_deliveries_subscription_key on notification_deliveries (notification_id, subscription_id) where subscription_id is not null',
  }, {
    name: 'notification_deliveries_fcm_token_key',
    expression: 'create unique index notification_deliveries_fcm_token_key on notification_deliveries (notification_id, fcm_token_id) where fcm_token_id is not null',
  }],
});
export type NotificationDelivery = InferEntity<typeof NotificationDelivery>;

export const ENTITIES = [
  User, Device, Workflow, WorkflowVersion, Task, TaskStep, TaskEvent, Schedule, Log, StoredFile, FileChunk, StepArtifact,
  Session, RefreshToken, DeviceLane, LaneRequest, Notification, NotificationSettings,
  WebhookEndpoint, PushSubscription, FcmToken, NotificationDelivery,
];

/**
 * The foreign key constraints the migrations build, by table and column: the entities hold
 * these ids as plain columns (no relations), so this list is the entities' side of them.
 */
export const FOREIGN_KEYS: readonly { table: string; column: string; references: string; onDelete: 'cascade' | 'no action' }[] = [
  { table: 'devices', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'workflows', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'workflow_versions', column: 'workflow_id', references: 'workflows', onDelete: 'cascade' },
  { table: 'tasks', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'tasks', column: 'workflow_id', references: 'workflows', onDelete: 'cascade' },
  { table: 'tasks', column: 'workflow_version_id', references: 'workflow_versions', onDelete: 'no action' },
  { table: 'tasks', column: 'device_id', references: 'devices', onDelete: 'cascade' },
  { table: 'task_steps', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'task_events', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'schedules', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'schedules', column: 'workflow_id', references: 'workflows', onDelete: 'cascade' },
  { table: 'schedules', column: 'device_id', references: 'devices', onDelete: 'cascade' },
  { table: 'logs', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'logs', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'files', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'file_chunks', column: 'storage_key', references: 'files', onDelete: 'cascade' },
  { table: 'files', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'step_artifacts', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'step_artifacts', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'step_artifacts', column: 'file_id', references: 'files', onDelete: 'cascade' },
  { table: 'step_artifacts', column: 'thumbnail_file_id', references: 'files', onDelete: 'cascade' },
  { table: 'sessions', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'refresh_tokens', column: 'session_id', references: 'sessions', onDelete: 'cascade' },
  { table: 'device_lanes', column: 'device_id', references: 'devices', onDelete: 'cascade' },
  { table: 'lane_requests', column: 'device_id', references: 'devices', onDelete: 'cascade' },
  { table: 'notifications', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'notifications', column: 'task_id', references: 'tasks', onDelete: 'cascade' },
  { table: 'notification_settings', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'webhook_endpoints', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'notification_deliveries', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'notification_deliveries', column: 'notification_id', references: 'notifications', onDelete: 'cascade' },
  { table: 'notification_deliveries', column: 'endpoint_id', references: 'webhook_endpoints', onDelete: 'cascade' },
  { table: 'notification_deliveries', column: 'subscription_id', references: 'push_subscriptions', onDelete: 'cascade' },
  { table: 'push_subscriptions', column: 'user_id', references: 'users', onDelete: 'cascade' },
  { table: 'notification_deliveries', column: 'fcm_token_id', references: 'fcm_tokens', onDelete: 'cascade' },
  { table: 'fcm_tokens', column: 'user_id', references: 'users', onDelete: 'cascade' },
];
