import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { projectRoot } from '../../devstack/tools';

export const dashboardFile = join(projectRoot, 'charts', 'media-upload', 'dashboards', 'media-upload.json');

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

/** The PromQL of every panel of a Grafana dashboard. */
export function dashboardQueries(dashboard: { panels: Panel[] }): string[] {
  return dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr));
}

/**
 * Metric names a dashboard queries, as exported (a histogram's `_bucket`/`_count`/`_sum`
 * series belong to the histogram's name).
 */
export function dashboardMetricNames(dashboard: { panels: Panel[] }): string[] {
  // Label names (`by (media_type)`, `{status="READY"}`) are not metrics.
  const withoutLabels = (expr: string) => expr.replace(/\b(?:by|without)\s*\([^)]*\)/g, '').replace(/\{[^}]*\}/g, '');
  const names = dashboardQueries(dashboard).flatMap((expr) => withoutLabels(expr).match(/\b[a-z][a-z0-9]*_[a-z0-9_]+\b(?!\s*\()/g) ?? []);
  return [...new Set(names.map((n) => n.replace(/_(bucket|count|sum)$/, '')))].sort();
}

export function readDashboard(): { panels: Panel[] } {
  return JSON.parse(readFileSync(dashboardFile, 'utf8')) as { panels: Panel[] };
}
