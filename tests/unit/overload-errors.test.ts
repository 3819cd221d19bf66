import { dependencyFault } from '../../services/api/errors';
import { S3TimeoutError } from '../../services/shared/storage';

/** Which SDK errors become which 503 (and which stay a 500): the shapes the SDKs throw. */
describe('dependencyFault', () => {
  it('maps pg pool exhaustion and PostgreSQL overload to OVERLOADED', () => {
    expect(dependencyFault(new Error('timeout exceeded when trying to connect'))?.code).toBe('OVERLOADED');
    expect(dependencyFault(Object.assign(new Error('sorry, too many clients already'), { code: '53300' }))?.code).toBe('OVERLOADED');
  });

  it('maps Temporal, S3 and network faults to DEPENDENCY_UNAVAILABLE, with status 503', () => {
    const faults = [
      Object.assign(new Error('Failed to start Workflow'), { name: 'ServiceError' }),
      new Error('4 DEADLINE_EXCEEDED: Deadline exceeded'),
      Object.assign(new Error('Please reduce your request rate.'), { name: 'SlowDown', $metadata: { httpStatusCode: 503 } }),
      Object.assign(new Error('throttled'), { name: 'Throttled', $metadata: { httpStatusCode: 429 } }),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
      // An S3 call past S3_API_TIMEOUT_MS, and a statement past DB_QUERY_TIMEOUT_MS as TypeORM rethrows it.
      new S3TimeoutError(5000, { cause: Object.assign(new Error('Request aborted'), { name: 'AbortError' }) }),
      Object.assign(new Error('Query read timeout'), { name: 'QueryFailedError', query: 'SELECT 1' }),
    ];
    for (const fault of faults) {
      const mapped = dependencyFault(fault);
      expect(mapped?.code).toBe('DEPENDENCY_UNAVAILABLE');
      expect(mapped?.status).toBe(503);
    }
  });

  it('leaves bugs and client errors alone (they stay 500 or their own 4xx)', () => {
    expect(dependencyFault(new TypeError("Cannot read properties of undefined (reading 'id')"))).toBeUndefined();
    expect(dependencyFault(Object.assign(new Error('NoSuchKey'), { $metadata: { httpStatusCode: 404 } }))).toBeUndefined();
    expect(dependencyFault(Object.assign(new Error('duplicate key'), { code: '23505' }))).toBeUndefined();
    expect(dependencyFault(undefined)).toBeUndefined();
  });
});
