/**
 * The renderer's one way to reach the services, typed by the contract. In Electron it goes through
 * the preload bridge (`window.ctsslBridge`); in a browser (`ctssl serve`) through a WebSocket to the
 * same origin, authenticated by the token from the URL fragment (#token=...), kept in
 * sessionStorage so that reloads work and removed from the address bar.
 */
import type { ApiClient, Args, Channel, EventName, Events, Results } from '../../../shared/contract';
import { type Envelope, unwrap } from '../../../shared/envelope';
import { decodeMessage, encodeMessage } from '../../../shared/wire';

interface Bridge {
  invoke(channel: string, ...args: unknown[]): Promise<Envelope<unknown>>;
  on(event: string, listener: (payload: unknown) => void): () => void;
  /** Records a dropped file as chosen by the user in this window (main checks it); its path. */
  grantFile(file: File): Promise<Envelope<string>>;
}

declare global {
  interface Window {
    ctsslBridge?: Bridge;
  }
}

class ElectronClient implements ApiClient {
  constructor(private bridge: Bridge) {}
  async invoke<C extends Channel>(channel: C, ...args: Args<C>): Promise<Results[C]> {
    return unwrap((await this.bridge.invoke(channel, ...args)) as Envelope<Results[C]>);
  }
  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    return this.bridge.on(event, listener as (p: unknown) => void);
  }
}

/** Whether the renderer can reach the services (always true in Electron). */
export type ConnectionListener = (up: boolean) => void;

class SocketClient implements ApiClient {
  private ws: WebSocket | null = null;
  private opening: Promise<WebSocket> | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Envelope<unknown>) => void; reject: (e: Error) => void }>();
  private listeners = new Map<string, Set<(p: unknown) => void>>();
  private connectionListeners = new Set<ConnectionListener>();
  private retryTimer: ReturnType<typeof setTimeout> | null = null;
  private retries = 0;
  private up = true;

  constructor(readonly token: string) {}

  /** Whether the socket is up (or not known to be down yet). */
  get isUp(): boolean {
    return this.up;
  }

  onConnection(listener: ConnectionListener): () => void {
    this.connectionListeners.add(listener);
    return () => this.connectionListeners.delete(listener);
  }

  private setUp(up: boolean): void {
    if (this.up === up) return;
    this.up = up;
    for (const l of this.connectionListeners) l(up);
  }

  /**
   * After the socket dropped, reconnect with backoff (0.5 s doubling to 10 s) so that events keep
   * arriving; requests made meanwhile try to connect themselves.
   */
  private scheduleReconnect(): void {
    if (this.retryTimer) return;
    const delay = Math.min(10_000, 500 * 2 ** this.retries++);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      this.connect().catch(() => this.scheduleReconnect());
    }, delay);
  }

  private connect(): Promise<WebSocket> {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) return Promise.resolve(this.ws);
    if (this.opening) return this.opening;
    this.opening = new Promise((resolve, reject) => {
      const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
      const ws = new WebSocket(`${proto}//${location.host}/api?token=${encodeURIComponent(this.token)}`);
      ws.binaryType = 'arraybuffer';
      ws.onopen = () => {
        this.ws = ws;
        this.opening = null;
        this.retries = 0;
        this.setUp(true);
        resolve(ws);
      };
      ws.onerror = () => {
        if (this.opening) {
          this.opening = null;
          this.setUp(false);
          reject(new Error('cannot reach the CT SSL Studio server (is `ctssl serve` running, and is the token right?)'));
        }
      };
      ws.onclose = () => {
        if (this.ws === ws) this.ws = null;
        if (this.opening) {
          this.opening = null;
          reject(new Error('connection to the server closed'));
        }
        for (const p of this.pending.values()) p.reject(new Error('connection to the server closed'));
        this.pending.clear();
        this.setUp(false);
        this.scheduleReconnect();
      };
      ws.onmessage = (m) => {
        const msg = decodeMessage<{ id?: number; envelope?: Envelope<unknown>; event?: string; payload?: unknown }>(m.data as ArrayBuffer);
        if (msg.event) {
          for (const l of this.listeners.get(msg.event) ?? []) l(msg.payload);
        } else if (typeof msg.id === 'number' && msg.envelope) {
          this.pending.get(msg.id)?.resolve(msg.envelope);
          this.pending.delete(msg.id);
        }
      };
    });
    return this.opening;
  }

  /** Settles when the socket is open; rejects when it cannot be opened. */
  async ready(): Promise<void> {
    await this.connect();
  }

  async invoke<C extends Channel>(channel: C, ...args: Args<C>): Promise<Results[C]> {
    const ws = await this.connect();
    const id = this.nextId++;
    const envelope = await new Promise<Envelope<unknown>>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      // encodeMessage allocates a fresh ArrayBuffer (never shared), as WebSocket.send requires.
      ws.send(encodeMessage({ id, channel, args }) as Uint8Array<ArrayBuffer>);
    });
    return unwrap(envelope as Envelope<Results[C]>);
  }

  on<E extends EventName>(event: E, listener: (payload: Events[E]) => void): () => void {
    const set = this.listeners.get(event) ?? new Set();
    set.add(listener as (p: unknown) => void);
    this.listeners.set(event, set);
    void this.connect().catch(() => undefined);
    return () => set.delete(listener as (p: unknown) => void);
  }
}

function tokenFromLocation(): string {
  const m = /(?:^|[#&])token=([^&]+)/.exec(location.hash);
  if (m) {
    const t = decodeURIComponent(m[1]);
    sessionStorage.setItem('ctssl-token', t);
    // Drop the token from the address bar but keep a page route given with it (#/viewer/7&token=...).
    const keep = location.hash
      .slice(1)
      .split('&')
      .filter((p) => p !== '' && !p.startsWith('token='))
      .join('&');
    history.replaceState(null, '', location.pathname + location.search + (keep ? `#${keep}` : ''));
    return t;
  }
  return sessionStorage.getItem('ctssl-token') ?? '';
}

const socket = window.ctsslBridge ? null : new SocketClient(tokenFromLocation());

/**
 * Settles once the socket to `ctssl serve` is open (or failed to open), or after `maxMs`; at once in
 * Electron. Requests asked for before are on their way by then.
 */
export function connected(maxMs: number): Promise<void> {
  if (!socket) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, maxMs);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    socket.ready().then(done, done);
  });
}

/** The app-wide client. */
export const api: ApiClient = window.ctsslBridge ? new ElectronClient(window.ctsslBridge) : socket!;

/**
 * In a browser, the URL of the server's API socket with the token (for a worker that opens its own
 * connection, e.g. the viewer's volume worker); null in Electron.
 */
export function socketUrl(): string | null {
  if (!socket) return null;
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}/api?token=${encodeURIComponent(socket.token)}`;
}

/** Whether the renderer can reach the services now (false once a connection to `ctssl serve` failed or dropped, until it is back). */
export function connectionUp(): boolean {
  return socket ? socket.isUp : true;
}

/** Calls `listener(false)` when the connection to `ctssl serve` drops and `listener(true)` once it is back. */
export function onConnection(listener: ConnectionListener): () => void {
  return socket ? socket.onConnection(listener) : () => undefined;
}

/**
 * Electron: a file the user dropped (or chose in a file input), recorded by main as chosen in this
 * window so that labels.import / packages.import accept its path; resolves to that path, or throws
 * the refusal. Null in a browser (send its bytes instead).
 */
export async function grantDroppedFile(file: File): Promise<string | null> {
  return window.ctsslBridge ? unwrap(await window.ctsslBridge.grantFile(file)) : null;
}

/** Server mode: the token the page was opened with (sent with /files/ requests); null in Electron. */
export function serverToken(): string | null {
  return socket ? socket.token : null;
}

/**
 * Server mode: the address that downloads a finished export package (written by runs.export to
 * <data>/exports) to the browser, as an attachment with its own name; null in Electron (the file
 * is on this machine already) or for a file elsewhere.
 */
export function exportDownloadUrl(file: string): string | null {
  if (!socket) return null;
  const name = file.split(/[\\/]/).pop() ?? '';
  if (!/^[\w][\w.+-]{0,199}$/.test(name) || !/[\\/]exports[\\/][^\\/]+$/.test(file)) return null;
  return `/files/exports/${encodeURIComponent(name)}?token=${encodeURIComponent(socket.token)}`;
}

/**
 * Server mode: the address that downloads a cluster job folder (written by jobs.export on the
 * server) to the browser as one tar; null in Electron (the folder is on this machine already).
 */
export function jobDownloadUrl(jobId: string): string | null {
  if (!socket || !/^[0-9a-f-]{36}$/.test(jobId)) return null;
  return `/files/jobs/${jobId}.tar?token=${encodeURIComponent(socket.token)}`;
}

/**
 * Server mode: sends a package file from the browser's machine to the server as a stream (an HTTP
 * upload, not a socket message, so its size is bounded only by the package cap), where the
 * packages.import service imports it; `onProgress` gets the bytes sent. Resolves to the import's
 * result or throws its refusal; `signal` stops the upload (the server keeps nothing of a cut-off one).
 */
export function uploadPackage(file: File, onProgress: (sent: number, total: number) => void, signal?: AbortSignal): Promise<Results['packages.import']> {
  const token = serverToken();
  if (token === null) return Promise.reject(new Error('uploads are for server mode: in the desktop app the file is imported by its path'));
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open('POST', `/files/packages?name=${encodeURIComponent(file.name)}`);
    xhr.setRequestHeader('Authorization', `Bearer ${token}`);
    xhr.setRequestHeader('Content-Type', 'application/octet-stream');
    xhr.upload.onprogress = (e) => onProgress(e.loaded, e.lengthComputable ? e.total : file.size);
    xhr.onerror = () => reject(new Error(`${file.name}: the upload failed (connection to the server lost)`));
    xhr.onabort = () => reject(new Error(`${file.name}: upload cancelled; nothing was imported`));
    if (signal?.aborted) return reject(new Error(`${file.name}: upload cancelled; nothing was imported`));
    signal?.addEventListener('abort', () => xhr.abort(), { once: true });
    xhr.onload = () => {
      let envelope: Envelope<Results['packages.import']> | null = null;
      try {
        envelope = JSON.parse(xhr.responseText) as Envelope<Results['packages.import']>;
      } catch {
        // a plain-text refusal (too large, forbidden, cut off)
      }
      if (envelope && typeof envelope === 'object' && 'ok' in envelope) {
        try {
          resolve(unwrap(envelope));
        } catch (err) {
          reject(err);
        }
      } else reject(new Error(`${file.name}: ${xhr.responseText.trim() || `the server answered ${xhr.status}`}`));
    };
    xhr.send(file);
  });
}
