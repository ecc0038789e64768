import type { Cell, Row } from './rows';
import type { ViewFormat } from './params';

export const CONTENT_TYPES: Record<ViewFormat, string> = {
  json: 'application/json; charset=utf-8',
  ndjson: 'application/x-ndjson; charset=utf-8',
  csv: 'text/csv; charset=utf-8',
};

/** A CSV field (RFC 4180): quoted when it holds a separator, a quote or a line break. */
function csvField(value: Cell): string {
  if (value === null) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * Turns batches of rows into the chunks of one answer: a JSON array, NDJSON lines or CSV records
 * (collection and complex values as JSON text in a CSV field). One chunk per batch, so what is held
 * is one batch's text.
 */
export async function* formatRows(
  batches: AsyncIterable<Row[]>,
  format: ViewFormat,
  names: string[],
  header: boolean,
): AsyncGenerator<string> {
  let first = true;
  if (format === 'json') yield '[';
  if (format === 'csv' && header) yield `${names.map(csvField).join(',')}\r\n`;
  for await (const rows of batches) {
    if (!rows.length) continue;
    let text = '';
    for (const row of rows) {
      if (format === 'csv') text += `${names.map((n) => csvField(row[n] ?? null)).join(',')}\r\n`;
      else if (format === 'ndjson') text += `${JSON.stringify(row)}\n`;
      else {
        text += `${first ? '' : ','}${JSON.stringify(row)}`;
        first = false;
      }
    }
    yield text;
  }
  if (format === 'json') yield ']';
}
