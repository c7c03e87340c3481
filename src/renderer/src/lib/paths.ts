/** Path checks the add-folder form makes before asking the services (which check again). */

/** True for POSIX absolute paths (/data/ct), Windows drive paths (C:\ct, C:/ct) and UNC paths (\\host\share). */
export function isAbsolutePath(p: string): boolean {
  return /^\//.test(p) || /^[A-Za-z]:[\\/]/.test(p) || /^\\\\[^\\]+\\[^\\]+/.test(p);
}

/**
 * Why a typed folder path cannot be sent, or null when it can. The services resolve relative
 * paths against their own working directory, which the user cannot see, so the form asks for an
 * absolute path.
 */
export function folderPathProblem(raw: string): string | null {
  const p = raw.trim();
  if (p === '') return 'Type the absolute path of a folder on the machine running CT SSL Studio.';
  if (p.length > 4096) return 'The path is longer than 4096 characters.';
  if (!isAbsolutePath(p)) return `"${p}" is not an absolute path: start it with / (or a drive letter on Windows).`;
  return null;
}
