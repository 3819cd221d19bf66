import type { MigrationInterface, QueryRunner } from 'typeorm';

/** Media attached to an owner (a post, a profile): one owner at a time. */
export class MediaAttachments1764500000000 implements MigrationInterface {
  name = 'MediaAttachments1764500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE media ADD COLUMN owner_type text, ADD COLUMN owner_id text, ADD COLUMN attached_at timestamptz`);
    await q.query(`ALTER TABLE media ADD CONSTRAINT media_owner_complete CHECK ((owner_type IS NULL) = (owner_id IS NULL))`);
    await q.query(`CREATE INDEX media_owner ON media (owner_type, owner_id) WHERE owner_type IS NOT NULL`);
    // The cleanup's candidates: READY and unattached, oldest first.
    await q.query(`CREATE INDEX media_unattached_ready ON media (updated_at, id) WHERE status = 'READY' AND owner_type IS NULL`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP INDEX media_unattached_ready');
    await q.query('DROP INDEX media_owner');
    await q.query('ALTER TABLE media DROP CONSTRAINT media_owner_complete');
    await q.query('ALTER TABLE media DROP COLUMN attached_at, DROP COLUMN owner_id, DROP COLUMN owner_type');
  }
}
