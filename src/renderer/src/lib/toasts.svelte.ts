/**
 * The error banner: failed requests land here, from any page. Errors stay until dismissed (the
 * user may need to copy a path from the message); notices fade after a few seconds.
 */
import { describeError } from './errors';

export interface Toast {
  id: number;
  kind: 'error' | 'notice';
  /** Where it happened, e.g. "Add folder". */
  title: string;
  code: string;
  message: string;
  /** A button in the notice (e.g. Undo); pressing it runs the action and dismisses the notice. */
  action?: ToastAction;
}

export interface ToastAction {
  label: string;
  run: () => void | Promise<void>;
}

class Toasts {
  items = $state<Toast[]>([]);
  private next = 1;

  error(title: string, err: unknown): void {
    const { code, message } = describeError(err);
    // Collapse repeats of the same failure (a retried action) into one banner.
    if (this.items.some((t) => t.kind === 'error' && t.title === title && t.message === message)) return;
    this.items.push({ id: this.next++, kind: 'error', title, code, message });
    if (this.items.length > 5) this.items.splice(0, this.items.length - 5);
  }

  notice(title: string, message: string, ms = 5000, action?: ToastAction): void {
    const id = this.next++;
    this.items.push({ id, kind: 'notice', title, code: '', message, ...(action && { action }) });
    setTimeout(() => this.dismiss(id), ms);
  }

  dismiss(id: number): void {
    const i = this.items.findIndex((t) => t.id === id);
    if (i >= 0) this.items.splice(i, 1);
  }

  clear(): void {
    this.items = [];
  }
}

export const toasts = new Toasts();

/** Runs a request; on failure shows it in the banner and resolves to undefined. */
export async function attempt<T>(title: string, run: () => Promise<T>): Promise<T | undefined> {
  try {
    return await run();
  } catch (err) {
    toasts.error(title, err);
    return undefined;
  }
}
