// What a device step's failure says, shared by the device-step activities (which raise it) and the
// workflow (which branches on it). A value module in workflows/, so that the workflow bundle
// imports nothing but types from activities/.

import type { StepArtifactRef } from './api.ts';

/** Failure types the device-step activities raise; the workflow branches on them. */
export const FailureType = {
  /** The device's socket is gone (or was never on this node): dispatch again when it is back. */
  DeviceDisconnected: 'DeviceDisconnected',
  /** The device ran the step and reported an error. details[0] = { code, message, retryable }. */
  StepError: 'StepError',
} as const;

/** details[0] of a `StepError` failure. */
export interface StepErrorDetails {
  code: string;
  message: string;
  retryable?: boolean;
  /** What the device attached to the step before it failed (a screenshot, say). */
  artifacts?: StepArtifactRef[];
}
