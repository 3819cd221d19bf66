/**
 * Whether a run of failed database checks should take the process out of the load balancer:
 * only once the checks have failed for `windowMs` in a row, counted from the first failure
 * since the last success. Time without checks is no evidence either way: a failure that comes
 * more than `windowMs` after the check before it (a quiet spell, whatever that check said)
 * starts a new count instead of continuing an old one, so a blip never takes the whole fleet
 * out.
 *
 * Returns the recorder: call it with each check's outcome and the time (epoch ms) it came in;
 * it answers whether the database still counts as ready.
 */
export function databaseReadiness(windowMs: number): (ok: boolean, now: number) => boolean {
  let failingSince: number | undefined;
  let lastCheck: number | undefined;
  return (ok, now) => {
    const quietSpell = lastCheck === undefined || now - lastCheck > windowMs;
    lastCheck = now;
    if (ok) failingSince = undefined;
    else if (failingSince === undefined || quietSpell) failingSince = now;
    return failingSince === undefined || now - failingSince < windowMs;
  };
}
