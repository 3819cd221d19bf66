import { existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';

/** Debian's chromium (scripts/provision.sh installs it), or CHROMIUM_PATH; never a downloaded browser. */
export function chromiumPath(): string {
  const candidates = process.env.CHROMIUM_PATH
    ? [process.env.CHROMIUM_PATH]
    : (process.env.PATH ?? '').split(delimiter).map((dir) => join(dir, 'chromium'));
  const found = candidates.find((path) => existsSync(path));
  if (!found) throw new Error('chromium not found: run npm run provision (Debian package chromium) or set CHROMIUM_PATH');
  return found;
}
