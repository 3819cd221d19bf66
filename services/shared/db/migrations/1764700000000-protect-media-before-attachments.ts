import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Media made READY before attachments existed was never attached, yet may be in use. The
 * cleanup schedule deletes unattached media after a day, so such media is attached to the
 * owner `legacy/<userId>`: kept until its user detaches it (DELETE /media/{id}/attach).
 */
export class ProtectMediaBeforeAttachments1764700000000 implements MigrationInterface {
  name = 'ProtectMediaBeforeAttachments1764700000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `UPDATE media SET owner_type = 'legacy', owner_id = user_id, attached_at = now()
        WHERE status = 'READY' AND owner_type IS NULL`,
    );
  }

  async down(): Promise<void> {
    // Nothing to undo: detaching them again would hand them to the cleanup.
  }
}
