/**
 * The viewer's volume worker: takes slice blocks off the main thread. In a browser (`ctssl serve`)
 * it asks for `viewer.packed` blocks itself, over HTTP (`GET /files/series/ID/packed`, the
 * default) or its own WebSocket, and receives them here, so neither the transfer nor the decoding
 * (inflate, running sums) touches the page's thread;
 * in Electron the page hands it the packed bytes it got over IPC (transferred, not copied). Either
 * way it answers with the slices' Int16Array, transferred to the page; or, when the page is
 * cross-origin isolated and handed it the volume on a SharedArrayBuffer ({type:'volume'}), it writes
 * the slices into their place there and answers without data: the page's thread then does nothing
 * per block but note it (no copy, no garbage of a block's size to collect).
 *
 * Messages in: {type:'connect', url} | {type:'http', token} | {type:'volume', buffer, sliceLength} |
 * {type:'fetch', id, seriesId, start, count, encoding} | {type:'unpack', id, packed}.
 * Out: {id, start, count, data?, timing} | {id, error: {code, message}}.
 */
import { unwrap, type Envelope } from '../../../shared/envelope';
import type { SliceEncoding } from '../../../shared/slice-packing';
import type { PackedSlices } from '../../../shared/types';
import { decodeMessage, encodeMessage } from '../../../shared/wire';
import { browserInflate, unpackSlices } from './packed-slices';

export type WorkerRequest =
  | { type: 'connect'; url: string }
  | { type: 'http'; token: string }
  | { type: 'volume'; buffer: SharedArrayBuffer; sliceLength: number }
  | { type: 'fetch'; id: number; seriesId: number; start: number; count: number; encoding: SliceEncoding }
  | { type: 'unpack'; id: number; packed: PackedSlices };

/**
 * When each step of a block happened in the worker, in ms since the epoch (performance.timeOrigin +
 * performance.now(), comparable across threads): the request reached the worker, the response's
 * headers, its whole body, the decoded slices; and the server's own time for the block (its
 * Server-Timing header, HTTP only). The page turns them into performance measures (volume-fetcher.ts).
 */
export interface BlockTiming {
  got: number;
  headers?: number;
  body?: number;
  decoded: number;
  serverMs?: number;
}

export type WorkerReply = { id: number; start: number; count: number; data?: Int16Array; timing: BlockTiming } | { id: number; error: { code: string; message: string } };

const scope = self as unknown as { postMessage(m: WorkerReply, transfer?: Transferable[]): void; onmessage: ((e: MessageEvent<WorkerRequest>) => void) | null };

let url = '';
/** The server token when blocks are fetched over HTTP; null: over the socket. */
let httpToken: string | null = null;
let socket: Promise<WebSocket> | null = null;
let nextId = 1;
/** The page's volume when it shares it (slice after slice), and one slice's voxel count. */
let volume: Int16Array | null = null;
let sliceLength = 0;
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

const now = () => performance.timeOrigin + performance.now();

/** A block over HTTP: the reply envelope the socket would carry, as the body. */
async function fetchPacked(seriesId: number, start: number, count: number, encoding: SliceEncoding, t: BlockTiming): Promise<PackedSlices> {
  const r = await fetch(`/files/series/${seriesId}/packed?start=${start}&count=${count}&encoding=${encoding}`, { headers: { authorization: `Bearer ${httpToken}` }, cache: 'no-store' });
  t.headers = now();
  if (!r.ok) throw new Error(`the server answered ${r.status}: ${(await r.text()).trim()}`);
  const server = /dur=([\d.]+)/.exec(r.headers.get('server-timing') ?? '');
  if (server) t.serverMs = Number(server[1]);
  const body = await r.arrayBuffer();
  t.body = now();
  // Views, not copies: the bytes are read once more, into their place.
  const msg = decodeMessage<{ envelope?: Envelope<PackedSlices> }>(body, { views: true });
  if (!msg.envelope) throw new Error('the server sent no reply');
  return unwrap(msg.envelope);
}

async function reply(id: number, packed: PackedSlices, t: BlockTiming): Promise<void> {
  const { start, count } = packed;
  if (volume && (start + count) * sliceLength <= volume.length && packed.width * packed.height === sliceLength) {
    await unpackSlices(packed, browserInflate, volume.subarray(start * sliceLength, (start + count) * sliceLength));
    t.decoded = now();
    scope.postMessage({ id, start, count, timing: t });
    return;
  }
  const data = await unpackSlices(packed, browserInflate);
  t.decoded = now();
  scope.postMessage({ id, start, count, data, timing: t }, [data.buffer]);
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
  if (m.type === 'volume') {
    volume = new Int16Array(m.buffer);
    sliceLength = m.sliceLength;
    return;
  }
  const t: BlockTiming = { got: now(), decoded: 0 };
  const work =
    m.type === 'fetch'
      ? (httpToken !== null ? fetchPacked(m.seriesId, m.start, m.count, m.encoding, t) : invoke<PackedSlices>('viewer.packed', [m.seriesId, m.start, m.count, m.encoding]).finally(() => (t.body = now()))).then((p) => reply(m.id, p, t))
      : reply(m.id, m.packed, t);
  work.catch((err: Error & { code?: string }) => scope.postMessage({ id: m.id, error: { code: err.code ?? 'internal', message: err.message } }));
};
