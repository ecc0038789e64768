import type { Bundle, Parameters, ParametersParameter, Resource } from '@medplum/fhirtypes';
import { sensitiveCodesOf } from '../auth/labels';
import { compartmentsOf } from '../fhir/compartments';
import type { FhirRequest, FhirResponse } from '../fhir/request';
import type { Interaction } from '../rest/context';
import type { CurrentDocument } from '../store/documents';
import type { TouchedResource } from './balp';

/** What an interaction touched: the resources it showed or wrote, their patients and their labels. */
export interface Touched {
  resources: TouchedResource[];
  patients: string[];
  labels: string[];
  query?: string;
}

const PATIENT_ID = /^(?:Patient\/)?([A-Za-z0-9\-.]{1,64})$/;
/** Search parameters whose value names the patient a search is about (BALP "patient specific" query). */
const PATIENT_PARAMETERS = new Set(['patient', 'subject', 'beneficiary']);

/** Accumulates touched things without repeats; cheap enough for every entry of a searchset. */
class Collector {
  readonly resources: TouchedResource[] = [];
  private readonly patients = new Set<string>();
  private readonly labels = new Set<string>();

  resource(resource: TouchedResource): void {
    this.resources.push(resource);
    for (const label of resource.labels) this.labels.add(label);
  }

  patient(reference: string): void {
    this.patients.add(reference);
  }

  /** A resource shown or written: its patients (stored compartments when known) and its labels. */
  content(resource: Resource, compartments?: string[]): void {
    for (const patient of compartments ?? compartmentsOf(resource)) this.patients.add(patient);
    for (const label of sensitiveCodesOf(resource)) this.labels.add(label);
  }

  result(query?: string): Touched {
    return { resources: this.resources, patients: [...this.patients], labels: [...this.labels], query };
  }
}

function isResource(value: unknown): value is Resource {
  return typeof value === 'object' && value !== null && typeof (value as Resource).resourceType === 'string';
}

function versionOf(resource: Resource): number | undefined {
  const version = Number(resource.meta?.versionId);
  return Number.isInteger(version) && version > 0 ? version : undefined;
}

/** The resources a response carries: the body, a Bundle's entries, a Parameters' resources. */
function shownResources(body: Resource | undefined): Resource[] {
  if (!body || body.resourceType === 'OperationOutcome') return [];
  if (body.resourceType === 'Bundle') {
    return ((body as Bundle).entry ?? []).flatMap((e) =>
      isResource(e?.resource) && e.resource.resourceType !== 'OperationOutcome' ? [e.resource] : [],
    );
  }
  if (body.resourceType === 'Parameters') {
    const found: Resource[] = [];
    const walk = (parameters: ParametersParameter[] | undefined, depth: number) => {
      if (!Array.isArray(parameters) || depth > 4) return;
      for (const p of parameters) {
        if (isResource(p?.resource)) found.push(...shownResources(p.resource));
        walk(p?.part, depth + 1);
      }
    };
    walk((body as Parameters).parameter, 0);
    return found;
  }
  return [body];
}

/** The request line as BALP records a query: method, path and query string, then a form body. */
export function rawRequest(request: FhirRequest): string {
  const query = new URLSearchParams(request.query).toString();
  const line = `${request.method} ${request.path}${query ? `?${query}` : ''}`;
  const extra: string[] = [];
  if (request.headers.ifNoneExist !== undefined) extra.push(`If-None-Exist: ${request.headers.ifNoneExist}`);
  if (request.body instanceof URLSearchParams) extra.push('', request.body.toString());
  return [line, ...extra].join('\n');
}

/** Patients a search names in its compartment or its patient parameters, found or not. */
function queriedPatients(request: FhirRequest, interaction: Interaction, into: Collector): void {
  if (interaction.compartment?.type === 'Patient') into.patient(`Patient/${interaction.compartment.id}`);
  const params = [...request.query, ...(request.body instanceof URLSearchParams ? request.body.entries() : [])];
  for (const [name, value] of params) {
    const base = name.split(':')[0];
    const isPatient = PATIENT_PARAMETERS.has(base) || (base === '_id' && interaction.resourceType === 'Patient');
    if (!isPatient || name.includes('.')) continue;
    for (const one of value.split(',')) {
      const id = PATIENT_ID.exec(one.trim())?.[1];
      if (id && (base !== 'subject' || one.startsWith('Patient/'))) into.patient(`Patient/${id}`);
    }
  }
}

const READS = new Set<Interaction['kind']>(['read', 'vread']);
const QUERIES = new Set<Interaction['kind']>([
  'search-type',
  'search-system',
  'history-instance',
  'history-type',
  'history-system',
]);

/**
 * What an interaction touched, from what its answer already holds (no database reads): the versions
 * it wrote, the resources it shows (their compartments computed from their content), and for queries
 * the patients the query names. A refused or failed interaction names what it was aimed at.
 */
export function touchedBy(
  request: FhirRequest,
  interaction: Interaction,
  response: FhirResponse | undefined,
  written: { type: string; doc: CurrentDocument }[] = request.written ?? [],
): Touched {
  const into = new Collector();
  const { kind, resourceType: type, id } = interaction;
  for (const { type: writtenType, doc } of written) {
    into.resource({ type: writtenType, id: doc._id, version: doc.v, labels: sensitiveCodesOf(doc.resource) });
    into.content(doc.resource, doc.compartments);
  }
  const shown = shownResources(response?.body);
  if (QUERIES.has(kind)) {
    if (kind === 'history-instance' && type && id) into.resource({ type, id, labels: [] });
    for (const resource of shown) into.content(resource);
    queriedPatients(request, interaction, into);
    return into.result(rawRequest(request));
  }
  if (!written.length) {
    const [resource] = shown;
    if (READS.has(kind) || kind === 'create' || kind === 'update' || kind === 'patch') {
      if (resource && resource.resourceType === type && typeof resource.id === 'string') {
        const labels = sensitiveCodesOf(resource);
        into.resource({ type, id: resource.id, version: versionOf(resource), labels });
        into.content(resource);
      } else {
        const vid = kind === 'vread' ? Number(request.path.split('/').pop()) : undefined;
        if (type && id)
          into.resource({ type, id, ...(vid && Number.isInteger(vid) ? { version: vid } : {}), labels: [] });
        // A refused write names the patients of the content it tried to store (the client's claim).
        if (isResource(request.body) && request.body.resourceType === type) {
          try {
            into.content(request.body);
          } catch {
            // Content the server refused may be any shape; the attempt is audited without its patients.
          }
        }
      }
    } else if (type && id) {
      into.resource({ type, id, labels: [] });
    }
  }
  if (kind === 'operation') {
    if (type === 'Patient' && id) into.patient(`Patient/${id}`);
    for (const resource of shown) into.content(resource);
  }
  const conditional = !id && (kind === 'update' || kind === 'delete' || kind === 'patch');
  const query = conditional || request.headers.ifNoneExist !== undefined || kind === 'operation';
  return into.result(query ? rawRequest(request) : undefined);
}
