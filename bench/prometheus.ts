/** One sample of a Prometheus text exposition: `name{label="v",…} value`. */
export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses the text format (comments skipped, escaped quotes in label values kept as is). */
export function parsePrometheus(text: string): Sample[] {
  const out: Sample[] = [];
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/.exec(line);
    if (!m) continue;
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    out.push({ name: m[1]!, labels, value: Number(m[3]) });
  }
  return out;
}

/** Sum of the samples named `name` whose labels match `where`, grouped by the value of label `by` (or `''`). */
export function sumBy(samples: readonly Sample[], name: string, where: Record<string, string> = {}, by?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name || !Object.entries(where).every(([k, v]) => s.labels[k] === v)) continue;
    const key = by ? (s.labels[by] ?? '') : '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

/** GET a `/metrics` URL and parse it; empty when there is no URL. */
export async function scrape(url: string | undefined): Promise<Sample[]> {
  if (!url) return [];
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return parsePrometheus(await res.text());
}
