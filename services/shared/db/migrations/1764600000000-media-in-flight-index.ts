import type { MigrationInterface, QueryRunner } from 'typeorm';

/** The in-flight gauge counts unfinished media on every Prometheus scrape: index just those rows. */
export class MediaInFlightIndex1764600000000 implements MigrationInterface {
  name = 'MediaInFlightIndex1764600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX media_in_flight ON media (status) WHERE status IN ('AWAITING_UPLOAD', 'VERIFYING', 'SCANNING', 'PROCESSING')`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX media_in_flight');
  }
}
