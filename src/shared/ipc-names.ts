/**
 * The two Electron IPC channel names. Every request travels on INVOKE as (contract channel, args)
 * and every event on EVENT as (event name, payload); the contract (contract.ts) says which
 * channels and events exist. Dependency-free so that the sandboxed preload can bundle it.
 */
export const IPC_INVOKE = 'ctssl:invoke';
export const IPC_EVENT = 'ctssl:event';
