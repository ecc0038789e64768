import type { Resource } from '@medplum/fhirtypes';
import { resolveInternalTypes } from 'fhirpath';
import type { AdherenceEnv } from './adherence';
import type { Expression, SelectPlan, ViewPlan } from './compile';

export type Cell = string | number | boolean | null | Cell[];
export type Row = Record<string, Cell>;

/** Running a view over a resource failed (a column with several values, a where that is not boolean). */
export class ViewRunError extends Error {
  constructor(
    message: string,
    /** The ViewDefinition element at fault. */
    readonly at: string,
  ) {
    super(message);
  }
}

/** What every evaluation of one resource's rows shares beyond %rowIndex (medicationAdherence()'s inputs). */
type Shared = AdherenceEnv;

function evaluate(path: Expression, focus: unknown, rowIndex: number, at: string, shared: Shared): unknown[] {
  try {
    return path(focus, { ...shared, rowIndex });
  } catch (e) {
    throw new ViewRunError(`FHIRPath evaluation failed: ${(e as Error).message}`, at);
  }
}

function cell(value: unknown): Cell {
  const resolved = resolveInternalTypes(value) as unknown;
  if (resolved === undefined) return null;
  if (typeof resolved === 'object' && resolved !== null && !Array.isArray(resolved)) {
    // A complex value (a CodeableConcept, a Reference) travels as its JSON.
    return resolved as unknown as Cell;
  }
  return resolved as Cell;
}

function columnsRow(select: SelectPlan, focus: unknown, rowIndex: number, shared: Shared): Row {
  const row: Row = {};
  for (const column of select.columns) {
    const values = evaluate(column.path, focus, rowIndex, `${column.at}.path`, shared);
    if (column.collection) row[column.name] = values.map(cell);
    else if (values.length > 1) {
      throw new ViewRunError(
        `Column ${column.name} has ${values.length} values for one row; mark it collection: true, or narrow its path`,
        `${column.at}.path`,
      );
    } else row[column.name] = values.length ? cell(values[0]) : null;
  }
  return row;
}

function product(left: Row[], right: Row[]): Row[] {
  const out: Row[] = [];
  for (const l of left) for (const r of right) out.push({ ...l, ...r });
  return out;
}

function nullRow(names: string[]): Row {
  return Object.fromEntries(names.map((n) => [n, null]));
}

/** The rows of one select evaluated at one focus: its columns × each nested select × its unionAll. */
function body(select: SelectPlan, focus: unknown, rowIndex: number, shared: Shared): Row[] {
  let rows = [columnsRow(select, focus, rowIndex, shared)];
  for (const nested of select.selects) {
    rows = product(rows, rowsOf(nested, focus, rowIndex, shared));
    if (!rows.length) return rows;
  }
  if (select.unionAll.length) {
    rows = product(
      rows,
      select.unionAll.flatMap((branch) => rowsOf(branch, focus, rowIndex, shared)),
    );
  }
  return rows;
}

/** Depth first, each node before its descendants: the order `repeat` lists them in. */
function repeated(paths: Expression[], focus: unknown, at: string, out: unknown[], shared: Shared, depth = 0): void {
  if (depth > 100) throw new ViewRunError('repeat went more than 100 levels deep', at);
  for (const path of paths) {
    for (const child of evaluate(path, focus, 0, at, shared)) {
      out.push(child);
      repeated(paths, child, at, out, shared, depth + 1);
    }
  }
}

function rowsOf(select: SelectPlan, focus: unknown, rowIndex: number, shared: Shared): Row[] {
  let items: unknown[] | undefined;
  if (select.forEach) items = evaluate(select.forEach, focus, rowIndex, `${select.at}.forEach`, shared);
  else if (select.repeat) {
    items = [];
    const paths = select.repeat;
    repeated(paths, focus, `${select.at}.repeat`, items, shared);
  }
  if (!items) return body(select, focus, rowIndex, shared);
  if (!items.length) {
    if (!select.orNull) return [];
    // The row of nulls still has its own %rowIndex (0): its columns are evaluated on an empty focus.
    return [{ ...nullRow(select.names), ...columnsRow(select, [], 0, shared) }];
  }
  return items.flatMap((item, i) => body(select, item, i, shared));
}

/** Whether every `where` of the view holds for the resource (each must be a boolean, or empty). */
function included(view: ViewPlan, resource: Resource, shared: Shared): boolean {
  for (const where of view.where) {
    const values = evaluate(where.path, resource, 0, where.at, shared).map((v) => resolveInternalTypes(v) as unknown);
    if (values.length > 1 || (values.length === 1 && typeof values[0] !== 'boolean')) {
      throw new ViewRunError(
        `A where path must give one boolean, got ${JSON.stringify(values).slice(0, 100)}`,
        where.at,
      );
    }
    if (values[0] !== true) return false;
  }
  return true;
}

/**
 * The rows a view makes of one resource (none when it is of another type or fails a where); `shared`
 * carries what medicationAdherence() computes from, when the run loaded it.
 */
export function viewRows(view: ViewPlan, resource: Resource, shared: Shared = {}): Row[] {
  if (resource.resourceType !== view.resource || !included(view, resource, shared)) return [];
  // The columns in the view's order, whatever order the products built them in.
  return rowsOf(view.select, resource, 0, shared).map((row) =>
    Object.fromEntries(view.names.map((n) => [n, row[n] ?? null])),
  );
}
