/**
 * FHIR date/dateTime/instant parsing into the range of instants a value stands for: "2024-03" is the
 * whole of March 2024 (R4 search, "date"). Values without a time zone are read as UTC (HAPI does the same
 * for search; documented in the README's conformance notes).
 */
const DATE_TIME =
  /^(\d{4})(?:-(\d{2})(?:-(\d{2})(?:T(\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,9}))?)?(Z|[+-]\d{2}:\d{2})?)?)?)?$/;

export interface InstantRange {
  start: Date;
  /** Exclusive. */
  end: Date;
}

export function parseDateRange(value: string): InstantRange | undefined {
  const m = DATE_TIME.exec(value);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac, zone] = m;
  const year = Number(y);
  const month = mo ? Number(mo) - 1 : 0;
  const day = d ? Number(d) : 1;
  if (month > 11 || day < 1 || day > 31) return undefined;
  if (h !== undefined && (Number(h) > 23 || Number(mi) > 59 || (s !== undefined && Number(s) > 59))) return undefined;
  const offsetMinutes =
    zone && zone !== 'Z' ? (zone[0] === '-' ? -1 : 1) * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(4))) : 0;
  const ms = frac ? Number(frac.slice(0, 3).padEnd(3, '0')) : 0;
  const start = new Date(
    Date.UTC(year, month, day, h ? Number(h) : 0, mi ? Number(mi) : 0, s ? Number(s) : 0, ms) - offsetMinutes * 60_000,
  );
  if (d && new Date(Date.UTC(year, month, day)).getUTCDate() !== day) return undefined;
  const end = new Date(start);
  if (!mo) end.setUTCFullYear(year + 1);
  else if (!d) end.setUTCMonth(month + 1);
  else if (h === undefined) end.setUTCDate(day + 1);
  else if (s === undefined) end.setUTCMinutes(end.getUTCMinutes() + 1);
  else if (!frac) end.setUTCSeconds(end.getUTCSeconds() + 1);
  else end.setUTCMilliseconds(end.getUTCMilliseconds() + 1);
  return { start, end };
}
