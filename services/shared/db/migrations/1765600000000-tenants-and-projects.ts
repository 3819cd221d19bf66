import type { MigrationInterface, QueryRunner } from 'typeorm';

/**
 * Tenants and projects (issue 17). Every existing row belongs to the tenant `default` (the
 * tenant of a token without a tenant claim) and to no project, so today's users keep seeing
 * their media. Adding a column with a constant default rewrites nothing in PostgreSQL ≥ 11.
 * Scoped reads are `tenant_id = $t AND (user_id = $u OR project_id = ANY($p))`: one index per
 * arm, both in listing order. Idempotency keys become per tenant and user.
 */
export class TenantsAndProjects1765600000000 implements MigrationInterface {
  name = 'TenantsAndProjects1765600000000';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE media ADD COLUMN tenant_id text NOT NULL DEFAULT 'default', ADD COLUMN project_id text`);
    await q.query(`ALTER TABLE batches ADD COLUMN tenant_id text NOT NULL DEFAULT 'default'`);
    await q.query(`CREATE INDEX media_tenant_user_created ON media (tenant_id, user_id, created_at DESC, id DESC)`);
    await q.query(`CREATE INDEX media_tenant_project_created ON media (tenant_id, project_id, created_at DESC, id DESC) WHERE project_id IS NOT NULL`);
    // Per-tenant quota: the bytes of a tenant's live and READY media.
    await q.query(`CREATE INDEX media_tenant_status ON media (tenant_id, status)`);
    await q.query(`CREATE UNIQUE INDEX media_tenant_user_idempotency_key ON media (tenant_id, user_id, idempotency_key) WHERE idempotency_key IS NOT NULL`);
    await q.query('DROP INDEX media_user_idempotency_key');
    await q.query('DROP INDEX media_user_created');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.query(`CREATE INDEX media_user_created ON media (user_id, created_at DESC, id DESC)`);
    await q.query(`CREATE UNIQUE INDEX media_user_idempotency_key ON media (user_id, idempotency_key) WHERE idempotency_key IS NOT NULL`);
    await q.query('DROP INDEX media_tenant_user_idempotency_key');
    await q.query('DROP INDEX media_tenant_status');
    await q.query('DROP INDEX media_tenant_project_created');
    await q.query('DROP INDEX media_tenant_user_created');
    await q.query('ALTER TABLE batches DROP COLUMN tenant_id');
    await q.query('ALTER TABLE media DROP COLUMN project_id, DROP COLUMN tenant_id');
  }
}
