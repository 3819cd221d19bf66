import { parsePrometheus, sumBy } from '../../bench/prometheus';

const text = `# HELP action Actions
# TYPE action counter
action{action_type="grpc_StartWorkflowExecution",namespace="default"} 3
action{action_type="command_StartTimer",namespace="default"} 2
action{action_type="grpc_StartWorkflowExecution",namespace="temporal_system"} 7
state_transition_count_count{namespace="default",operation="WorkflowContext"} 1.5e+01
SeaweedFS_s3_request_total{bucket="b",code="200",type="PUT"} 4
SeaweedFS_s3_request_total{bucket="b",code="404",type="PUT"} 1
up 1
`;

describe('parsePrometheus and sumBy', () => {
  const samples = parsePrometheus(text);

  it('reads names, labels and values and skips comments', () => {
    expect(samples).toHaveLength(7);
    expect(samples[0]).toEqual({ name: 'action', labels: { action_type: 'grpc_StartWorkflowExecution', namespace: 'default' }, value: 3 });
    expect(samples.find((s) => s.name === 'state_transition_count_count')?.value).toBe(15);
    expect(samples.at(-1)).toEqual({ name: 'up', labels: {}, value: 1 });
  });

  it('sums the samples of one name that match the labels, grouped by a label', () => {
    expect(sumBy(samples, 'action', { namespace: 'default' }).get('')).toBe(5);
    expect([...sumBy(samples, 'action', {}, 'namespace')]).toEqual([['default', 5], ['temporal_system', 7]]);
    expect(sumBy(samples, 'SeaweedFS_s3_request_total', {}, 'type').get('PUT')).toBe(5);
  });
});
