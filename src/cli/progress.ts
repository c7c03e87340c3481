/** Progress on stderr: one updating line on a terminal, a line every few seconds otherwise. */
export function progressLine(stream: NodeJS.WriteStream = process.stderr, everyMs = 3000) {
  let last = 0;
  let shown = false;
  return {
    update(text: string) {
      if (stream.isTTY) {
        stream.write('\r\x1b[K' + text);
        shown = true;
        return;
      }
      const now = Date.now();
      if (now - last >= everyMs) {
        last = now;
        stream.write(text + '\n');
      }
    },
    done(text?: string) {
      if (stream.isTTY && shown) stream.write('\r\x1b[K');
      if (text) stream.write(text + '\n');
      shown = false;
    },
  };
}

export function bar(fraction: number, width = 24): string {
  const f = Math.max(0, Math.min(1, fraction));
  const n = Math.round(f * width);
  return '[' + '#'.repeat(n) + '-'.repeat(width - n) + ']';
}

export function formatEta(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return '--';
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/**
 * An AbortController wired to Ctrl-C (and SIGTERM): the first press calls `onFirst` and aborts, the
 * second exits. `off()` stops listening (a command that goes on after the cancellable work).
 */
export function interruptible(onFirst?: () => void): AbortController & { off: () => void } {
  const ac = new AbortController();
  const off = onInterrupt(() => {
    onFirst?.();
    ac.abort();
  });
  return Object.assign(ac, { off });
}

/**
 * Ctrl-C (and SIGTERM) while long work runs: `first` on the first press (stop cleanly through the
 * service), `again` on later ones (default: exit 130). Returns the function that stops listening.
 */
export function onInterrupt(first: () => void, again: () => void = () => process.exit(130)): () => void {
  let pressed = 0;
  const handler = () => (++pressed === 1 ? first() : again());
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return () => {
    process.off('SIGINT', handler);
    process.off('SIGTERM', handler);
  };
}
