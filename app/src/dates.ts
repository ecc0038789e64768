/** Calendar dates as the API writes them (YYYY-MM-DD), in UTC so no time zone shifts a day. */

const DAY_MS = 86_400_000;

export function today(): string {
  return new Date().toISOString().slice(0, 10);
}

export function toDate(day: string): Date {
  return new Date(`${day.slice(0, 10)}T00:00:00Z`);
}

export function addDays(day: string, days: number): string {
  return new Date(toDate(day).getTime() + days * DAY_MS).toISOString().slice(0, 10);
}

export function daysBetween(from: string, to: string): number {
  return Math.round((toDate(to).getTime() - toDate(from).getTime()) / DAY_MS);
}

export function isDay(value: string | null | undefined): value is string {
  return !!value && /^\d{4}-\d{2}-\d{2}$/.test(value) && !Number.isNaN(toDate(value).getTime());
}

/** The review window: `months` months ending on the review date (12 months = 365 days). */
export function windowStart(date: string, months: number): string {
  return addDays(date, -Math.round((months * 365) / 12) + 1);
}
