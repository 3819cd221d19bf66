import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Text extracted from documents, one row per media, for search. Kept out of `media` so that
 * listing and status reads never drag up to a megabyte of text along; removed with the media
 * (compensation, deletion) and by the foreign key as a last resort.
 */
export class MediaTexts1765500000000 implements MigrationInterface {
  name = 'MediaTexts1765500000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(
      `CREATE TABLE media_texts (
         media_id uuid PRIMARY KEY REFERENCES media(id) ON DELETE CASCADE,
         text text NOT NULL,
         size_bytes integer NOT NULL,
         truncated boolean NOT NULL,
         pages_read integer NOT NULL,
         created_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE media_texts');
  }
}
