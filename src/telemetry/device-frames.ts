// The device hop of a trace: a span from `step/dispatch` sent to the device until its answer
// (`step/result`, `step/error`) or the end of the wait (disconnect, timeout, cancel). It starts
// in the active context, the dispatch activity's span, so it sits under it in the trace. With
// tracing off the API's no-op tracer hands out non-recording spans.
import { SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import type { StepDispatchPayload } from '../protocol/index.ts';
import { TRACER_NAME } from './tracing.ts';

export const DEVICE_FRAME_SPAN = 'device step/dispatch';

export interface FrameSpan {
  accepted(): void;
  answered(outcome: { ok: true } | { ok: false; error: { code: string; message: string } }): void;
  failed(err: unknown): void;
}

export function startFrameSpan(deviceId: string, payload: StepDispatchPayload): FrameSpan {
  const span: Span = trace.getTracer(TRACER_NAME).startSpan(DEVICE_FRAME_SPAN, {
    kind: SpanKind.CLIENT,
    attributes: {
      'jarvis.device_id': deviceId,
      'jarvis.task_id': payload.task_id,
      'jarvis.step_id': payload.step_id,
      'jarvis.step_key': payload.key,
      'jarvis.step_type': payload.type,
      'jarvis.step_attempt': payload.attempt,
    },
  });
  let open = true;
  const end = () => {
    open = false;
    span.end();
  };
  return {
    accepted() {
      if (open) span.addEvent('step/accept');
    },
    answered(outcome) {
      if (!open) return;
      if (outcome.ok) {
        span.addEvent('step/result');
      } else {
        span.addEvent('step/error', { 'jarvis.error_code': outcome.error.code });
        span.setStatus({ code: SpanStatusCode.ERROR, message: `${outcome.error.code}: ${outcome.error.message}` });
      }
      end();
    },
    failed(err) {
      if (!open) return;
      span.setStatus({ code: SpanStatusCode.ERROR, message: err instanceof Error ? err.message : String(err) });
      end();
    },
  };
}
