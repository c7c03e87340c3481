/**
 * The preload bridge: exposes one `api` object and nothing else (no ipcRenderer, no Node).
 * Requests resolve to envelopes ({ok, value} | {ok, error}); the renderer unwraps them, so error
 * codes survive the context bridge. Main validates every argument.
 */
import { contextBridge, ipcRenderer, webUtils, type IpcRendererEvent } from 'electron';
import { IPC_EVENT, IPC_INVOKE } from '../shared/ipc-names';

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
  /** The path of a dropped file (Electron only; browsers do not reveal paths). */
  pathForFile(file: File): string {
    return webUtils.getPathForFile(file);
  },
};

contextBridge.exposeInMainWorld('ctsslBridge', api);
