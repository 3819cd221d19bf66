import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { parseAllDocuments } from 'yaml';
import { freePort } from '../../devstack/ports';
import { helm, projectRoot } from '../../devstack/tools';

/**
 * RDS over verified TLS, offline: a PostgreSQL with ssl=on and a server certificate from a
 * private CA made here (the stand-in for the Amazon RDS CA), and the migration Job's command
 * run with the env the chart gives it. sslmode=verify-full connects with the CA bundle wired
 * the chart's way (NODE_EXTRA_CA_CERTS at the mounted file) and is refused without it.
 */
describe('PostgreSQL over verified TLS (RDS with the CA bundle)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-tls-'));
  const caFile = join(dir, 'global-bundle.pem');
  let pg: ChildProcess;
  let verifyFullUrl: string;
  let chartCaPath: string;

  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });

  /** The migration Job's command (node dist/services/shared/db/migrate.js), on the TypeScript source. */
  function migrate(env: Record<string, string | undefined>): { status: number | null; output: string } {
    const childEnv: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: 'warn', ...env };
    // The machine may trust extra CAs of its own: the test decides what is trusted.
    if (env.NODE_EXTRA_CA_CERTS === undefined) delete childEnv.NODE_EXTRA_CA_CERTS;
    const res = spawnSync(process.execPath, ['--import', 'tsx', 'services/shared/db/migrate.ts'], { cwd: projectRoot, env: childEnv, encoding: 'utf8', timeout: 60_000 });
    return { status: res.status, output: `${res.stdout}${res.stderr}` };
  }

  beforeAll(async () => {
    openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', caFile, '-days', '2', '-subj', '/CN=media-upload test private CA');
    openssl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server.key', '-out', 'server.csr', '-subj', '/CN=localhost');
    writeFileSync(join(dir, 'san.ext'), 'subjectAltName=DNS:localhost\n');
    openssl('x509', '-req', '-in', 'server.csr', '-CA', caFile, '-CAkey', 'ca.key', '-CAcreateserial', '-out', 'server.crt', '-days', '2', '-extfile', 'san.ext');

    const port = await freePort();
    pg = spawn(process.execPath, ['--import', 'tsx', 'tests/harness/tls-postgres.ts', join(dir, 'data'), String(port), join(dir, 'server.crt'), join(dir, 'server.key')], {
      cwd: projectRoot,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const [line] = (await once(createInterface({ input: pg.stdout! }), 'line')) as [string];
    const plain = new URL((JSON.parse(line) as { databaseUrl: string }).databaseUrl);
    plain.hostname = 'localhost';
    verifyFullUrl = `${plain.toString()}?sslmode=verify-full`;

    // Where the chart points NODE_EXTRA_CA_CERTS for the migration Job, with the RDS bundle's key.
    const rendered = execFileSync(helm(), ['template', 'media-upload', join(projectRoot, 'charts', 'media-upload'), '--set', 'secrets.jwtSecret=x', '--set', 'caBundle.configMapName=rds-ca-bundle', '--set', 'caBundle.key=global-bundle.pem'], { encoding: 'utf8' });
    const job = parseAllDocuments(rendered).map((d) => d.toJS()).find((o) => o?.kind === 'Job');
    const [container] = job.spec.template.spec.containers;
    chartCaPath = container.env.find((e: { name: string }) => e.name === 'NODE_EXTRA_CA_CERTS').value;
    const mount = container.volumeMounts.find((m: { name: string }) => m.name === 'ca-bundle');
    expect(chartCaPath).toBe(`${mount.mountPath}/global-bundle.pem`);
  }, 120_000);

  afterAll(async () => {
    if (pg && pg.exitCode === null) {
      pg.kill('SIGTERM');
      await once(pg, 'exit');
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses sslmode=verify-full when the private CA is not configured', () => {
    const res = migrate({ DATABASE_URL: verifyFullUrl, NODE_EXTRA_CA_CERTS: undefined });
    expect(res.output).toMatch(/migration failed: .*(self-signed certificate in certificate chain|unable to verify|unable to get local issuer)/);
    expect(res.status).toBe(1);
  });

  it('runs the migrations over sslmode=verify-full with the CA bundle where the chart mounts it', () => {
    // The file the chart mounts at chartCaPath is the bundle from the ConfigMap: here, caFile.
    expect(chartCaPath.endsWith('/global-bundle.pem')).toBe(true);
    const res = migrate({ DATABASE_URL: verifyFullUrl, NODE_EXTRA_CA_CERTS: caFile });
    expect(res.output).toMatch(/applied migrations: .*InitialSchema/);
    expect(res.status).toBe(0);
    // A second run finds the schema the first one wrote.
    const again = migrate({ DATABASE_URL: verifyFullUrl, NODE_EXTRA_CA_CERTS: caFile });
    expect(again.output).toContain('schema is up to date');
  });

  it('refuses a certificate for another host name even with the CA configured', () => {
    const url = new URL(verifyFullUrl);
    // Same server, reached by an address its certificate does not name.
    url.hostname = '127.0.0.1';
    const res = migrate({ DATABASE_URL: url.toString(), NODE_EXTRA_CA_CERTS: caFile });
    expect(res.status).toBe(1);
    expect(res.output).toMatch(/migration failed: Hostname\/IP does not match certificate's altnames/);
  });
});
