import { redactPresignedUrls } from '../../services/shared/logger';
import { failureCode } from '../../services/shared/metrics';
import { parseDuration, stuckQuery, UsageError, workflowIdOf, workflowListUrl } from '../../scripts/ops';

describe('ops command helpers', () => {
  it('parses the --older-than durations and refuses anything else', () => {
    expect(parseDuration('90s')).toBe(90_000);
    expect(parseDuration('30m')).toBe(1_800_000);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1d')).toBe(86_400_000);
    for (const bad of ['', '30', 'm', '1.5h', '-1m', '30 minutes']) expect(() => parseDuration(bad)).toThrow(UsageError);
  });

  it('builds the visibility filter the Web UI accepts from the options given', () => {
    expect(stuckQuery({})).toBe('WorkflowType = "MediaUploadWorkflow" AND ExecutionStatus = "Running"');
    expect(stuckQuery({ status: 'PROCESSING', startedBefore: new Date('2026-01-02T03:04:05.000Z'), owner: 'al"ice', problems: true })).toBe(
      'WorkflowType = "MediaUploadWorkflow" AND ExecutionStatus = "Running" AND MediaStatus = "PROCESSING" AND MediaOwner = "al\\"ice"' +
        ' AND StartTime < "2026-01-02T03:04:05.000Z"' +
        ' AND TemporalReportedProblems IN ("category=WorkflowTaskFailed", "category=WorkflowTaskTimedOut")',
    );
  });

  it('filters by tenant (MediaTenant) beside the owner', () => {
    expect(stuckQuery({ owner: 'u1', tenant: 'ac"me' })).toBe(
      'WorkflowType = "MediaUploadWorkflow" AND ExecutionStatus = "Running" AND MediaOwner = "u1" AND MediaTenant = "ac\\"me"',
    );
  });

  it('takes a media id for its upload workflow and links the filtered Web UI list', () => {
    expect(workflowIdOf('8C2A7E8E-3F0B-4E55-9A51-0B8D1E4C2F10')).toBe('media-upload/8c2a7e8e-3f0b-4e55-9a51-0b8d1e4c2f10');
    expect(workflowIdOf('media-delete/8c2a7e8e-3f0b-4e55-9a51-0b8d1e4c2f10')).toBe('media-delete/8c2a7e8e-3f0b-4e55-9a51-0b8d1e4c2f10');
    expect(workflowListUrl({ TEMPORAL_UI_URL: 'http://localhost:8233/', TEMPORAL_NAMESPACE: 'default' }, 'MediaStatus = "AWAITING_UPLOAD"')).toBe(
      'http://localhost:8233/namespaces/default/workflows?query=MediaStatus%20%3D%20%22AWAITING_UPLOAD%22',
    );
  });
});

describe('observability helpers', () => {
  it('keeps only the bounded code of a failure reason as a metric label', () => {
    expect(failureCode(undefined)).toBe('NONE');
    expect(failureCode('MALWARE: malware found: Eicar-Signature')).toBe('MALWARE');
    expect(failureCode('UPLOAD_EXPIRED')).toBe('UPLOAD_EXPIRED');
    expect(failureCode('Error: something odd at /tmp/x')).toBe('OTHER');
  });

  it('strips the query string of presigned URLs from log and error text', () => {
    const url = 'https://s3.example.com/incoming/post_image/u/1-x.jpg?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AK%2F20260101&X-Amz-Signature=abc123';
    expect(redactPresignedUrls(`${url}: Server returned 403 Forbidden`)).toBe('https://s3.example.com/incoming/post_image/u/1-x.jpg?[redacted]: Server returned 403 Forbidden');
    expect(redactPresignedUrls('GET https://cdn.example.com/a.jpg?w=300 failed')).toBe('GET https://cdn.example.com/a.jpg?w=300 failed');
  });
});
