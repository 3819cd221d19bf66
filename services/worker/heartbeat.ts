/**
 * The workers' cap on the SDK's heartbeat throttle (WorkerOptions.maxHeartbeatThrottleInterval),
 * in seconds: a cancellation reaches a running activity with the answer to a heartbeat, so a
 * DELETE stops a transcode within seconds instead of 80 % of its 30 s heartbeat timeout. Every
 * heartbeat that reaches the server is a billable Temporal Cloud action: docs/capacity.md
 * counts them with this figure (scripts/capacity-model.ts).
 */
export const MAX_HEARTBEAT_THROTTLE_SECONDS = 2;
