import { databaseReadiness } from '../../services/api/readiness';

/** The database rule of /readyz, on a clock the test sets: unready only after 30 s of failures in a row. */
describe('databaseReadiness', () => {
  const windowMs = 30_000;

  it('stays ready on the first failure after a long quiet spell without checks', () => {
    const ready = databaseReadiness(windowMs);
    expect(ready(true, 0)).toBe(true);
    // No probe for 35 s, then the database stalls: one failure is a blip, not an outage.
    expect(ready(false, 35_000)).toBe(true);
    expect(ready(false, 45_000)).toBe(true);
  });

  it('goes unready once checks have failed for the whole window, and stays so while they fail', () => {
    const ready = databaseReadiness(windowMs);
    expect(ready(false, 1_000)).toBe(true);
    expect(ready(false, 30_999)).toBe(true);
    expect(ready(false, 31_000)).toBe(false);
    expect(ready(false, 60_000)).toBe(false);
  });

  it('starts a new count when a failure comes after a quiet spell, even if the check before it failed too', () => {
    const ready = databaseReadiness(windowMs);
    // A 3 s blip with one probe in it, then no probe for 35 s, then another blip.
    expect(ready(false, 1_000)).toBe(true);
    expect(ready(false, 36_000)).toBe(true);
    expect(ready(false, 46_000)).toBe(true);
    expect(ready(false, 66_000)).toBe(false);
  });

  it('counts failures from the start again after a success', () => {
    const ready = databaseReadiness(windowMs);
    expect(ready(false, 0)).toBe(true);
    expect(ready(false, 29_000)).toBe(true);
    expect(ready(true, 29_500)).toBe(true);
    expect(ready(false, 30_000)).toBe(true);
    expect(ready(false, 59_999)).toBe(true);
    expect(ready(false, 60_000)).toBe(false);
    expect(ready(true, 61_000)).toBe(true);
    expect(ready(false, 62_000)).toBe(true);
  });
});
