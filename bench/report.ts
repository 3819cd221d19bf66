/** One line of the results table. */
export interface Row {
  metric: string;
  value: string;
  /** The SPEC.md §9 target this row is checked against, when it has one. */
  target?: string;
  met?: boolean;
}

export interface SectionResult {
  name: string;
  rows: Row[];
  /** Set when the section could not run; the others still do. */
  error?: string;
  seconds: number;
}

/** A plain-text table, one block per section. */
export function formatTable(results: SectionResult[]): string {
  const header = ['metric', 'value', 'target', 'met'];
  const lines: string[][] = [];
  const blocks: Array<{ title: string; from: number; to: number }> = [];
  for (const r of results) {
    const from = lines.length;
    for (const row of r.rows) lines.push([row.metric, row.value, row.target ?? '', row.met === undefined ? '' : row.met ? 'yes' : 'NO']);
    if (r.error) lines.push(['not measured', r.error, '', '']);
    blocks.push({ title: `${r.name} (${r.seconds.toFixed(1)} s)`, from, to: lines.length });
  }
  const widths = header.map((h, c) => Math.max(h.length, ...lines.map((l) => l[c]!.length)));
  const fmt = (cells: string[]) => cells.map((cell, c) => cell.padEnd(widths[c]!)).join('  ').trimEnd();
  const rule = '-'.repeat(widths.reduce((a, b) => a + b + 2, -2));
  const out = [fmt(header), rule];
  for (const b of blocks) {
    out.push(`== ${b.title}`);
    for (const l of lines.slice(b.from, b.to)) out.push(fmt(l));
  }
  return out.join('\n');
}
