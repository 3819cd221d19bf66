import type { BenchContext } from './platform';
import type { Row } from './report';

/**
 * One measurement of `npm run bench`. Sections run one after the other on the same
 * context; add one by exporting it from a module in bench/sections/ and listing it in run.ts.
 */
export interface Section {
  name: string;
  run(ctx: BenchContext): Promise<Row[]>;
}
