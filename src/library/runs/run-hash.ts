import { createHash } from 'node:crypto';

/** Hash of a run config as saved (stable key order is the schema's). */
export function configHash(config: unknown): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex');
}
