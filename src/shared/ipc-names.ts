/**
 * The Electron IPC channel names. Every request travels on INVOKE as (contract channel, args) and
 * every event on EVENT as (event name, payload); the contract (contract.ts) says which channels and
 * events exist. GRANT is the preload's own: the path of a file the user dropped on the window
 * (resolved from the File by webUtils.getPathForFile), which main records as chosen by the user in
 * that window; the page cannot send it (it has no ipcRenderer, only the preload's `grantFile(File)`).
 * Dependency-free so that the sandboxed preload can bundle it.
 */
export const IPC_INVOKE = 'ctssl:invoke';
export const IPC_EVENT = 'ctssl:event';
export const IPC_GRANT = 'ctssl:grant-dropped-file';
