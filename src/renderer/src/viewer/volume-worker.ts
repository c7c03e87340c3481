/**
 * The viewer's volume worker: takes slice blocks off the main thread. In a browser (`ctssl serve`)
 * it asks for `viewer.packed` blocks itself, over HTTP (`GET /files/series/ID/packed`, the
 * default) or its own WebSocket, and receives them here, so neither the transfer nor the decoding
 * (inflate, running sums) touches the page's thread;
 * in Electron the page hands it the packed bytes it got over IPC (transferred, not copied). Either
 * way it answers with the slices' Int16Array, transferred to the page.
 *
 * Messages in: {type:'connect', url} | {type:'http', token} | {type:'fetch', id, seriesId, start, count, encoding} |
 * {type:'unpack', id, packed}. Out: {id, start, count, data} | {id, error: {code, message}}.
 */
import { unwrap, type Envelope } from '../../../shared/envelope';
import type { SliceEncoding } from '../../../shared/slice-packing';
import type { PackedSlices } from '../../../shared/types';
import { decodeMessage, encodeMessage } from '../../../shared/wire';
import { browserInflate, unpackSlices } from './packed-slices';

export type WorkerRequest =
  | { type: 'connect'; url: string }
  | { type: 'http'; token: string }
  | { type: 'fetch'; id: number; seriesId: number; start: number; count: number; encoding: SliceEncoding }
  | { type: 'unpack'; id: number; packed: PackedSlices };

export type WorkerReply = { id: number; start: number; count: number; data: Int16Array } | { id: number; error: { code: string; message: string } };

const scope = self as unknown as { postMessage(m: WorkerReply, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null };

let url = '';
/** The server token when blocks are fetched over HTTP; null: over the socket. */
let httpToken: string | null = null;
let socket: Promise<WebSocket> | null = null;
let nextId = 1;
const pending = new Map<number, (e: Envelope<unknown> | Error) => void>();

function connect(): Promise<WebSocket> {
  if (socket) return socket;
  socket = new Promise((resolve, reject) => {
    const ws = new WebSocket(url);
    ws.binaryType = 'arraybuffer';
    ws.onopen = () => resolve(ws);
    ws.onerror = () => reject(new Error('the volume worker cannot reach the server'));
    ws.onclose = () => {
      socket = null;
      for (const p of pending.values()) p(new Error('connection to the server closed'));
      pending.clear();
    };
    ws.onmessage = (m) => {
      const msg = decodeMessage<{ id?: number; envelope?: Envelope<unknown> }>(m.data as ArrayBuffer);
      if (typeof msg.id === 'number' && msg.envelope) {
        pending.get(msg.id)?.(msg.envelope);
        pending.delete(msg.id);
      }
    };
  });
  socket.catch(() => (socket = null));
  return socket;
}

async function invoke<T>(channel: string, args: unknown[]): Promise<T> {
  const ws = await connect();
  const id = nextId++;
  const result = await new Promise<Envelope<unknown> | Error>((resolve) => {
    pending.set(id, resolve);
    ws.send(encodeMessage({ id, channel, args }) as Uint8Array<ArrayBuffer>);
  });
  if (result instanceof Error) throw result;
  return unwrap(result as Envelope<T>);
}

/** A block over HTTP: the reply envelope the socket would carry, as the body. */
async function fetchPacked(seriesId: number, start: number, count: number, encoding: SliceEncoding): Promise<PackedSlices> {
  const r = await fetch(`/files/series/${seriesId}/packed?start=${start}&count=${count}&encoding=${encoding}`, { headers: { authorization: `Bearer ${httpToken}` }, cache: 'no-store' });
  if (!r.ok) throw new Error(`the server answered ${r.status}: ${(await r.text()).trim()}`);
  const msg = decodeMessage<{ envelope?: Envelope<PackedSlices> }>(await r.arrayBuffer());
  if (!msg.envelope) throw new Error('the server sent no reply');
  return unwrap(msg.envelope);
}

async function reply(id: number, packed: PackedSlices): Promise<void> {
  const data = await unpackSlices(packed, browserInflate);
  scope.postMessage({ id, start: packed.start, count: packed.count, data }, [data.buffer]);
}

scope.onmessage = (e) => {
  const m = e.data;
  if (m.type === 'connect') {
    url = m.url;
    void connect().catch(() => undefined);
    return;
  }
  if (m.type === 'http') {
    httpToken = m.token;
    return;
  }
  const work =
    m.type === 'fetch'
      ? (httpToken !== null ? fetchPacked(m.seriesId, m.start, m.count, m.encoding) : invoke<PackedSlices>('viewer.packed', [m.seriesId, m.start, m.count, m.encoding])).then((p) => reply(m.id, p))
      : reply(m.id, m.packed);
  work.catch((err: Error & { code?: string }) => scope.postMessage({ id: m.id, error: { code: err.code ?? 'internal', message: err.message } }));
};
