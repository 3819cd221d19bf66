import { execFileSync, spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { parse, parseAllDocuments } from 'yaml';
import { helm, projectRoot } from '../../devstack/tools';
import { loadConfig } from '../../services/shared/config';
import { dashboardMetricNames, dashboardQueries } from '../harness/dashboard';


const chartDir = join(projectRoot, 'charts', 'media-upload');
const venvPython = join(projectRoot, '.tools', 'venv', 'bin', 'python');
const crdDir = join(projectRoot, '.tools', 'crds');
/** Oldest and newest Kubernetes the chart supports, and EKS versions between. */
const kubernetesVersions = ['1.25.0', '1.29.0', '1.33.0', '1.37.0'];
const ciDir = join(chartDir, 'ci');
const release = 'media-upload';
const pools = ['light', 'video'] as const;

interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: any;
  data?: Record<string, string> | null;
}

interface Scenario {
  name: string;
  valuesFiles: string[];
}

const scenarios: Scenario[] = [
  { name: 'default values', valuesFiles: [] },
  ...readdirSync(ciDir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => ({ name: `ci/${f}`, valuesFiles: [join(ciDir, f)] })),
];

function runHelm(args: string[]): { status: number | null; output: string } {
  const res = spawnSync(helm(), args, { encoding: 'utf8' });
  return { status: res.status, output: `${res.stdout}${res.stderr}` };
}

function valuesArgs(files: string[]): string[] {
  return files.flatMap((f) => ['-f', f]);
}

function render(valuesFiles: string[], extraArgs: string[] = []): K8sObject[] {
  const out = execFileSync(helm(), ['template', release, chartDir, ...valuesArgs(valuesFiles), ...extraArgs], {
    encoding: 'utf8',
  });
  return parseAllDocuments(out)
    .map((doc) => {
      if (doc.errors.length > 0) throw doc.errors[0];
      return doc.toJS() as K8sObject | null;
    })
    .filter((o): o is K8sObject => o !== null);
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Helm's merge of values files: maps merge key by key, everything else is replaced. */
function mergeValues(base: any, override: any): any {
  if (!isPlainObject(base) || !isPlainObject(override)) return override;
  const merged: Record<string, unknown> = { ...base };
  for (const [key, value] of Object.entries(override)) merged[key] = mergeValues(base[key], value);
  return merged;
}

function effectiveValues(valuesFiles: string[]): any {
  return valuesFiles.reduce(
    (acc, f) => mergeValues(acc, parse(readFileSync(f, 'utf8'))),
    parse(readFileSync(join(chartDir, 'values.yaml'), 'utf8')),
  );
}

function ofKind(objects: K8sObject[], kind: string): K8sObject[] {
  return objects.filter((o) => o.kind === kind);
}

function get(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`${kind}/${name} not rendered; have ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

function podSpec(workload: K8sObject): any {
  return workload.spec.template.spec;
}

/** Environment a container sees: ConfigMaps from envFrom, then its own env (plain values only). */
function containerEnv(objects: K8sObject[], container: any): Record<string, string> {
  const env: Record<string, string> = {};
  for (const source of container.envFrom ?? []) {
    if (source.configMapRef) Object.assign(env, get(objects, 'ConfigMap', source.configMapRef.name).data ?? {});
  }
  for (const entry of container.env ?? []) if (entry.value !== undefined) env[entry.name] = entry.value;
  return env;
}

interface SchemaProblem {
  index: number;
  kind: string;
  name: string;
  version: string;
  error: string;
}

/**
 * Strict schema check of rendered objects (tests/harness/validate-k8s.py): built-in kinds
 * against the Kubernetes JSON schemas of each version, ScaledObject, TriggerAuthentication and
 * ServiceMonitor against their CRDs; unknown fields are errors. Returns every problem found.
 */
function schemaProblems(objects: unknown[]): SchemaProblem[] {
  const crds = readdirSync(crdDir).filter((f) => f.endsWith('.yaml')).map((f) => join(crdDir, f));
  expect(crds).toHaveLength(3);
  const res = spawnSync(venvPython, [join(projectRoot, 'tests', 'harness', 'validate-k8s.py')], {
    input: JSON.stringify({ objects, versions: kubernetesVersions, crds }),
    encoding: 'utf8',
  });
  if (res.status !== 0) throw new Error(`validate-k8s.py failed: ${res.stderr}`);
  return res.stdout.split('\n').filter(Boolean).map((line) => JSON.parse(line) as SchemaProblem);
}

function workloads(objects: K8sObject[]): K8sObject[] {
  return objects.filter((o) => o.kind === 'Deployment' || o.kind === 'Job');
}

describe('media-upload Helm chart', () => {
  describe.each(scenarios)('with $name', ({ valuesFiles }) => {
    const values = effectiveValues(valuesFiles);
    let objects: K8sObject[];

    beforeAll(() => {
      objects = render(valuesFiles);
    });

    it('renders only objects valid under the strict Kubernetes 1.25-1.37 schemas and the KEDA and prometheus-operator CRDs', () => {
      expect(objects.length).toBeGreaterThan(10);
      expect(schemaProblems(objects)).toEqual([]);
    });

    it('serves the API metrics on their own port through a Service of their own, never the public one', () => {
      const [api] = podSpec(get(objects, 'Deployment', `${release}-api`)).containers;
      const env = containerEnv(objects, api);
      expect(env.METRICS_PORT).toBe(String(values.api.metricsPort));
      expect(env.METRICS_PORT).not.toBe(env.PORT);
      expect(api.ports).toContainEqual({ name: 'metrics', containerPort: values.api.metricsPort, protocol: 'TCP' });
      expect(get(objects, 'Service', `${release}-api`).spec.ports.map((p: any) => p.targetPort)).toEqual(['http']);
      expect(get(objects, 'Service', `${release}-api-metrics`).spec.ports.map((p: any) => p.targetPort)).toEqual(['metrics']);
      for (const ingress of ofKind(objects, 'Ingress')) {
        for (const rule of ingress.spec.rules) for (const path of rule.http.paths) expect(path.backend.service).toEqual({ name: `${release}-api`, port: { name: 'http' } });
      }
      if (values.metrics.serviceMonitor.enabled) {
        expect(get(objects, 'ServiceMonitor', `${release}-api`).spec.endpoints.map((e: any) => e.port)).toEqual(['metrics']);
      }
    });

    it('spreads the API and workers over zones and nodes and requests disk for every emptyDir', () => {
      for (const name of ['api', 'worker-light', 'worker-video']) {
        const spec = podSpec(get(objects, 'Deployment', `${release}-${name}`));
        expect(spec.topologySpreadConstraints.map((c: any) => c.topologyKey)).toEqual(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']);
        for (const c of spec.topologySpreadConstraints) expect(c.labelSelector.matchLabels['app.kubernetes.io/component']).toBe(name);
        const tmp = spec.volumes.find((v: any) => v.name === 'tmp');
        expect(spec.containers[0].resources.requests['ephemeral-storage']).toBe(tmp.emptyDir.sizeLimit);
      }
      const clamd = podSpec(get(objects, 'Deployment', `${release}-clamd`));
      expect(clamd.containers[0].resources.requests['ephemeral-storage']).toBe(values.clamd.resources.requests['ephemeral-storage']);
      expect(clamd.volumes.every((v: any) => !v.emptyDir || v.emptyDir.sizeLimit)).toBe(true);
    });

    it('seeds clamd signatures from the image so a replica start fetches differences only', () => {
      const clamd = podSpec(get(objects, 'Deployment', `${release}-clamd`));
      const [seed] = clamd.initContainers;
      expect(seed.image).toBe(clamd.containers[0].image);
      expect(seed.command).toEqual(['cp', '-R', '/var/lib/clamav/.', '/seed/']);
      expect(seed.volumeMounts).toEqual([{ name: 'signatures', mountPath: '/seed' }]);
      expect(clamd.containers[0].volumeMounts).toContainEqual({ name: 'signatures', mountPath: '/var/lib/clamav' });
    });

    it('passes helm lint --strict', () => {
      const { status, output } = runHelm(['lint', chartDir, '--strict', ...valuesArgs(valuesFiles)]);
      expect(output).toContain('1 chart(s) linted, 0 chart(s) failed');
      expect(status).toBe(0);
    });

    it('runs one worker Deployment per task queue, each with its queue and entry point', () => {
      for (const pool of pools) {
        const deployment = get(objects, 'Deployment', `${release}-worker-${pool}`);
        const [container] = podSpec(deployment).containers;
        const env = containerEnv(objects, container);
        const queueVar = pool === 'light' ? 'TASK_QUEUE_LIGHT' : 'TASK_QUEUE_VIDEO';
        expect(env[queueVar]).toBe(values.workers[pool].taskQueue);
        expect(container.args).toEqual(['node', `dist/services/worker/${pool}-worker.js`]);
        expect(env.WORKFLOW_BUNDLE_PATH).toBe('/app/dist/workflow-bundle.js');
        expect(container.envFrom).toContainEqual({ secretRef: { name: values.secrets.existingSecret || release } });
      }
      expect(values.workers.light.taskQueue).not.toBe(values.workers.video.taskQueue);
    });

    it('gives the light worker the scanner limit clamd itself enforces', () => {
      const env = containerEnv(objects, podSpec(get(objects, 'Deployment', `${release}-worker-light`)).containers[0]);
      const megabytes = Number(String(values.clamd.streamMaxLength).replace(/M$/, ''));
      expect(env.CLAMD_STREAM_MAX_BYTES).toBe(String(megabytes * 1024 * 1024));
      expect(['reject', 'skip']).toContain(env.SCAN_OVERSIZE_ACTION);
    });

    it('gives a stopping worker its shutdown grace time plus a margin before the kill', () => {
      for (const pool of pools) {
        const spec = podSpec(get(objects, 'Deployment', `${release}-worker-${pool}`));
        const env = containerEnv(objects, spec.containers[0]);
        const grace = values.workers[pool].shutdownGraceSeconds;
        expect(env.WORKER_SHUTDOWN_GRACE_SECONDS).toBe(String(grace));
        expect(spec.terminationGracePeriodSeconds).toBe(grace + values.workers.terminationGraceMarginSeconds);
        expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(grace);
      }
    });

    it('scales each worker pool with at most one autoscaler: KEDA when enabled, else a CPU HPA', () => {
      const hpas = ofKind(objects, 'HorizontalPodAutoscaler');
      const scaledObjects = ofKind(objects, 'ScaledObject');
      if (!values.keda.enabled) expect(scaledObjects).toHaveLength(0);
      for (const pool of pools) {
        const target = `${release}-worker-${pool}`;
        const hpaTargets = hpas.filter((h) => h.spec.scaleTargetRef.name === target);
        const kedaTargets = scaledObjects.filter((s) => s.spec.scaleTargetRef.name === target);
        const autoscaled = values.workers[pool].autoscaling.enabled;
        expect(kedaTargets).toHaveLength(autoscaled && values.keda.enabled ? 1 : 0);
        expect(hpaTargets).toHaveLength(autoscaled && !values.keda.enabled ? 1 : 0);
        const deployment = get(objects, 'Deployment', target);
        // An autoscaled Deployment leaves replicas to its autoscaler, or every upgrade resets them.
        expect(deployment.spec.replicas).toBe(autoscaled ? undefined : values.workers[pool].replicaCount);
        for (const hpa of hpaTargets) {
          expect(hpa.spec.metrics[0].resource).toEqual({
            name: 'cpu',
            target: { type: 'Utilization', averageUtilization: values.workers[pool].autoscaling.targetCPUUtilizationPercentage },
          });
        }
      }
    });

    it('points every ScaledObject at the Temporal backlog of its own task queue', () => {
      const kedaPools = pools.filter((p) => values.keda.enabled && values.workers[p].autoscaling.enabled);
      const scaledObjects = ofKind(objects, 'ScaledObject');
      expect(scaledObjects.map((s) => s.spec.scaleTargetRef.name).sort()).toEqual(
        kedaPools.map((p) => `${release}-worker-${p}`),
      );
      expect(ofKind(objects, 'TriggerAuthentication')).toHaveLength(
        kedaPools.length > 0 && values.temporal.auth !== 'none' ? 1 : 0,
      );
      for (const scaledObject of scaledObjects) {
        const pool = pools.find((p) => scaledObject.spec.scaleTargetRef.name === `${release}-worker-${p}`);
        expect(pool).toBeDefined();
        const [trigger] = scaledObject.spec.triggers;
        expect(trigger.type).toBe('temporal');
        expect(trigger.metadata).toMatchObject({
          endpoint: values.temporal.address,
          namespace: values.temporal.namespace,
          taskQueue: values.workers[pool!].taskQueue,
          targetQueueSize: String(values.workers[pool!].keda.targetQueueSize),
          activationTargetQueueSize: String(values.workers[pool!].keda.activationTargetQueueSize),
        });
        if (values.temporal.auth === 'none') {
          expect(trigger.authenticationRef).toBeUndefined();
        } else {
          const auth = get(objects, 'TriggerAuthentication', trigger.authenticationRef.name);
          const parameters = auth.spec.secretTargetRef.map((r: any) => r.parameter).sort();
          expect(parameters).toEqual(values.temporal.auth === 'apiKey' ? ['apiKey'] : values.temporal.mtls.hasCA ? ['ca', 'cert', 'key'] : ['cert', 'key']);
        }
      }
    });

    it('annotates the ServiceAccount with the IRSA role and runs the API and workers under it', () => {
      const serviceAccount = get(objects, 'ServiceAccount', release);
      const annotation = serviceAccount.metadata.annotations?.['eks.amazonaws.com/role-arn'];
      expect(annotation).toBe(values.serviceAccount.irsaRoleArn || undefined);
      for (const name of ['api', 'worker-light', 'worker-video']) {
        expect(podSpec(get(objects, 'Deployment', `${release}-${name}`)).serviceAccountName).toBe(release);
      }
    });

    it('probes the API on /readyz and /healthz and the workers on /healthz of their metrics port', () => {
      const [api] = podSpec(get(objects, 'Deployment', `${release}-api`)).containers;
      expect(api.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(api.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(api.ports).toContainEqual({ name: 'http', containerPort: values.api.port, protocol: 'TCP' });
      for (const pool of pools) {
        const [worker] = podSpec(get(objects, 'Deployment', `${release}-worker-${pool}`)).containers;
        expect(worker.readinessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
        expect(worker.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'metrics' });
        expect(worker.ports).toContainEqual({ name: 'metrics', containerPort: values.workers.metricsPort, protocol: 'TCP' });
      }
    });

    it('runs every container as non-root, without capabilities, on a read-only root filesystem', () => {
      const all = workloads(objects);
      expect(all.length).toBeGreaterThanOrEqual(4);
      for (const workload of all) {
        const spec = podSpec(workload);
        expect(spec.securityContext.runAsNonRoot).toBe(true);
        expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
        for (const container of spec.containers) {
          expect(container.securityContext).toMatchObject({
            runAsNonRoot: true,
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            capabilities: { drop: ['ALL'] },
          });
          // A read-only root still needs a writable /tmp.
          const tmp = container.volumeMounts.find((m: any) => m.mountPath === '/tmp');
          expect(spec.volumes.find((v: any) => v.name === tmp.name).emptyDir).toBeDefined();
        }
      }
    });

    it('runs the DB migration as a pre-install and pre-upgrade hook with DATABASE_URL from a Secret', () => {
      const job = get(objects, 'Job', `${release}-migrate`);
      expect(job.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
      const [container] = podSpec(job).containers;
      expect(container.args).toEqual(['node', 'dist/services/shared/db/migrate.js']);
      const databaseUrl = container.env.find((e: any) => e.name === 'DATABASE_URL');
      const secretName = databaseUrl.valueFrom.secretKeyRef.name;
      if (values.secrets.existingSecret) {
        expect(secretName).toBe(values.secrets.existingSecret);
      } else {
        // Hooks run before the release's own Secret exists, so the Job's Secret is a hook too
        // and is created first.
        const secret = get(objects, 'Secret', secretName);
        expect(secret.metadata.annotations?.['helm.sh/hook']).toBe('pre-install,pre-upgrade');
        // Kept after a failed or timed-out Job (Helm then deletes the hooks that succeeded),
        // so the Job's retries and its logs still find DATABASE_URL.
        expect(secret.metadata.annotations?.['helm.sh/hook-delete-policy']).toBe('before-hook-creation');
        expect(job.metadata.annotations?.['helm.sh/hook-delete-policy']).toBe('before-hook-creation,hook-succeeded');
        expect(Number(secret.metadata.annotations?.['helm.sh/hook-weight'])).toBeLessThan(
          Number(job.metadata.annotations?.['helm.sh/hook-weight']),
        );
      }
    });

    it('serves the Temporal SDK worker metrics beside the worker metrics and scrapes both', () => {
      for (const pool of pools) {
        const name = `${release}-worker-${pool}`;
        const [worker] = podSpec(get(objects, 'Deployment', name)).containers;
        expect(containerEnv(objects, worker).TEMPORAL_METRICS_PORT).toBe(String(values.workers.temporalMetricsPort));
        expect(worker.ports).toContainEqual({ name: 'sdk-metrics', containerPort: values.workers.temporalMetricsPort, protocol: 'TCP' });
        expect(get(objects, 'Service', `${name}-metrics`).spec.ports.map((p: any) => p.targetPort)).toEqual(['metrics', 'sdk-metrics']);
        if (values.metrics.serviceMonitor.enabled) {
          expect(get(objects, 'ServiceMonitor', name).spec.endpoints.map((e: any) => e.port)).toEqual(['metrics', 'sdk-metrics']);
        }
      }
    });

    it('ships the Grafana dashboard to the sidecar, querying only metrics the code exports', () => {
      const configMap = get(objects, 'ConfigMap', `${release}-dashboard`);
      expect(configMap.metadata.labels?.grafana_dashboard).toBe('1');
      const dashboard = JSON.parse(configMap.data?.['media-upload.json'] ?? 'null');
      expect(dashboard.uid).toBe('media-upload');
      expect(dashboardQueries(dashboard).length).toBeGreaterThanOrEqual(12);
      // A renamed metric breaks this: the platform's names are declared in metrics.ts (the
      // temporal_* ones are checked against a live worker in observability.test.ts).
      const declared = [...readFileSync(join(projectRoot, 'services', 'shared', 'metrics.ts'), 'utf8').matchAll(/name: '(media_[a-z0-9_]+)'/g)].map((m) => m[1]);
      const queried = dashboardMetricNames(dashboard);
      expect(queried.filter((n) => n.startsWith('media_')).filter((n) => !declared.includes(n))).toEqual([]);
      expect(queried.filter((n) => !n.startsWith('media_') && !n.startsWith('temporal_'))).toEqual([]);
      expect(queried).toEqual(expect.arrayContaining(['media_uploads_finished_total', 'media_activity_duration_seconds', 'temporal_worker_task_slots_available']));
    });

    it('labels every object with the app.kubernetes.io labels', () => {
      for (const object of objects) {
        expect(object.metadata.labels).toMatchObject({
          'app.kubernetes.io/name': 'media-upload',
          'app.kubernetes.io/instance': release,
          'app.kubernetes.io/managed-by': 'Helm',
        });
      }
    });
  });

  describe('strict schema check', () => {
    it('fails on a deliberately broken Deployment, ScaledObject and ServiceMonitor', () => {
      const objects = render([join(ciDir, 'production-keda-irsa-values.yaml')]);
      expect(schemaProblems(objects)).toEqual([]);
      const broken = structuredClone(objects);
      podSpec(get(broken, 'Deployment', `${release}-api`)).containers[0].readinesProbe = { httpGet: { path: '/readyz', port: 'http' } };
      get(broken, 'ScaledObject', `${release}-worker-video`).spec.minReplicaCount = 'zero';
      get(broken, 'ServiceMonitor', `${release}-api`).spec.endpoints[0].scrapeInterval = '30s';
      const problems = schemaProblems(broken);
      expect(problems.filter((p) => p.kind === 'Deployment').map((p) => p.version)).toEqual(kubernetesVersions);
      expect(problems.find((p) => p.kind === 'Deployment')?.error).toMatch(/readinesProbe/);
      expect(problems.find((p) => p.kind === 'ScaledObject')?.error).toMatch(/minReplicaCount: 'zero' is not of type 'integer'/);
      expect(problems.find((p) => p.kind === 'ServiceMonitor')?.error).toMatch(/scrapeInterval/);
    });
  });

  describe('RDS over verified TLS and per-component extras', () => {
    const args = [
      '--set', 'secrets.databaseUrl=postgres://u:p@db.abc.us-east-1.rds.amazonaws.com:5432/media?sslmode=verify-full',
      '--set', 'secrets.jwtSecret=chart-test-secret',
      '--set', 'caBundle.configMapName=rds-ca-bundle', '--set', 'caBundle.key=global-bundle.pem',
    ];
    const extras = (component: string) => [
      '--set-json', `${component}.extraEnv=[{"name":"EXTRA_${component.replace(/\W/g, '_').toUpperCase()}","value":"1"}]`,
      '--set-json', `${component}.extraVolumes=[{"name":"extra","emptyDir":{"sizeLimit":"1Mi"}}]`,
      '--set-json', `${component}.extraVolumeMounts=[{"name":"extra","mountPath":"/extra","readOnly":true}]`,
      '--set-json', `${component}.nodeSelector={"pool":"${component}"}`,
      '--set-json', `${component}.tolerations=[{"key":"pool","operator":"Equal","value":"x","effect":"NoSchedule"}]`,
    ];
    const components = [
      { values: 'api', kind: 'Deployment', name: `${release}-api` },
      { values: 'workers.light', kind: 'Deployment', name: `${release}-worker-light` },
      { values: 'workers.video', kind: 'Deployment', name: `${release}-worker-video` },
      { values: 'migration', kind: 'Job', name: `${release}-migrate` },
    ];

    it('mounts the CA bundle into the API, both workers and the migration Job and points NODE_EXTRA_CA_CERTS at it', () => {
      const objects = render([], args);
      expect(schemaProblems(objects)).toEqual([]);
      for (const { kind, name } of components) {
        const spec = podSpec(get(objects, kind, name));
        const [container] = spec.containers;
        expect(spec.volumes).toContainEqual({ name: 'ca-bundle', configMap: { name: 'rds-ca-bundle', items: [{ key: 'global-bundle.pem', path: 'global-bundle.pem' }] } });
        const mount = container.volumeMounts.find((m: any) => m.name === 'ca-bundle');
        expect(mount.readOnly).toBe(true);
        expect(container.env).toContainEqual({ name: 'NODE_EXTRA_CA_CERTS', value: `${mount.mountPath}/global-bundle.pem` });
      }
      const fromSecret = render([], ['--set', 'secrets.jwtSecret=x', '--set', 'caBundle.secretName=db-ca']);
      expect(podSpec(get(fromSecret, 'Job', `${release}-migrate`)).volumes).toContainEqual({ name: 'ca-bundle', secret: { secretName: 'db-ca', items: [{ key: 'ca.crt', path: 'ca.crt' }] } });
      const both = runHelm(['template', release, chartDir, '--set', 'caBundle.secretName=a', '--set', 'caBundle.configMapName=b']);
      expect(both.status).not.toBe(0);
      expect(both.output).toContain('caBundle: set secretName or configMapName, not both');
    });

    it('takes extraEnv, extraVolumes, extraVolumeMounts, nodeSelector and tolerations for each component, the Job included', () => {
      const objects = render([], [...args, ...components.flatMap((c) => extras(c.values))]);
      expect(schemaProblems(objects)).toEqual([]);
      for (const { values: component, kind, name } of components) {
        const spec = podSpec(get(objects, kind, name));
        const [container] = spec.containers;
        expect(container.env).toContainEqual({ name: `EXTRA_${component.replace(/\W/g, '_').toUpperCase()}`, value: '1' });
        expect(spec.volumes).toContainEqual({ name: 'extra', emptyDir: { sizeLimit: '1Mi' } });
        expect(container.volumeMounts).toContainEqual({ name: 'extra', mountPath: '/extra', readOnly: true });
        expect(spec.nodeSelector).toEqual({ pool: component });
        expect(spec.tolerations).toEqual([{ key: 'pool', operator: 'Equal', value: 'x', effect: 'NoSchedule' }]);
      }
    });
  });

  describe('EKS production scenario', () => {
    it('health-checks ALB targets on /healthz, which the API answers 200 without a token', () => {
      const objects = render([join(ciDir, 'production-keda-irsa-values.yaml')]);
      const ingress = get(objects, 'Ingress', `${release}-api`);
      expect(ingress.spec.ingressClassName).toBe('alb');
      expect(ingress.metadata.annotations?.['alb.ingress.kubernetes.io/healthcheck-path']).toBe('/healthz');
      const [api] = podSpec(get(objects, 'Deployment', `${release}-api`)).containers;
      expect(api.livenessProbe.httpGet.path).toBe('/healthz');
    });

    it('refuses temporal.auth=apiKey without a key, and takes it from the existing Secret', () => {
      const missing = runHelm(['template', release, chartDir, '--set', 'temporal.auth=apiKey', '--set', 'secrets.jwtSecret=x']);
      expect(missing.status).not.toBe(0);
      expect(missing.output).toContain('temporal.auth=apiKey needs the key');
      expect(runHelm(['template', release, chartDir, '--set', 'temporal.auth=apiKey', '--set', 'secrets.temporalApiKey=k']).status).toBe(0);
    });

    it('hands temporal.tlsServerName to the pods and to the KEDA scaler', () => {
      const objects = render([join(ciDir, 'temporal-mtls-values.yaml')]);
      const [video] = podSpec(get(objects, 'Deployment', `${release}-worker-video`)).containers;
      const config = loadConfig({ ...containerEnv(objects, video), DATABASE_URL: 'postgres://x', JWT_SECRET: 'x' });
      expect(config.TEMPORAL_TLS_SERVER_NAME).toBe('media-prod.a1b2c.tmprl.cloud');
      expect(get(objects, 'ScaledObject', `${release}-worker-video`).spec.triggers[0].metadata.tlsServerName).toBe('media-prod.a1b2c.tmprl.cloud');
    });

    it('can run clamd on the image signatures alone or update them from a private mirror', () => {
      const off = podSpec(get(render([], ['--set', 'clamd.freshclam.enabled=false']), 'Deployment', `${release}-clamd`));
      expect(off.containers[0].env).toEqual([{ name: 'CLAMAV_NO_FRESHCLAMD', value: 'true' }]);
      const objects = render([], ['--set', 'clamd.freshclam.privateMirror=http://clamav-mirror.internal']);
      expect(get(objects, 'ConfigMap', `${release}-clamd`).data?.['freshclam.conf']).toContain('PrivateMirror http://clamav-mirror.internal');
      expect(podSpec(get(objects, 'Deployment', `${release}-clamd`)).containers[0].volumeMounts).toContainEqual({
        name: 'config', mountPath: '/etc/clamav/freshclam.conf', subPath: 'freshclam.conf', readOnly: true,
      });
    });
  });

  describe('lifecycle settings', () => {
    it('renders webhooks into the Secret and cleanup settings into the ConfigMap, in a form the services load', () => {
      const endpoints = [{ url: 'https://backend.example.com/hooks/media', secret: 'whsec-0123456789abcdef' }];
      const objects = render([], [
        '--set-json', `secrets.webhookEndpoints=${JSON.stringify(endpoints)}`,
        '--set', 'secrets.databaseUrl=postgres://u:p@db:5432/media', '--set', 'secrets.jwtSecret=chart-test-secret',
        '--set', 'cleanup.interval=30m', '--set', 'config.publicMediaTypes=POST_IMAGE\\,POST_VIDEO',
      ]);
      const [worker] = podSpec(get(objects, 'Deployment', `${release}-worker-light`)).containers;
      const secret = get(objects, 'Secret', release);
      const secretEnv = Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString()]));
      expect(worker.envFrom).toContainEqual({ secretRef: { name: release } });
      const config = loadConfig({ ...containerEnv(objects, worker), ...secretEnv });
      expect(config.WEBHOOK_ENDPOINTS).toEqual(endpoints);
      expect(config.CLEANUP_INTERVAL).toBe('30m');
      expect(config.PUBLIC_MEDIA_TYPES).toEqual(['POST_IMAGE', 'POST_VIDEO']);
      expect(config.CLEANUP_UNATTACHED_AFTER_SECONDS).toBe(86400);
      expect(config.USER_STORAGE_QUOTA_BYTES).toBe(10 * 1024 ** 3);
    });

    it('refuses a webhook endpoint without a secret', () => {
      const res = runHelm(['template', release, chartDir, '--set-json', 'secrets.webhookEndpoints=[{"url":"https://x.example.com/h"}]']);
      expect(res.status).not.toBe(0);
      expect(res.output).toMatch(/secret/);
    });
  });

  describe('Grafana dashboard', () => {
    it('is left out with grafana.dashboard.enabled=false and carries extra sidecar labels otherwise', () => {
      expect(render([], ['--set', 'grafana.dashboard.enabled=false']).filter((o) => o.metadata.name === `${release}-dashboard`)).toEqual([]);
      const objects = render([], ['--set', 'grafana.dashboard.labels.team=media', '--set', 'grafana.dashboard.annotations.grafana_folder=Media']);
      const configMap = get(objects, 'ConfigMap', `${release}-dashboard`);
      expect(configMap.metadata.labels).toMatchObject({ grafana_dashboard: '1', team: 'media' });
      expect(configMap.metadata.annotations).toEqual({ grafana_folder: 'Media' });
    });
  });

  describe('existing Secret (production scenario)', () => {
    it('creates no Secret of its own and wires the pods and the KEDA API key to the existing one', () => {
      const objects = render([join(ciDir, 'production-keda-irsa-values.yaml')]);
      expect(ofKind(objects, 'Secret')).toHaveLength(0);
      const [api] = podSpec(get(objects, 'Deployment', `${release}-api`)).containers;
      expect(api.envFrom).toContainEqual({ secretRef: { name: 'media-upload-secrets' } });
      const auth = get(objects, 'TriggerAuthentication', `${release}-temporal`);
      expect(auth.spec.secretTargetRef).toEqual([{ parameter: 'apiKey', name: 'media-upload-secrets', key: 'TEMPORAL_API_KEY' }]);
    });
  });

  describe('Temporal mTLS', () => {
    it('mounts the client certificate Secret and points the TLS paths at it', () => {
      const objects = render([join(ciDir, 'temporal-mtls-values.yaml')]);
      const spec = podSpec(get(objects, 'Deployment', `${release}-worker-video`));
      const env = containerEnv(objects, spec.containers[0]);
      expect(spec.volumes).toContainEqual(
        expect.objectContaining({ name: 'temporal-tls', secret: expect.objectContaining({ secretName: 'temporal-client-tls' }) }),
      );
      const mount = spec.containers[0].volumeMounts.find((m: any) => m.name === 'temporal-tls');
      expect(env.TEMPORAL_TLS_CERT_PATH).toBe(`${mount.mountPath}/tls.crt`);
      expect(env.TEMPORAL_TLS_KEY_PATH).toBe(`${mount.mountPath}/tls.key`);
      expect(env.TEMPORAL_TLS_CA_PATH).toBe(`${mount.mountPath}/ca.crt`);
    });

    it('refuses temporal.auth=mtls without a certificate Secret', () => {
      const { status, output } = runHelm(['template', release, chartDir, '--set', 'temporal.auth=mtls']);
      expect(status).not.toBe(0);
      expect(output).toContain('temporal.mtls.secretName is required');
    });
  });

  describe('worker shutdown grace time', () => {
    it('derives the pod grace period and the worker setting from the one value', () => {
      const objects = render([], ['--set', 'workers.video.shutdownGraceSeconds=1200']);
      const spec = podSpec(get(objects, 'Deployment', `${release}-worker-video`));
      expect(containerEnv(objects, spec.containers[0]).WORKER_SHUTDOWN_GRACE_SECONDS).toBe('1200');
      expect(spec.terminationGracePeriodSeconds).toBe(1215);
    });
  });

  describe('API shutdown', () => {
    it('pauses in preStop, passes the grace and drain times to the API and gives the pod more than pause plus grace', () => {
      const objects = render([]);
      const spec = podSpec(get(objects, 'Deployment', `${release}-api`));
      expect(spec.containers[0].lifecycle.preStop).toEqual({ exec: { command: ['sleep', '5'] } });
      const env = containerEnv(objects, spec.containers[0]);
      expect(env.SHUTDOWN_GRACE_SECONDS).toBe('20');
      // The drain is part of the grace time, so the pod's budget does not add it.
      expect(env.SHUTDOWN_DRAIN_SECONDS).toBe('1');
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(5 + 20);
    });
    it('refuses a pod grace period that does not cover the pause plus the grace time', () => {
      const { status, output } = runHelm(['template', release, chartDir, '--set', 'api.terminationGracePeriodSeconds=25']);
      expect(status).not.toBe(0);
      expect(output).toContain('api.terminationGracePeriodSeconds must exceed');
    });
    it('refuses a drain longer than the grace time it is part of (the API would refuse it at start-up)', () => {
      const { status, output } = runHelm(['template', release, chartDir, '--set', 'api.drainSeconds=21']);
      expect(status).not.toBe(0);
      expect(output).toContain('api.drainSeconds is part of api.shutdownGraceSeconds');
    });
  });

  describe('values.schema.json', () => {
    it.each([
      ['a string where an integer belongs', ['--set-string', 'workers.video.shutdownGraceSeconds=soon'], /shutdownGraceSeconds.*want integer/],
      ['an unknown Temporal auth mode', ['--set', 'temporal.auth=password'], /temporal\/auth/],
      ['a misspelled key', ['--set', 'workers.light.taskQeue=x'], /taskQeue/],
    ])('makes helm template and helm lint fail on %s', (_what, args, message) => {
      const template = runHelm(['template', release, chartDir, ...args]);
      expect(template.status).not.toBe(0);
      expect(template.output).toMatch(message);
      const lint = runHelm(['lint', chartDir, ...args]);
      expect(lint.status).not.toBe(0);
      expect(lint.output).toMatch(message);
    });
  });

  describe('Tilt dev values', () => {
    it('render on top of the dev scenario with tsx watch and a writable root for live update', () => {
      const files = [join(ciDir, 'dev-minimal-values.yaml'), join(projectRoot, 'k8s', 'tilt-values.yaml')];
      expect(runHelm(['lint', chartDir, '--strict', ...valuesArgs(files)]).status).toBe(0);
      const objects = render(files);
      const [api] = podSpec(get(objects, 'Deployment', `${release}-api`)).containers;
      expect(api.args).toEqual(['node_modules/.bin/tsx', 'watch', 'services/api/main.ts']);
      expect(api.securityContext.readOnlyRootFilesystem).toBe(false);
      const [video] = podSpec(get(objects, 'Deployment', `${release}-worker-video`)).containers;
      expect(containerEnv(objects, video).WORKFLOW_BUNDLE_PATH).toBeUndefined();
    });
  });
});
