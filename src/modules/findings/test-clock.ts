import type { Parameters } from '@medplum/fhirtypes';
import { badRequest } from '../../fhir/outcome';
import type { FhirRequest } from '../../fhir/request';
import type { OperationHandler } from '../../rest/context';
import type { FindingsClock } from './clock';

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})$/;

/**
 * POST [base]/$test-clock?date=2026-07-01 (or a Parameters with `date` as valueDate or valueDateTime):
 * only with FINDINGS_CLOCK=test, which production refuses. Moves the findings clock of every process on
 * the database (a date means noon of that day in FINDINGS_TIME_ZONE), runs the daily sweep if that day
 * has not had one, and answers the clock and the queue depth. Tests use it instead of waiting for days.
 */
export function testClockOperation(
  clock: FindingsClock,
  afterMove: () => Promise<{ swept: boolean; queued: number }>,
): OperationHandler {
  return {
    name: 'test-clock',
    levels: ['system'],
    affectsState: true,
    requires: { permissions: ['u'] },
    definition: 'https://meds-fhir.org/fhir/OperationDefinition/test-clock',
    async handle(request) {
      const at = requestedInstant(request, clock.timeZone);
      await clock.set(at);
      const { swept, queued } = await afterMove();
      const body: Parameters = {
        resourceType: 'Parameters',
        parameter: [
          { name: 'now', valueDateTime: clock.now().toISOString() },
          { name: 'today', valueDate: clock.today() },
          { name: 'swept', valueBoolean: swept },
          { name: 'queued', valueInteger: queued },
        ],
      };
      return { status: 200, headers: {}, body };
    },
  };
}

function requestedInstant(request: FhirRequest, timeZone: string): Date {
  let value: string | undefined;
  let where = 'date';
  const body = request.body as Parameters | URLSearchParams | undefined;
  if (body instanceof URLSearchParams) value = body.get('date') ?? undefined;
  else if (body && typeof body === 'object') {
    if (body.resourceType !== 'Parameters' || !Array.isArray(body.parameter)) {
      throw badRequest('The body of $test-clock must be a Parameters resource', 'Parameters');
    }
    const index = body.parameter.findIndex((p) => p?.name === 'date');
    const p = body.parameter[index];
    where = `Parameters.parameter[${index}]`;
    value = p?.valueDate ?? p?.valueDateTime;
  }
  value ??= request.query.find(([name]) => name === 'date')?.[1];
  if (value === undefined) throw badRequest('$test-clock needs a date (YYYY-MM-DD) or dateTime', 'date');
  if (DATE.test(value)) {
    const at = noonIn(value, timeZone);
    if (at) return at;
  } else if (DATE_TIME.test(value) && !Number.isNaN(Date.parse(value))) {
    return new Date(value);
  }
  throw badRequest(`date must be a date (YYYY-MM-DD) or a dateTime with a time zone, got "${value}"`, where);
}

/** Noon of a calendar date in a time zone, as an instant. */
function noonIn(date: string, timeZone: string): Date | undefined {
  const guess = Date.parse(`${date}T12:00:00Z`);
  if (Number.isNaN(guess)) return undefined;
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(guess);
  const get = (type: string) => Number(parts.find((p) => p.type === type)?.value);
  const local = Date.UTC(get('year'), get('month') - 1, get('day'), get('hour'), get('minute'));
  return new Date(guess - (local - guess));
}
