import type { DataSource, EntityManager, ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { MAX_FILE_NAME_LENGTH, TERMINAL_STATUSES, UPLOADING_STATUSES, type DeletionRule, type MediaStatus, type MediaType } from '../media-types';
import { sanitizeForReadModel, sanitizeText } from '../sanitize';

export type { DeletionRule };
import { BatchEntity, MediaEntity, RenditionEntity, type BatchRow, type MediaRow, type RenditionRow } from './entities';

/** NOTIFY channel carrying a media id whenever its status changes (drives SSE). */
export const STATUS_CHANNEL = 'media_status';

export type NewMedia = Omit<MediaRow, 'updatedAt' | 'metadata' | 'failureReason' | 'ownerType' | 'ownerId' | 'attachedAt'>;
export type NewRendition = Omit<RenditionRow, 'id'>;

/** Text extracted from a document (table `media_texts`). */
export interface MediaText {
  /** Page texts separated by form feeds; '' for a document without a text layer. */
  text: string;
  /** Cut at DOCUMENT_TEXT_MAX_BYTES. */
  truncated: boolean;
  /** Pages whose text was read. */
  pagesRead: number;
}

/**
 * Who is asking: a user of a tenant with the projects their token grants. A user sees their own
 * media and that of granted projects, within their tenant only; another tenant's media does not
 * exist for them.
 */
export interface Scope {
  tenantId: string;
  userId: string;
  projects: readonly string[];
}

/** Narrows a query on `media` (alias `m`) to what `scope` may read (indexes of migration 1765600000000). */
function visibleTo<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, scope: Scope): SelectQueryBuilder<T> {
  return qb
    .andWhere('m.tenant_id = :tenantId', { tenantId: scope.tenantId })
    .andWhere('(m.user_id = :userId OR m.project_id = ANY(:projects))', { userId: scope.userId, projects: [...scope.projects] });
}

export interface Owner {
  ownerType: string;
  ownerId: string;
}

export type AttachOutcome =
  | { outcome: 'attached' | 'unchanged'; row: MediaRow; detached: MediaRow[] }
  | { outcome: 'not_found' }
  | { outcome: 'not_ready' | 'attached_elsewhere'; row: MediaRow };

export const FAILED_STATUSES: readonly MediaStatus[] = ['FAILED', 'REJECTED', 'EXPIRED', 'CANCELLED'];

/** A row insertWithinQuota left out: the quota (`user` or `tenant`, bytes) it would exceed and the usage it met. */
export interface QuotaRefusal {
  scope: 'user' | 'tenant';
  quotaBytes: number;
  usedBytes: number;
}

/** Private metadata key (never presented): a DELETE cancelled this upload in flight (claimCancellation). */
export const CANCEL_REQUESTED = 'cancelRequested';

/** The SQL condition (on alias-free `media`) a rule selects, with its parameters from `$first`. */
function ruleCondition(rule: DeletionRule, first: number): { sql: string; params: unknown[] } {
  switch (rule.kind) {
    case 'finished':
      return { sql: `status = ANY($${first}::text[])`, params: [TERMINAL_STATUSES] };
    case 'unattached':
      return rule.before
        ? { sql: `status = 'READY' AND owner_type IS NULL AND updated_at < $${first}`, params: [rule.before] }
        : { sql: `status = 'READY' AND owner_type IS NULL`, params: [] };
    case 'failed':
      return { sql: `status = ANY($${first}::text[]) AND updated_at < $${first + 1}`, params: [FAILED_STATUSES, rule.before] };
    case 'unpurged':
      // A DELETING upload whose workflow may still run is the 'cancelling' rule's: removing its
      // storage under that workflow would orphan what it writes after.
      return {
        sql: `((status = 'DELETING' AND metadata->>'${CANCEL_REQUESTED}' IS DISTINCT FROM 'true') OR (status = 'DELETED' AND metadata->>'purgedAt' IS NULL)) AND updated_at < $${first}`,
        params: [rule.before],
      };
    case 'cancelling':
      return { sql: `status = 'DELETING' AND metadata->>'${CANCEL_REQUESTED}' = 'true' AND updated_at < $${first}`, params: [rule.before] };
  }
}

/** Columns of a new media row and how each is read from a NewMedia, in INSERT order. */
const NEW_MEDIA_COLUMNS: Array<[column: string, type: string, value: (row: NewMedia) => unknown]> = [
  ['id', 'uuid', (r) => r.id],
  ['user_id', 'text', (r) => r.userId],
  ['tenant_id', 'text', (r) => r.tenantId],
  ['project_id', 'text', (r) => r.projectId],
  ['batch_id', 'uuid', (r) => r.batchId],
  ['media_type', 'text', (r) => r.mediaType],
  // The API rejects unsafe names (400); this keeps any other caller from storing one. The API
  // allows 255 characters (code points, as zod and JSON Schema's maxLength count them), which
  // are at most 510 UTF-16 units: a name it accepted is stored whole, never cut.
  ['file_name', 'text', (r) => sanitizeText(r.fileName, 2 * MAX_FILE_NAME_LENGTH)],
  ['mime_type', 'text', (r) => r.mimeType],
  ['file_size', 'bigint', (r) => r.fileSize],
  ['checksum_sha256', 'text', (r) => r.checksumSha256],
  ['status', 'text', (r) => r.status],
  ['storage_key', 'text', (r) => r.storageKey],
  ['upload_id', 'text', (r) => r.uploadId],
  ['part_size', 'integer', (r) => r.partSize],
  ['part_count', 'integer', (r) => r.partCount],
  ['idempotency_key', 'text', (r) => r.idempotencyKey],
  ['workflow_id', 'text', (r) => r.workflowId],
  ['expires_at', 'timestamptz', (r) => r.expiresAt],
  ['created_at', 'timestamptz', (r) => r.createdAt],
  // As the API presents a new session (updatedAt = createdAt) without reading it back.
  ['updated_at', 'timestamptz', (r) => r.createdAt],
];

type Queryable = Pick<EntityManager, 'query'>;

async function writeRows(within: Queryable, rows: NewMedia[]): Promise<void> {
  const { sql, params } = insertMedia(rows);
  await within.query(sql, params);
}

/** The batch row and its media rows in one statement (the batch's INSERT in a WITH clause). */
async function writeBatch(within: Queryable, batch: Omit<BatchRow, 'createdAt'>, rows: NewMedia[]): Promise<void> {
  const media = insertMedia(rows, 5);
  await within.query(`WITH batch AS (INSERT INTO batches (id, user_id, tenant_id, item_count, created_at) VALUES ($1, $2, $3, $4, now())) ${media.sql}`, [
    batch.id,
    batch.userId,
    batch.tenantId,
    batch.itemCount,
    ...media.params,
  ]);
}

/**
 * One INSERT of any number of media rows: a column array per parameter (`unnest`), so the
 * statement and its parameter count are the same for 1 row or 100. Parameters are numbered
 * from `$first`.
 */
function insertMedia(rows: NewMedia[], first = 1): { sql: string; params: unknown[] } {
  const columns = NEW_MEDIA_COLUMNS.map(([column]) => column).join(', ');
  const arrays = NEW_MEDIA_COLUMNS.map(([, type], i) => `$${first + i}::${type}[]`).join(', ');
  return {
    sql: `INSERT INTO media (${columns}) SELECT * FROM unnest(${arrays})`,
    params: NEW_MEDIA_COLUMNS.map(([, , value]) => rows.map(value)),
  };
}

export interface MediaPage {
  items: MediaRow[];
  nextCursor: string | null;
}

/**
 * PostgreSQL read model. Every write is idempotent: activities may run it again after a retry
 * or a worker crash and the result is the same.
 */
export class MediaRepository {
  constructor(readonly dataSource: DataSource) {}

  private get media() {
    return this.dataSource.getRepository(MediaEntity);
  }

  /** One INSERT (autocommit): never held open across a call to another service. */
  async insert(row: NewMedia): Promise<void> {
    await writeRows(this.dataSource, [row]);
  }

  /**
   * The batch row and its media rows in one statement (the batch's INSERT in a WITH clause),
   * so a batch is either recorded whole or not at all without a transaction's extra round trips.
   */
  async insertBatch(batch: Omit<BatchRow, 'createdAt'>, rows: NewMedia[]): Promise<void> {
    await writeBatch(this.dataSource, batch, rows);
  }

  /**
   * Inserts `rows` (all of one uploader; with `batch`, the batch row too) within the storage
   * quotas (`limits`, bytes, 0 = off). Under an advisory lock of the tenant (its quota on) or
   * else of the user, the usage is read again and each row that no longer fits, in order, is
   * left out: sessions created at the same instant read the usage before the others were
   * recorded, and without the lock 30 at once passed a 10 GiB quota with 36 GiB. One short
   * transaction; nothing remote is called inside it.
   * @returns the ids left out, each with the quota it would exceed and the usage it met.
   */
  async insertWithinQuota(rows: NewMedia[], limits: { userBytes: number; tenantBytes: number }, batch?: Omit<BatchRow, 'createdAt'>): Promise<Map<string, QuotaRefusal>> {
    const owner = batch ?? rows[0];
    if (!owner) return new Map();
    return this.dataSource.transaction(async (m) => {
      const lock = limits.tenantBytes > 0 ? ['quota', owner.tenantId] : ['quota', owner.tenantId, owner.userId];
      await m.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [JSON.stringify(lock)]);
      const used = {
        user: limits.userBytes > 0 ? await this.storageUsed({ tenantId: owner.tenantId, userId: owner.userId }, m) : 0,
        tenant: limits.tenantBytes > 0 ? await this.storageUsed({ tenantId: owner.tenantId }, m) : 0,
      };
      const refused = new Map<string, QuotaRefusal>();
      const kept: NewMedia[] = [];
      for (const row of rows) {
        const over: QuotaRefusal | undefined =
          limits.userBytes > 0 && used.user + row.fileSize > limits.userBytes
            ? { scope: 'user', quotaBytes: limits.userBytes, usedBytes: used.user }
            : limits.tenantBytes > 0 && used.tenant + row.fileSize > limits.tenantBytes
              ? { scope: 'tenant', quotaBytes: limits.tenantBytes, usedBytes: used.tenant }
              : undefined;
        if (over) {
          refused.set(row.id, over);
          continue;
        }
        used.user += row.fileSize;
        used.tenant += row.fileSize;
        kept.push(row);
      }
      if (batch) await writeBatch(m, batch, kept);
      else if (kept.length) await writeRows(m, kept);
      return refused;
    });
  }

  /** A batch is its uploader's: same tenant, same user. */
  async findBatch(id: string, scope: Scope): Promise<BatchRow | null> {
    return this.dataSource.getRepository(BatchEntity).findOneBy({ id, userId: scope.userId, tenantId: scope.tenantId });
  }

  async findByBatch(batchId: string, scope: Pick<Scope, 'tenantId' | 'userId'>): Promise<MediaRow[]> {
    return this.media.find({ where: { batchId, userId: scope.userId, tenantId: scope.tenantId }, order: { createdAt: 'ASC' } });
  }

  async findById(id: string): Promise<MediaRow | null> {
    return this.media.findOneBy({ id });
  }

  /**
   * The media if `scope` may read it: its own, or of a project the token grants, in its tenant.
   * Media the scope may not read is reported as missing, never as forbidden.
   */
  async findVisible(id: string, scope: Scope): Promise<MediaRow | null> {
    return visibleTo(this.media.createQueryBuilder('m').where('m.id = :id', { id }), scope).getOne();
  }

  /**
   * `findVisible` and the media's renditions (ordered as `renditions`) in one statement: the
   * read clients poll, so one round trip, one backend and one hydration rather than two.
   */
  async findVisibleWithRenditions(id: string, scope: Scope): Promise<{ row: MediaRow; renditions: RenditionRow[] } | null> {
    const found = await visibleTo(
      this.media.createQueryBuilder('m').leftJoinAndMapMany('m.renditions', RenditionEntity.options.name, 'r', 'r.media_id = m.id').where('m.id = :id', { id }),
      scope,
    )
      .orderBy('r.kind', 'ASC')
      .addOrderBy('r.width', 'ASC')
      .getOne();
    if (!found) return null;
    const { renditions, ...row } = found as MediaRow & { renditions: RenditionRow[] };
    return { row, renditions };
  }

  /** The uploader's own media (same tenant, same user). */
  async findOwned(id: string, scope: Pick<Scope, 'tenantId' | 'userId'>): Promise<MediaRow | null> {
    return this.media.findOneBy({ id, userId: scope.userId, tenantId: scope.tenantId });
  }

  async findByIdempotencyKey(scope: Pick<Scope, 'tenantId' | 'userId'>, idempotencyKey: string): Promise<MediaRow | null> {
    return this.media.findOneBy({ userId: scope.userId, tenantId: scope.tenantId, idempotencyKey });
  }

  /**
   * What `scope` may read, newest first; with `projectId` (one the caller checked the token
   * grants) that project's media only. The cursor is the last item's `createdAt|id`.
   */
  async list(scope: Scope, options: { status?: MediaStatus; projectId?: string; owner?: Partial<Owner>; cursor?: string; limit: number }): Promise<MediaPage> {
    const qb = visibleTo(this.media.createQueryBuilder('m'), scope);
    if (options.projectId) qb.andWhere('m.project_id = :projectId', { projectId: options.projectId });
    if (options.status) qb.andWhere('m.status = :status', { status: options.status });
    if (options.owner?.ownerType) qb.andWhere('m.owner_type = :ownerType', { ownerType: options.owner.ownerType });
    if (options.owner?.ownerId) qb.andWhere('m.owner_id = :ownerId', { ownerId: options.owner.ownerId });
    if (options.cursor) {
      const [createdAt, id] = decodeCursor(options.cursor);
      qb.andWhere('(m.created_at, m.id) < (:createdAt, :id)', { createdAt, id });
    }
    const rows = await qb.orderBy('m.created_at', 'DESC').addOrderBy('m.id', 'DESC').limit(options.limit + 1).getMany();
    const items = rows.slice(0, options.limit);
    const last = items[items.length - 1];
    return { items, nextCursor: rows.length > options.limit && last ? encodeCursor(last) : null };
  }

  /**
   * Moves a media to `status` unless it is already terminal (a late retry never resurrects a
   * finished media). Only `DELETED` may follow a terminal status, and a compensated outcome
   * (FAILED_STATUSES) may follow READY: the upload workflow writes one only after it removed
   * everything stored, so a READY before it (a cancellation that reached the workflow as its
   * READY write completed) would name files that are gone. Returns the media's type when the
   * row changed (metrics count outcomes by type), null when it did not.
   */
  async setStatus(id: string, status: MediaStatus, failureReason: string | null = null): Promise<MediaType | null> {
    const compensated = FAILED_STATUSES.includes(status);
    // A deletion under way (DELETING) is never undone by a late upload step either, except
    // that an upload a DELETE cancelled (claimCancellation) ends with its compensated outcome.
    const from = status === 'DELETED' ? ['DELETED'] : [...TERMINAL_STATUSES.filter((s) => !(s === 'READY' && compensated)), 'DELETING'];
    const result: [Array<{ media_type: MediaType }>, number] = await this.dataSource.query(
      `UPDATE media SET status = $2, failure_reason = $3, updated_at = now()
        WHERE id = $1 AND status <> $2
          AND (NOT (status = ANY($4::text[])) OR ($5 AND status = 'DELETING' AND metadata->>'${CANCEL_REQUESTED}' = 'true'))
        RETURNING media_type`,
      [id, status, failureReason === null ? null : sanitizeText(failureReason), from, compensated],
    );
    const changed = result[0][0]?.media_type ?? null;
    if (changed) await this.notifyChange(id);
    return changed;
  }

  /**
   * The owner's DELETE of an upload in flight: marks it DELETING (reads show the deletion at
   * once, and no upload step moves it on) with the private metadata flag CANCEL_REQUESTED, so
   * that the outcome its workflow writes after compensating (CANCELLED) ends it. False when the
   * media is no longer in flight (a finished media is deleted through claimForDeletion).
   */
  async claimCancellation(id: string): Promise<boolean> {
    const [rows]: [Array<{ id: string }>, number] = await this.dataSource.query(
      `UPDATE media SET status = 'DELETING', metadata = metadata || jsonb_build_object('${CANCEL_REQUESTED}', true), updated_at = now()
        WHERE id = $1 AND status = ANY($2::text[]) RETURNING id`,
      [id, UPLOADING_STATUSES],
    );
    if (!rows[0]) return false;
    await this.notifyChange(id);
    return true;
  }

  /** Tells the SSE streams of `id` to look again (a status change, or playback that became available). */
  async notifyChange(id: string): Promise<void> {
    await this.dataSource.query('SELECT pg_notify($1, $2)', [STATUS_CHANNEL, id]);
  }

  /** How many media are in each of `statuses` (metrics: uploads in flight). */
  async countByStatus(statuses: readonly MediaStatus[]): Promise<Partial<Record<MediaStatus, number>>> {
    const rows: Array<{ status: MediaStatus; count: string }> = await this.dataSource.query(
      `SELECT status, count(*) AS count FROM media WHERE status = ANY($1::text[]) GROUP BY status`,
      [statuses],
    );
    return Object.fromEntries(rows.map((r) => [r.status, Number(r.count)]));
  }

  /**
   * Shallow-merges fields into the media's metadata. Every metadata write goes through here and
   * is sanitized here (services/shared/sanitize.ts): EXIF, XMP and ffprobe text is untrusted.
   */
  async mergeMetadata(id: string, patch: Record<string, unknown>): Promise<void> {
    await this.dataSource.query(`UPDATE media SET metadata = metadata || $2::jsonb, updated_at = now() WHERE id = $1`, [id, JSON.stringify(sanitizeForReadModel(patch))]);
  }

  async replaceRenditions(mediaId: string, renditions: NewRendition[]): Promise<void> {
    await this.dataSource.transaction(async (manager) => {
      const repo = manager.getRepository(RenditionEntity);
      await repo.delete({ mediaId });
      if (renditions.length) await repo.insert(renditions);
    });
  }

  async renditions(mediaId: string): Promise<RenditionRow[]> {
    return this.dataSource.getRepository(RenditionEntity).find({ where: { mediaId }, order: { kind: 'ASC', width: 'ASC' } });
  }

  async deleteRenditions(mediaId: string): Promise<void> {
    await this.dataSource.getRepository(RenditionEntity).delete({ mediaId });
  }

  /** Stores (or replaces, on a retry) the extracted text of a document. */
  async putText(mediaId: string, text: MediaText): Promise<void> {
    await this.dataSource.query(
      `INSERT INTO media_texts (media_id, text, size_bytes, truncated, pages_read) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (media_id) DO UPDATE SET text = EXCLUDED.text, size_bytes = EXCLUDED.size_bytes, truncated = EXCLUDED.truncated, pages_read = EXCLUDED.pages_read, created_at = now()`,
      [mediaId, text.text, Buffer.byteLength(text.text, 'utf8'), text.truncated, text.pagesRead],
    );
  }

  /** The extracted text of a document, if any was stored. */
  async findText(mediaId: string): Promise<(MediaText & { sizeBytes: number }) | null> {
    const rows: Array<{ text: string; size_bytes: number; truncated: boolean; pages_read: number }> = await this.dataSource.query(
      'SELECT text, size_bytes, truncated, pages_read FROM media_texts WHERE media_id = $1',
      [mediaId],
    );
    const row = rows[0];
    return row ? { text: row.text, sizeBytes: row.size_bytes, truncated: row.truncated, pagesRead: row.pages_read } : null;
  }

  async deleteText(mediaId: string): Promise<void> {
    await this.dataSource.query('DELETE FROM media_texts WHERE media_id = $1', [mediaId]);
  }

  /**
   * Attaches the user's READY media to `owner`; one owner at a time. With
   * `replaceType`, other READY media of that type attached to the same owner is detached and
   * returned so the caller deletes it (a profile has one profile image). Attaches to one owner
   * are serialized, so two concurrent replacements leave exactly one attached.
   */
  async attach(id: string, scope: Pick<Scope, 'tenantId' | 'userId'>, owner: Owner, options: { replaceType?: MediaType } = {}): Promise<AttachOutcome> {
    const { tenantId, userId } = scope;
    return this.dataSource.transaction(async (manager) => {
      const rows: MediaRow[] = await manager.getRepository(MediaEntity).find({ where: { id, userId, tenantId }, lock: { mode: 'pessimistic_write' } });
      const row = rows[0];
      if (!row) return { outcome: 'not_found' };
      if (row.ownerType === owner.ownerType && row.ownerId === owner.ownerId) return { outcome: 'unchanged', row, detached: [] };
      if (row.status !== 'READY') return { outcome: 'not_ready', row };
      if (row.ownerType !== null) return { outcome: 'attached_elsewhere', row };
      // Owners are the caller's own names: one user's attach never touches another user's media.
      await manager.query('SELECT pg_advisory_xact_lock(hashtext($1))', [JSON.stringify([tenantId, userId, owner.ownerType, owner.ownerId])]);
      let detached: MediaRow[] = [];
      if (options.replaceType) {
        // typeorm answers an UPDATE … RETURNING with [rows, affected].
        const [previous]: [Array<{ id: string }>, number] = await manager.query(
          `UPDATE media SET owner_type = NULL, owner_id = NULL, attached_at = NULL, updated_at = now()
            WHERE user_id = $5 AND tenant_id = $6 AND owner_type = $1 AND owner_id = $2 AND media_type = $3 AND id <> $4 RETURNING id`,
          [owner.ownerType, owner.ownerId, options.replaceType, id, userId, tenantId],
        );
        detached = previous.length ? await manager.getRepository(MediaEntity).findBy(previous.map((p) => ({ id: p.id }))) : [];
      }
      await manager.query(`UPDATE media SET owner_type = $2, owner_id = $3, attached_at = now(), updated_at = now() WHERE id = $1`, [id, owner.ownerType, owner.ownerId]);
      const attached = await manager.getRepository(MediaEntity).findOneByOrFail({ id });
      return { outcome: 'attached', row: attached, detached };
    });
  }

  /** Detaches the user's media; detaching unattached media changes nothing. Null when not found. */
  async detach(id: string, scope: Pick<Scope, 'tenantId' | 'userId'>): Promise<MediaRow | null> {
    await this.dataSource.query(
      `UPDATE media SET owner_type = NULL, owner_id = NULL, attached_at = NULL, updated_at = now()
        WHERE id = $1 AND user_id = $2 AND tenant_id = $3 AND owner_type IS NOT NULL`,
      [id, scope.userId, scope.tenantId],
    );
    return this.findOwned(id, scope);
  }

  /**
   * One page of media a cleanup rule selects, oldest change first; `after` is the previous
   * page's last `{updatedAt, id}` so a row that is skipped is never fetched again.
   */
  async cleanupCandidates(rule: DeletionRule, limit: number, after?: { updatedAt: string; id: string }): Promise<Array<{ id: string; updatedAt: string }>> {
    const { sql, params } = ruleCondition(rule, 1);
    const keyset = after ? ` AND (updated_at, id) > ($${params.length + 1}::timestamptz, $${params.length + 2}::uuid)` : '';
    // updated_at travels as text: a JS Date would cut PostgreSQL's microseconds and repeat rows.
    const rows: Array<{ id: string; updated_at: string }> = await this.dataSource.query(
      `SELECT id, updated_at::text AS updated_at FROM media WHERE ${sql}${keyset} ORDER BY updated_at, id LIMIT ${Math.trunc(limit)}`,
      after ? [...params, after.updatedAt, after.id] : params,
    );
    return rows.map((r) => ({ id: r.id, updatedAt: r.updated_at }));
  }

  /**
   * Marks the media DELETING (and detached) if the rule still selects it, or keeps it as it is
   * if it is DELETING or DELETED already (a retry finishing its storage work). The API claims
   * on DELETE so that reads show the deletion at once; the deletion workflow claims again.
   * Returns the row to purge and whether this call made the change, or null when the rule no
   * longer applies.
   */
  async claimForDeletion(id: string, rule: DeletionRule): Promise<{ row: MediaRow; claimedNow: boolean } | null> {
    const { sql, params } = ruleCondition(rule, 2);
    // The row lock makes a second claimer wait and then see DELETING as the previous status.
    const [claimed]: [Array<{ previous_status: MediaStatus }>, number] = await this.dataSource.query(
      `UPDATE media SET status = CASE WHEN status = 'DELETED' THEN 'DELETED' ELSE 'DELETING' END,
              owner_type = NULL, owner_id = NULL, attached_at = NULL,
              updated_at = CASE WHEN status IN ('DELETING', 'DELETED') THEN updated_at ELSE now() END
         FROM (SELECT id AS claimed_id, status AS previous_status FROM media WHERE id = $1 FOR UPDATE) previous
        WHERE media.id = previous.claimed_id AND (status IN ('DELETING', 'DELETED') OR (${sql})) RETURNING previous.previous_status`,
      [id, ...params],
    );
    if (!claimed[0]) return null;
    const claimedNow = !['DELETING', 'DELETED'].includes(claimed[0].previous_status);
    if (claimedNow) await this.dataSource.query('SELECT pg_notify($1, $2)', [STATUS_CHANNEL, id]);
    return { row: (await this.findById(id))!, claimedNow };
  }

  /**
   * Storage of a claimed media is clean: DELETED, with `purgedAt` recorded. True when this call
   * made it DELETED (two deletions at once report it once).
   */
  async finishDeletion(id: string): Promise<boolean> {
    const [finished]: [Array<{ previous_status: MediaStatus }>, number] = await this.dataSource.query(
      `UPDATE media SET status = 'DELETED', metadata = metadata || jsonb_build_object('purgedAt', $2::text), updated_at = now()
         FROM (SELECT id AS claimed_id, status AS previous_status FROM media WHERE id = $1 FOR UPDATE) previous
        WHERE media.id = previous.claimed_id AND status IN ('DELETING', 'DELETED') RETURNING previous.previous_status`,
      [id, new Date().toISOString()],
    );
    const deletedNow = finished[0]?.previous_status === 'DELETING';
    if (deletedNow) await this.dataSource.query('SELECT pg_notify($1, $2)', [STATUS_CHANNEL, id]);
    return deletedNow;
  }

  /**
   * Bytes the user (in a tenant), or the whole tenant, stores or is about to: originals of uploads in progress and of READY media,
   * plus the derived objects of READY media. Failed, cancelled and deleted media hold nothing.
   */
  async storageUsed(of: { tenantId: string; userId?: string }, within: Queryable = this.dataSource): Promise<number> {
    // Without a user: the whole tenant's (TENANT_STORAGE_QUOTA_BYTES).
    const [row]: Array<{ used: string }> = await within.query(
      `SELECT (SELECT COALESCE(SUM(file_size), 0) FROM media WHERE tenant_id = $1 AND ($3::text IS NULL OR user_id = $3) AND status = ANY($2::text[]))
            + (SELECT COALESCE(SUM(r.size_bytes), 0) FROM renditions r JOIN media m ON m.id = r.media_id
                WHERE m.tenant_id = $1 AND ($3::text IS NULL OR m.user_id = $3) AND m.status = 'READY') AS used`,
      [of.tenantId, [...UPLOADING_STATUSES, 'READY'], of.userId ?? null],
    );
    return Number(row?.used ?? 0);
  }

  /**
   * Which of these incoming storage keys (or multipart upload ids) belong to an upload still
   * in progress, i.e. one whose workflow owns them.
   */
  async stillInProgress(column: 'storage_key' | 'upload_id', values: string[]): Promise<Set<string>> {
    if (!values.length) return new Set();
    const rows: Array<Record<typeof column, string>> = await this.dataSource.query(
      `SELECT ${column} FROM media WHERE ${column} = ANY($1::text[]) AND status = ANY($2::text[])`,
      [values, UPLOADING_STATUSES],
    );
    return new Set(rows.map((r) => r[column]));
  }
}

function encodeCursor(row: MediaRow): string {
  return Buffer.from(`${row.createdAt.toISOString()}|${row.id}`).toString('base64url');
}

export class InvalidCursorError extends Error {}

function decodeCursor(cursor: string): [Date, string] {
  const [createdAt, id] = Buffer.from(cursor, 'base64url').toString().split('|');
  const date = new Date(createdAt ?? '');
  if (!id || Number.isNaN(date.getTime()) || !/^[0-9a-f-]{36}$/.test(id)) throw new InvalidCursorError('invalid cursor');
  return [date, id];
}
