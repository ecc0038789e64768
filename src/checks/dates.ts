/**
 * Calendar-day arithmetic for the checks. Adherence is counted in whole days (PQA counts a fill's
 * days from its fill date), so every date is reduced to its calendar day and handled as an integer
 * day number (days since 1970-01-01, UTC). Time zones are deliberately ignored: a dispense handed
 * over at 23:30 local time on the 3rd belongs to the 3rd, which is the date part of its FHIR value.
 */

const MS_PER_DAY = 86_400_000;

/** Day number of a FHIR date or dateTime (its first 10 characters); undefined if not a date. */
export function toDay(value: string | undefined): number | undefined {
  if (!value || value.length < 4) return undefined;
  const y = Number(value.slice(0, 4));
  const m = value.length >= 7 ? Number(value.slice(5, 7)) : 1;
  const d = value.length >= 10 ? Number(value.slice(8, 10)) : 1;
  if (!Number.isInteger(y) || !Number.isInteger(m) || !Number.isInteger(d)) return undefined;
  const ms = Date.UTC(y, m - 1, d);
  return Number.isNaN(ms) ? undefined : Math.floor(ms / MS_PER_DAY);
}

/** FHIR date (YYYY-MM-DD) of a day number. */
export function fromDay(day: number): string {
  return new Date(day * MS_PER_DAY).toISOString().slice(0, 10);
}

/** True when value is a valid calendar date YYYY-MM-DD (used to reject bad review dates). */
export function isIsoDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const day = toDay(value);
  return day !== undefined && fromDay(day) === value;
}

/** Converts a FHIR Duration/Quantity with a time unit to days (0 when the unit is not a time unit). */
export function durationToDays(value: number | undefined, unit: string | undefined): number {
  if (value === undefined) return 0;
  switch (unit) {
    case 'd':
    case 'day':
    case 'days':
      return value;
    case 'wk':
    case 'week':
    case 'weeks':
      return value * 7;
    case 'mo':
    case 'month':
    case 'months':
      return value * 30;
    case 'a':
    case 'year':
    case 'years':
      return value * 365;
    case 'h':
    case 'hour':
    case 'hours':
      return value / 24;
    default:
      return 0;
  }
}
