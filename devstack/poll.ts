/**
 * Polls `check` until it gives a value (anything but undefined), every `intervalMs`; throws
 * naming `what` after `timeoutMs`. For eventually consistent things: visibility, deliveries.
 */
export async function until<T>(what: string, check: () => Promise<T | undefined>, options: { timeoutMs?: number; intervalMs?: number } = {}): Promise<T> {
  const { timeoutMs = 60_000, intervalMs = 300 } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`gave up waiting for ${what}`);
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
