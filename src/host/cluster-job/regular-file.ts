/**
 * Reading a cluster job's files as hostile: a regular file only, opened without following links
 * (no check-then-open race), at most a cap, read whole. Shared by the job's import (import-job.ts)
 * and its download as a tar (job-archive.ts).
 */
import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';

/** A regular file (not a link, FIFO or device), opened without following links: its fd and size. */
export function openRegular(path: string, what: string): { fd: number; size: number; mtime: Date } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | (constants.O_NOFOLLOW ?? 0) | (constants.O_NONBLOCK ?? 0));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new Error(code === 'ENOENT' ? `${what} is missing (${path})` : code === 'ELOOP' ? `${what} is a symbolic link: refused (${path})` : `${what}: ${(err as Error).message}`);
  }
  const st = fstatSync(fd);
  if (!st.isFile()) {
    closeSync(fd);
    throw new Error(`${what} is not a regular file (${path})`);
  }
  return { fd, size: st.size, mtime: st.mtime };
}

/** A regular file of at most `max` bytes, read whole; refused naming `what` otherwise. */
export function readRegularCapped(path: string, what: string, max: number): Buffer {
  const { fd, size } = openRegular(path, what);
  try {
    if (size > max) throw new Error(`${what} is ${size} bytes, over its ${max}-byte cap (${path})`);
    const buf = Buffer.alloc(size);
    let at = 0;
    while (at < size) {
      const n = readSync(fd, buf, at, size - at, at);
      if (n === 0) break;
      at += n;
    }
    return buf.subarray(0, at);
  } finally {
    closeSync(fd);
  }
}
