import { EntitySchema, type ValueTransformer } from 'typeorm';
import type { MediaStatus, MediaType } from '../media-types';

/** PostgreSQL bigint arrives as a string; sizes here stay far below 2^53. */
const bigintAsNumber: ValueTransformer = {
  to: (v?: number | null) => v,
  from: (v?: string | null) => (v === null || v === undefined ? v : Number(v)),
};

/** The read model of one uploaded file (SPEC.md §4); Temporal owns the process. */
export interface MediaRow {
  id: string;
  userId: string;
  /** The uploader's tenant (JWT_TENANT_CLAIM); `default` for tokens without one and older rows. */
  tenantId: string;
  /** The project the media was uploaded to; null when it is the user's own. */
  projectId: string | null;
  batchId: string | null;
  mediaType: MediaType;
  fileName: string;
  mimeType: string;
  fileSize: number;
  checksumSha256: string | null;
  status: MediaStatus;
  failureReason: string | null;
  storageKey: string;
  /** S3 multipart upload id; null for a single PUT. */
  uploadId: string | null;
  partSize: number | null;
  partCount: number | null;
  idempotencyKey: string | null;
  workflowId: string;
  expiresAt: Date;
  /** Dimensions, duration, EXIF fields, scan result; public fields only are served. */
  metadata: Record<string, unknown>;
  /** What the media is attached to (e.g. `post` / its id); null while unattached. */
  ownerType: string | null;
  ownerId: string | null;
  attachedAt: Date | null;
  createdAt: Date;
  updatedAt: Date;
}

export interface RenditionRow {
  id: number;
  mediaId: string;
  /** thumbnail | poster | hls */
  kind: string;
  /** e.g. `300.webp`, `poster-150.jpg`, `720p`, `master` */
  label: string;
  width: number | null;
  height: number | null;
  storageKey: string;
  contentType: string;
  sizeBytes: number | null;
}

export interface BatchRow {
  id: string;
  userId: string;
  tenantId: string;
  itemCount: number;
  createdAt: Date;
}

export const MediaEntity = new EntitySchema<MediaRow>({
  name: 'Media',
  tableName: 'media',
  columns: {
    id: { type: 'uuid', primary: true },
    userId: { type: 'text', name: 'user_id' },
    tenantId: { type: 'text', name: 'tenant_id' },
    projectId: { type: 'text', name: 'project_id', nullable: true },
    batchId: { type: 'uuid', name: 'batch_id', nullable: true },
    mediaType: { type: 'text', name: 'media_type' },
    fileName: { type: 'text', name: 'file_name' },
    mimeType: { type: 'text', name: 'mime_type' },
    fileSize: { type: 'bigint', name: 'file_size', transformer: bigintAsNumber },
    checksumSha256: { type: 'text', name: 'checksum_sha256', nullable: true },
    status: { type: 'text' },
    failureReason: { type: 'text', name: 'failure_reason', nullable: true },
    storageKey: { type: 'text', name: 'storage_key' },
    uploadId: { type: 'text', name: 'upload_id', nullable: true },
    partSize: { type: 'integer', name: 'part_size', nullable: true },
    partCount: { type: 'integer', name: 'part_count', nullable: true },
    idempotencyKey: { type: 'text', name: 'idempotency_key', nullable: true },
    workflowId: { type: 'text', name: 'workflow_id' },
    expiresAt: { type: 'timestamptz', name: 'expires_at' },
    metadata: { type: 'jsonb', default: () => "'{}'::jsonb" },
    ownerType: { type: 'text', name: 'owner_type', nullable: true },
    ownerId: { type: 'text', name: 'owner_id', nullable: true },
    attachedAt: { type: 'timestamptz', name: 'attached_at', nullable: true },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
    updatedAt: { type: 'timestamptz', name: 'updated_at', updateDate: true },
  },
});

export const RenditionEntity = new EntitySchema<RenditionRow>({
  name: 'Rendition',
  tableName: 'renditions',
  columns: {
    id: { type: 'integer', primary: true, generated: 'increment' },
    mediaId: { type: 'uuid', name: 'media_id' },
    kind: { type: 'text' },
    label: { type: 'text' },
    width: { type: 'integer', nullable: true },
    height: { type: 'integer', nullable: true },
    storageKey: { type: 'text', name: 'storage_key' },
    contentType: { type: 'text', name: 'content_type' },
    sizeBytes: { type: 'bigint', name: 'size_bytes', nullable: true, transformer: bigintAsNumber },
  },
});

export const BatchEntity = new EntitySchema<BatchRow>({
  name: 'Batch',
  tableName: 'batches',
  columns: {
    id: { type: 'uuid', primary: true },
    userId: { type: 'text', name: 'user_id' },
    tenantId: { type: 'text', name: 'tenant_id' },
    itemCount: { type: 'integer', name: 'item_count' },
    createdAt: { type: 'timestamptz', name: 'created_at', createDate: true },
  },
});
