/**
 * The renderer's Content Security Policy: sent as a header by `ctssl serve` and set as a meta tag
 * in src/renderer/index.html for Electron (a test checks the two agree). No remote origins at all:
 * the app makes no network calls.
 */
export const CSP = [
  "default-src 'none'",
  "script-src 'self' 'wasm-unsafe-eval'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: blob:",
  "font-src 'self'",
  "connect-src 'self'",
  "worker-src 'self' blob:",
  "base-uri 'none'",
  "form-action 'none'",
].join('; ');
