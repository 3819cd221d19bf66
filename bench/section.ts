import type { BenchContext } from './platform';
import type { Row } from './report';

/**
 * One measurement of `npm run bench`. Sections run one after the other on the same
 * context; add one by exporting it from a module in bench/sections/ and listing it in run.ts.
 */
export interface Section {
  name: string;
  /** Needs clamd on the stack (the scan step of the upload workflow); started once for the whole run when any selected section does. */
  clamd?: boolean;
  run(ctx: BenchContext): Promise<Row[]>;
}
