/**
 * The few web-standard globals that every runtime of ours has (Node >= 20, Chromium, Electron)
 * and that the pure core may use. Declared here, and only for tsconfig.core.json, so that
 * Node-only or DOM-only APIs remain type errors in the core.
 */
declare class TextEncoder {
  encode(input?: string): Uint8Array;
}
declare class TextDecoder {
  constructor(label?: string, options?: { fatal?: boolean });
  decode(input?: ArrayBufferView | ArrayBuffer): string;
}
declare const console: {
  log(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
};
declare function setTimeout(cb: () => void, ms?: number): unknown;
declare function clearTimeout(handle: unknown): void;
