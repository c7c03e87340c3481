/**
 * The error envelope every request result crosses a boundary in (IPC, WebSocket). Dependency-free
 * so that the sandboxed preload can bundle it.
 */

export interface ErrorEnvelope {
  code: 'invalid-argument' | 'not-found' | 'busy' | 'unsupported' | 'cancelled' | 'internal';
  message: string;
  details?: unknown;
}
export type Envelope<T> = { ok: true; value: T } | { ok: false; error: ErrorEnvelope };

/** An error with a code that survives the trip through an envelope. */
export class ApiError extends Error {
  constructor(
    readonly code: ErrorEnvelope['code'],
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

export function toEnvelope(err: unknown): ErrorEnvelope {
  if (err instanceof ApiError) return { code: err.code, message: err.message, details: err.details };
  const message = err instanceof Error ? err.message : String(err);
  return { code: 'internal', message };
}

export function unwrap<T>(env: Envelope<T>): T {
  if (env.ok) return env.value;
  throw new ApiError(env.error.code, env.error.message, env.error.details);
}
