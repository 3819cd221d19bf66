/**
 * Preloaded into the API child process by the memory section (`node --import tsx --import
 * ./bench/memory-probe.ts`): answers `{ type: 'memory', gc? }` over the IPC channel with
 * process.memoryUsage(), after a full GC when asked (the child runs with --expose-gc).
 */
interface MemoryRequest {
  type: 'memory';
  gc?: boolean;
}

if (process.send) {
  process.on('message', (m: MemoryRequest) => {
    if (m?.type !== 'memory') return;
    if (m.gc) (globalThis as { gc?: () => void }).gc?.();
    process.send!({ type: 'memory', usage: process.memoryUsage() });
  });
  // The probe must not keep the API alive on its own.
  process.channel?.unref();
}

export {};
