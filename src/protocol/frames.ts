// Every frame of the protocol as zod schemas, one discriminated union per direction and role
// (docs/PROTOCOL.md is the prose spec). The types the gateway and the clients use are inferred
// from these, so a frame's shape is written once.
import { z } from 'zod';

const id = z.string().min(1).max(100);
const key = z.string().min(1).max(600);
const taskId = z.uuid();
/** Ids the server sends: the server's own, so clients only check they are there. */
const sentId = z.string().min(1);
const json = z.unknown();

/** Every frame, both ways. `payload` is checked against its type after this. */
export const envelopeSchema = z.object({
  id,
  type: z.string().min(1).max(64),
  ts: z.number().finite().optional(),
  re: id.optional(),
  payload: z.record(z.string(), json).optional().default({}),
});
export type Envelope = z.infer<typeof envelopeSchema>;

// ---- device -> server ---------------------------------------------------------------------

const ping = z.object({ type: z.literal('ping'), payload: z.object({}).loose() });

export const stepErrorSchema = z.object({
  code: z.string().min(1).max(100),
  message: z.string().max(10_000),
  retryable: z.boolean().optional(),
});

const percent = z.number().min(0).max(100);

/**
 * What a device says about itself, whenever it changes (every field optional; an absent field
 * keeps its last value). Unknown fields are allowed and ignored: newer apps may send more.
 */
export const deviceStatusSchema = z.object({
  busy: z.boolean().optional(),
  app_version: z.string().min(1).max(50).optional(),
  os_type: z.string().min(1).max(50).optional(),
  os_version: z.string().min(1).max(50).optional(),
  cpu_percent: percent.optional(),
  memory_percent: percent.optional(),
  battery: z.object({ percent, charging: z.boolean().optional() }).strict().optional(),
}).loose();
export type DeviceStatusPayload = z.infer<typeof deviceStatusSchema>;

/**
 * A file the device attaches to a step in flight on this connection (a screenshot first): its
 * bytes in base64, at most MAX_ARTIFACT_BYTES once decoded; the type is read from the bytes.
 */
export const stepArtifactSchema = z.object({
  key,
  kind: z.enum(['screenshot', 'file']).optional(),
  name: z.string().min(1).max(255),
  data: z.base64().min(1),
});
export type StepArtifactPayload = z.infer<typeof stepArtifactSchema>;

export const logLevelSchema = z.enum(['debug', 'info', 'warn', 'error']);

export const deviceToServerSchema = z.discriminatedUnion('type', [
  ping,
  z.object({ type: z.literal('step/accept'), payload: z.object({ key }) }),
  z.object({
    type: z.literal('step/progress'),
    payload: z.object({
      key,
      percent: z.number().min(0).max(100).optional(),
      message: z.string().max(2000).optional(),
    }),
  }),
  z.object({ type: z.literal('step/result'), payload: z.object({ key, output: json.optional() }) }),
  z.object({ type: z.literal('step/error'), payload: z.object({ key, error: stepErrorSchema }) }),
  z.object({
    type: z.literal('log'),
    payload: z.object({
      task_id: taskId.optional(),
      key: key.optional(),
      level: logLevelSchema,
      message: z.string().max(10_000),
      details: json.optional(),
    }),
  }),
  z.object({ type: z.literal('device/status'), payload: deviceStatusSchema }),
  z.object({ type: z.literal('step/artifact'), payload: stepArtifactSchema }),
]);
export type DeviceToServer = z.infer<typeof deviceToServerSchema>;

// ---- monitor -> server --------------------------------------------------------------------

const userScope = z.object({ scope: z.literal('user') }).strict();

export const monitorToServerSchema = z.discriminatedUnion('type', [
  ping,
  z.object({
    type: z.literal('subscribe'),
    payload: z.union([
      z.object({
        task_id: taskId,
        after_seq: z.number().int().min(0).optional(),
        /** Forward the Temporal history events themselves (`history/event`), for tools. */
        raw: z.boolean().optional(),
      }).strict(),
      userScope,
    ]),
  }),
  z.object({
    type: z.literal('unsubscribe'),
    payload: z.union([z.object({ task_id: taskId }).strict(), userScope]),
  }),
]);
export type MonitorToServer = z.infer<typeof monitorToServerSchema>;

// ---- server -> both -----------------------------------------------------------------------

export const helloSchema = z.object({
  type: z.literal('hello'),
  payload: z.object({
    role: z.enum(['device', 'monitor']),
    /** This connection's id (not a login session): orders a device's connections. */
    session_id: z.string(),
    heartbeat_ms: z.number().int().positive(),
    protocol: z.number().int(),
  }),
});
export type HelloPayload = z.infer<typeof helloSchema>['payload'];

const pong = z.object({ type: z.literal('pong'), payload: z.object({}).strict() });

export const fieldErrorSchema = z.object({ path: z.string(), message: z.string() });

const errorFrame = z.object({
  type: z.literal('error'),
  payload: z.object({ code: z.number().int(), message: z.string(), errors: z.array(fieldErrorSchema).optional() }),
});

// ---- server -> device ---------------------------------------------------------------------

export const stepDispatchSchema = z.object({
  task_id: sentId,
  step_id: z.string(),
  attempt: z.number().int().min(0),
  key,
  type: z.string(),
  params: json,
  timeout_ms: z.number().int().min(0),
});
export type StepDispatchPayload = z.infer<typeof stepDispatchSchema>;

const stepControl = (type: 'step/pause' | 'step/resume' | 'step/abort') =>
  z.object({ type: z.literal(type), payload: z.object({ key, reason: z.string().optional() }) });

export const serverToDeviceSchema = z.discriminatedUnion('type', [
  helloSchema,
  pong,
  errorFrame,
  z.object({ type: z.literal('step/dispatch'), payload: stepDispatchSchema }),
  stepControl('step/pause'),
  stepControl('step/resume'),
  stepControl('step/abort'),
]);
export type ServerToDevice = z.infer<typeof serverToDeviceSchema>;

// ---- server -> monitor --------------------------------------------------------------------

export const taskEventSchema = z.object({
  task_id: sentId,
  /** Durable events have one (resume with after_seq); live-only ones (logs, progress) do not. */
  seq: z.number().int().min(1).optional(),
  kind: z.string(),
  at: z.number(),
  data: z.record(z.string(), json),
});
export type TaskEventPayload = z.infer<typeof taskEventSchema>;

/** A stored notification (`id` is its id in GET /notifications) as the user feed announces it. */
export const notificationSchema = z.object({
  id: sentId, task_id: sentId, kind: z.string(), title: z.string(), body: z.string().nullable(), at: z.number(),
});
export type NotificationPayload = z.infer<typeof notificationSchema>;

/** Presence changes of the user's devices, on the user feed (`{scope: "user"}`). */
export const PRESENCE_CHANGES = ['online', 'offline', 'busy', 'idle'] as const;
export const devicePresenceSchema = z.object({
  /** The device's id (REST `id`, not the id the PC chose for itself). */
  device_id: sentId,
  change: z.enum(PRESENCE_CHANGES),
  /** The state after the change. */
  is_online: z.boolean(),
  is_busy: z.boolean(),
  at: z.number(),
});
export type DevicePresencePayload = z.infer<typeof devicePresenceSchema>;

/** At most one `device/readings` frame per device and monitor in this time; the last readings always follow. */
export const READINGS_FRAME_MS = 2000;
/** A device's readings as they change, on the user feed: the whole set as stored (GET /users/devices `status`). */
export const deviceReadingsSchema = z.object({
  device_id: sentId,
  status: deviceStatusSchema.pick({ cpu_percent: true, memory_percent: true, battery: true }),
  at: z.number(),
});
export type DeviceReadingsPayload = z.infer<typeof deviceReadingsSchema>;

export const historyEventSchema = z.object({ task_id: sentId, event_id: z.number().int(), event: json });
export type HistoryEventPayload = z.infer<typeof historyEventSchema>;

export const serverToMonitorSchema = z.discriminatedUnion('type', [
  helloSchema,
  pong,
  errorFrame,
  z.object({
    type: z.literal('subscribed'),
    payload: z.object({
      task_id: sentId.optional(),
      scope: z.literal('user').optional(),
      status: z.string().optional(),
      raw: z.boolean().optional(),
    }),
  }),
  z.object({ type: z.literal('unsubscribed'), payload: z.object({ task_id: sentId.optional(), scope: z.literal('user').optional() }) }),
  z.object({ type: z.literal('task/event'), payload: taskEventSchema }),
  z.object({ type: z.literal('history/event'), payload: historyEventSchema }),
  z.object({ type: z.literal('notification'), payload: notificationSchema }),
  z.object({ type: z.literal('device/presence'), payload: devicePresenceSchema }),
  z.object({ type: z.literal('device/readings'), payload: deviceReadingsSchema }),
]);
export type ServerToMonitor = z.infer<typeof serverToMonitorSchema>;

/** Whatever the server sends, to either role. */
export type ServerFrame = ServerToDevice | ServerToMonitor;
/** Whatever a client sends. */
export type ClientFrame = DeviceToServer | MonitorToServer;
