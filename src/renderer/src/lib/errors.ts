/**
 * Turns anything a failed request throws into what the error banner shows. Requests fail with an
 * ApiError (code + message, from the services' envelope) or with a plain Error (the connection to
 * `ctssl serve` dropped); both have a message worth showing as is.
 */

export interface ShownError {
  /** The envelope code (invalid-argument, not-found, busy, unsupported, cancelled, internal) or 'connection'/'error'. */
  code: string;
  message: string;
}

export function describeError(err: unknown): ShownError {
  if (err && typeof err === 'object') {
    const e = err as { code?: unknown; message?: unknown; name?: unknown };
    const message = typeof e.message === 'string' && e.message !== '' ? e.message : String(err);
    if (typeof e.code === 'string') return { code: e.code, message };
    if (/connection|server/i.test(message)) return { code: 'connection', message };
    return { code: 'error', message };
  }
  return { code: 'error', message: String(err) };
}
