/**
 * The preload bridge: exposes one `api` object and nothing else (no ipcRenderer, no Node).
 * Requests resolve to envelopes ({ok, value} | {ok, error}); the renderer unwraps them, so error
 * codes survive the context bridge. Main validates every argument.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import type { Envelope } from '../shared/envelope';
import { IPC_EVENT, IPC_GRANT, IPC_INVOKE } from '../shared/ipc-names';

const api = {
  invoke(channel: string, ...args: unknown[]): Promise<unknown> {
    return ipcRenderer.invoke(IPC_INVOKE, channel, args);
  },
  on(event: string, listener: (payload: unknown) => void): () => void {
    const handler = (_e: IpcRendererEvent, name: string, payload: unknown) => {
      if (name === event) listener(payload);
    };
    ipcRenderer.on(IPC_EVENT, handler);
    return () => ipcRenderer.removeListener(IPC_EVENT, handler);
  },
  /**
   * A file the user dropped on the window (or chose in a file input): main records its path as
   * chosen in this window, after checking it, so that labels.import / packages.import accept it.
   * Resolves to an envelope with the path. Only a real File from the user has a path: one the page
   * makes itself has none and is refused.
   */
  async grantFile(file: File): Promise<Envelope<string>> {
    const path = webUtils.getPathForFile(file);
    if (!path) return { ok: false, error: { code: 'invalid-argument', message: `${file.name}: not a file on this computer` } };
    return (await ipcRenderer.invoke(IPC_GRANT, path)) as Envelope<string>;
  },
};

contextBridge.exposeInMainWorld('ctsslBridge', api);
