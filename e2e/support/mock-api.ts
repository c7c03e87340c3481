/**
 * A stand-in for the services behind the app's WebSocket, for tests that need exact control
 * (a synthetic volume with known HU, a slow indexing job to cancel). The page is still the real
 * built renderer served by `ctssl serve`; only its `/api` socket is answered here, with the same
 * wire format (src/shared/wire.ts) and envelopes as the real bridge.
 */
import type { Page, WebSocketRoute } from '@playwright/test';
import type { Channel, EventName, Events, Results } from '../../src/shared/contract';
import type { AppInfo, CohortCounts, LibraryStats } from '../../src/shared/types';
import { decodeMessage, encodeMessage } from '../../src/shared/wire';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type MockHandler<C extends Channel> = (...args: any[]) => Results[C] | Promise<Results[C]>;
export type MockHandlers = { [C in Channel]?: MockHandler<C> };

export interface MockCall {
  channel: string;
  args: unknown[];
  at: number;
}

const emptyStats: LibraryStats = {
  dbPath: '/mock/library.sqlite',
  folders: 0,
  files: 0,
  instances: 0,
  series: 0,
  studies: 0,
  patients: 0,
  duplicates: 0,
  skipped: 0,
};

export const mockInfo: AppInfo = {
  name: 'CT SSL Studio',
  version: '0.0.0-mock',
  contractVersion: 1,
  mode: 'server',
  dataDir: '/mock',
  dbPath: '/mock/library.sqlite',
  nativeDialogs: false,
};

/** An empty library: every request the library page makes on load has an answer. */
export function emptyLibrary(): MockHandlers {
  const counts: CohortCounts = { total: 0, matching: 0, byFilter: {} };
  return {
    'app.info': () => mockInfo,
    'library.progress': () => null,
    'library.folders': () => [],
    'library.stats': () => emptyStats,
    'library.skipped': () => [],
    'library.series': () => [],
    'library.cohortCounts': () => counts,
  };
}

export class ApiError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export class MockApi {
  readonly calls: MockCall[] = [];
  private readonly sockets: WebSocketRoute[] = [];
  private readonly t0 = Date.now();

  constructor(public handlers: MockHandlers) {}

  async install(page: Page): Promise<void> {
    await page.routeWebSocket(/\/api\?/, (ws) => {
      this.sockets.push(ws);
      ws.onMessage(async (message) => {
        const bytes = typeof message === 'string' ? Buffer.from(message) : message;
        const msg = decodeMessage<{ id: number; channel: Channel; args: unknown[] }>(bytes);
        this.calls.push({ channel: msg.channel, args: msg.args, at: Date.now() - this.t0 });
        const handler = this.handlers[msg.channel] as ((...a: unknown[]) => unknown) | undefined;
        let envelope: unknown;
        if (!handler) {
          envelope = { ok: false, error: { code: 'unsupported', message: `mock: no handler for ${msg.channel}` } };
        } else {
          try {
            envelope = { ok: true, value: await handler(...msg.args) };
          } catch (err) {
            const e = err as { code?: string; message: string };
            envelope = { ok: false, error: { code: e.code ?? 'internal', message: e.message } };
          }
        }
        ws.send(Buffer.from(encodeMessage({ id: msg.id, envelope })));
      });
    });
  }

  emit<E extends EventName>(event: E, payload: Events[E]): void {
    const frame = Buffer.from(encodeMessage({ event, payload }));
    for (const ws of this.sockets) ws.send(frame);
  }

  /** Closes every open socket from the server side (the app should reconnect by itself). */
  async dropConnections(): Promise<void> {
    const open = this.sockets.splice(0);
    await Promise.all(open.map((ws) => ws.close({ code: 1012, reason: 'mock restart' })));
  }

  callsTo(channel: Channel): MockCall[] {
    return this.calls.filter((c) => c.channel === channel);
  }
}
