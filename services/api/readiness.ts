/**
 * Whether a run of failed database checks should take the process out of the load balancer:
 * only once the checks have failed for `windowMs` in a row, counted from the first failure
 * since the last success. Time without checks is no evidence either way, so a first failure
 * after a quiet spell starts the count instead of ending it; a blip never takes the whole
 * fleet out.
 *
 * Returns the recorder: call it with each check's outcome and the time (epoch ms) it came in;
 * it answers whether the database still counts as ready.
 */
export function databaseReadiness(windowMs: number): (ok: boolean, now: number) => boolean {
  let failingSince: number | undefined;
  return (ok, now) => {
    if (ok) failingSince = undefined;
    else failingSince ??= now;
    return failingSince === undefined || now - failingSince < windowMs;
  };
}
