import type { DataSource, EntityManager } from 'typeorm';
import { TERMINAL_STATUSES, type MediaStatus } from '../media-types';
import { BatchEntity, MediaEntity, RenditionEntity, type BatchRow, type MediaRow, type RenditionRow } from './entities';

/** NOTIFY channel carrying a media id whenever its status changes (drives SSE). */
export const STATUS_CHANNEL = 'media_status';

export type NewMedia = Omit<MediaRow, 'updatedAt' | 'metadata' | 'failureReason'>;
export type NewRendition = Omit<RenditionRow, 'id'>;

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

  /** Runs `work` in a transaction that holds the new row; a throw rolls the row back. */
  async insertWithin<T>(row: NewMedia, work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(async (manager) => {
      await manager.getRepository(MediaEntity).insert({ ...row, metadata: {} });
      return work(manager);
    });
  }

  async insertBatch(batch: Omit<BatchRow, 'createdAt'>): Promise<void> {
    await this.dataSource.getRepository(BatchEntity).insert(batch);
  }

  async findBatch(id: string, userId: string): Promise<BatchRow | null> {
    return this.dataSource.getRepository(BatchEntity).findOneBy({ id, userId });
  }

  async findByBatch(batchId: string, userId: string): Promise<MediaRow[]> {
    return this.media.find({ where: { batchId, userId }, order: { createdAt: 'ASC' } });
  }

  async findById(id: string): Promise<MediaRow | null> {
    return this.media.findOneBy({ id });
  }

  /** Another user's media is reported as missing, never as forbidden. */
  async findOwned(id: string, userId: string): Promise<MediaRow | null> {
    return this.media.findOneBy({ id, userId });
  }

  async findByIdempotencyKey(userId: string, idempotencyKey: string): Promise<MediaRow | null> {
    return this.media.findOneBy({ userId, idempotencyKey });
  }

  /** Newest first; the cursor is the last item's `createdAt|id`. */
  async list(userId: string, options: { status?: MediaStatus; cursor?: string; limit: number }): Promise<MediaPage> {
    const qb = this.media.createQueryBuilder('m').where('m.user_id = :userId', { userId });
    if (options.status) qb.andWhere('m.status = :status', { status: options.status });
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
   * finished media). Only `DELETED` may follow a terminal status. Returns whether it changed.
   */
  async setStatus(id: string, status: MediaStatus, failureReason: string | null = null): Promise<boolean> {
    const from = status === 'DELETED' ? ['DELETED'] : TERMINAL_STATUSES;
    const result: [unknown[], number] = await this.dataSource.query(
      `UPDATE media SET status = $2, failure_reason = $3, updated_at = now()
        WHERE id = $1 AND status <> $2 AND NOT (status = ANY($4::text[]))`,
      [id, status, failureReason, from],
    );
    const changed = result[1] > 0;
    if (changed) await this.dataSource.query('SELECT pg_notify($1, $2)', [STATUS_CHANNEL, id]);
    return changed;
  }

  /** Shallow-merges fields into the media's metadata. */
  async mergeMetadata(id: string, patch: Record<string, unknown>): Promise<void> {
    await this.dataSource.query(`UPDATE media SET metadata = metadata || $2::jsonb, updated_at = now() WHERE id = $1`, [id, JSON.stringify(patch)]);
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
