import { cpus } from 'node:os';
import { performance } from 'node:perf_hooks';
import { startBenchPlatform, type BenchContext } from './platform';
import { childProcesses, isExiftoolPool, leftoverChildren, waitForQuietMachine } from './procs';
import { formatTable, type SectionResult } from './report';
import type { Section } from './section';
import { apiMemorySection } from './sections/api-memory';
import { capacityCheckSection } from './sections/capacity-check';
import { costSection } from './sections/cost';
import { documentsSection } from './sections/documents';
import { hlsSection } from './sections/hls';
import { isolationSection } from './sections/isolation';
import { playableSection } from './sections/playable';
import { presignSection } from './sections/presign';
import { thumbnailsSection } from './sections/thumbnails';
import { tusdSection } from './sections/tusd';
import { uploadBatchSection } from './sections/upload-batch';
import { uploadE2eSection } from './sections/upload-e2e';
import { uploadSessionSection } from './sections/upload-session';

/**
 * `npm run bench` (SPEC.md §9): one throw-away stack, every section in turn on it, one table.
 * A section that fails is reported as not measured; the others still run.
 * BENCH_ONLY=<term>[,<term>…] runs, for each term, the sections whose name starts with it (`cost`,
 * `capacity-check`), or, when none does, those whose name contains it.
 */
const sections: Section[] = [
  uploadSessionSection,
  uploadBatchSection,
  isolationSection,
  tusdSection,
  presignSection,
  apiMemorySection,
  // Processing: the activities beside bare sharp / ffmpeg, then the whole path under load.
  thumbnailsSection,
  hlsSection,
  documentsSection,
  playableSection,
  uploadE2eSection,
  // Issue 16: what one upload costs (feeds `npm run capacity`).
  costSection,
  capacityCheckSection,
];

let interrupted = false;

async function runSections(ctx: BenchContext, list: Section[]): Promise<SectionResult[]> {
  const results: SectionResult[] = [];
  for (const section of list) {
    if (interrupted) break;
    // Each section starts on a quiet machine, whatever the one before it left queued.
    const settled = await waitForQuietMachine();
    console.log(`bench: ${section.name} … (machine ${settled.quiet ? 'quiet' : 'still busy'} after ${(settled.waitedMs / 1000).toFixed(0)} s: ${(settled.busy * 100).toFixed(0)} % of cores)`);
    const children = new Set(childProcesses().map((c) => c.pid));
    const t0 = performance.now();
    let result: SectionResult;
    try {
      result = { name: section.name, rows: await section.run(ctx), seconds: (performance.now() - t0) / 1000 };
    } catch (err) {
      console.error(`bench: ${section.name} failed:`, err);
      result = { name: section.name, rows: [], error: (err as Error).message, seconds: (performance.now() - t0) / 1000 };
    }
    // Whatever a section spawned (ffmpeg, an API child) must be gone when it returns. The bench
    // stack's light worker starts its ExifTool pool (perl, -stay_open) on the first image it
    // publishes and keeps it until the stack stops: the stack's, not the section's.
    for (const pool of childProcesses().filter((c) => isExiftoolPool(c.pid))) children.add(pool.pid);
    const leaked = await leftoverChildren(children);
    if (leaked.length) {
      console.error(`bench: ${section.name} left child processes running:`, leaked);
      result.rows.push({ metric: 'child processes left running', value: leaked.map((c) => `${c.name} (${c.pid})`).join(', '), target: 'none', met: false });
    }
    if (!settled.quiet) result.rows.push({ metric: 'machine busy when the section started', value: `${(settled.busy * 100).toFixed(0)} % of all cores after ${(settled.waitedMs / 1000).toFixed(0)} s`, target: '< 15 %', met: false });
    results.push(result);
  }
  return results;
}

async function main(): Promise<number> {
  const only = process.env.BENCH_ONLY;
  const terms = only ? only.toLowerCase().split(',').map((t) => t.trim()).filter(Boolean) : [];
  const matching = (term: string) => {
    const starting = sections.filter((s) => s.name.toLowerCase().startsWith(term));
    return starting.length ? starting : sections.filter((s) => s.name.toLowerCase().includes(term));
  };
  const list = terms.length ? sections.filter((s) => terms.some((t) => matching(t).includes(s))) : sections;
  const t0 = performance.now();
  console.log(`bench: starting the stack (Node ${process.version}, ${cpus().length} cores) …`);
  const ctx = await startBenchPlatform({ clamd: list.some((s) => s.clamd) });
  const stopOnSignal = () => {
    console.error('bench: interrupted, stopping the stack');
    interrupted = true;
    void ctx.stop().then(() => process.exit(130));
  };
  process.once('SIGINT', stopOnSignal);
  process.once('SIGTERM', stopOnSignal);
  let results: SectionResult[];
  try {
    console.log(`bench: stack up in ${((performance.now() - t0) / 1000).toFixed(1)} s; ${ctx.stack.temporal.description}`);
    results = await runSections(ctx, list);
  } finally {
    await ctx.stop();
  }
  if (interrupted) return 130;
  console.log(`\nResults (${new Date().toISOString()}, total ${((performance.now() - t0) / 1000).toFixed(0)} s; ${ctx.stack.temporal.description})\n`);
  console.log(formatTable(results));
  const missed = results.flatMap((r) => r.rows).filter((row) => row.met === false).length;
  const errored = results.filter((r) => r.error).length;
  console.log(`\n${results.flatMap((r) => r.rows).filter((row) => row.met !== undefined).length - missed} targets met, ${missed} missed, ${errored} sections not measured`);
  return 0;
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error('bench failed:', err);
    process.exit(1);
  },
);
