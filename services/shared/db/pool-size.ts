/**
 * Connections one worker process (light or video) holds at most: its activities write a row at a
 * time. The API's pool is DB_POOL_SIZE. docs/capacity.md counts both (scripts/capacity.ts), so
 * the value lives here, apart from the data source and its entities.
 */
export const WORKER_DB_POOL_SIZE = 5;
