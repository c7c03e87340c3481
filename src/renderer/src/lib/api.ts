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

class SocketClient implements ApiClient {
  private ws: WebSocket | null = null;
  private opening: Promise<WebSocket> | null = null;
  private nextId = 1;
  private pending = new Map<number, { resolve: (v: Envelope<unknown>) => void; reject: (e: Error) => void }>();
  private listeners = new Map<string, Set<(p: unknown) => void>>();

  constructor(private token: string) {}

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
        resolve(ws);
      };
      ws.onerror = () => {
        this.opening = null;
        reject(new Error('cannot reach the CT SSL Studio server (is `ctssl serve` running, and is the token right?)'));
      };
      ws.onclose = () => {
        this.ws = null;
        for (const p of this.pending.values()) p.reject(new Error('connection to the server closed'));
        this.pending.clear();
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

export function createApi(): ApiClient {
  if (window.ctsslBridge) return new ElectronClient(window.ctsslBridge);
  return new SocketClient(tokenFromLocation());
}

/** The app-wide client. */
export const api: ApiClient = createApi();
