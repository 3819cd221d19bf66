import type { MigrationInterface, QueryRunner } from 'typeorm';

export class InitialSchema1764000000000 implements MigrationInterface {
  name = 'InitialSchema1764000000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`CREATE TABLE batches (
      id uuid PRIMARY KEY,
      user_id text NOT NULL,
      item_count integer NOT NULL,
      created_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE TABLE media (
      id uuid PRIMARY KEY,
      user_id text NOT NULL,
      batch_id uuid REFERENCES batches(id) ON DELETE SET NULL,
      media_type text NOT NULL,
      file_name text NOT NULL,
      mime_type text NOT NULL,
      file_size bigint NOT NULL CHECK (file_size > 0),
      checksum_sha256 text,
      status text NOT NULL,
      failure_reason text,
      storage_key text NOT NULL UNIQUE,
      upload_id text,
      part_size integer,
      part_count integer,
      idempotency_key text,
      workflow_id text NOT NULL UNIQUE,
      expires_at timestamptz NOT NULL,
      metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
      created_at timestamptz NOT NULL DEFAULT now(),
      updated_at timestamptz NOT NULL DEFAULT now()
    )`);
    await q.query(`CREATE UNIQUE INDEX media_user_idempotency_key ON media (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL`);
    await q.query(`CREATE INDEX media_user_created ON media (user_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX media_batch ON media (batch_id) WHERE batch_id IS NOT NULL`);
    await q.query(`CREATE TABLE renditions (
      id serial PRIMARY KEY,
      media_id uuid NOT NULL REFERENCES media(id) ON DELETE CASCADE,
      kind text NOT NULL,
      label text NOT NULL,
      width integer,
      height integer,
      storage_key text NOT NULL,
      content_type text NOT NULL,
      size_bytes bigint,
      UNIQUE (media_id, kind, label)
    )`);
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query('DROP TABLE renditions');
    await q.query('DROP TABLE media');
    await q.query('DROP TABLE batches');
  }
}
