import type { Db } from 'mongodb';
import { compileFilter, parseSearch, SearchParameterRegistry, type CompileContext } from '../../../src/search';
import { onElement } from '../../../src/search/compile/element';
import { splitEscaped, unescapeValue } from '../../../src/search/parse';
import { FhirError } from '../../../src/fhir/outcome';

const registry = new SearchParameterRegistry();
/** Parameters that need no database (no chains, _has or :in), so a Db is never touched. */
const ctx = (lenient = false): CompileContext => ({
  db: {} as Db,
  registry,
  baseUrl: 'http://x/fhir',
  now: new Date('2024-06-01T00:00:00Z'),
  lenient,
  ignored: [],
  elemMatch: true,
});
const compile = (type: string, query: string, c = ctx()) =>
  compileFilter(c, type, parseSearch(new URLSearchParams(query)).params);

describe('query compilation', () => {
  it('compiles token, reference and string searches to one-field conditions', async () => {
    expect(await compile('MedicationRequest', 'patient=Patient/1&status=active,on-hold')).toEqual({
      $and: [
        { deleted: { $ne: true } },
        { 'sp.patient.r': 'Patient/1' },
        { 'sp.status.c': { $in: ['active', 'on-hold'] } },
      ],
    });
    expect(await compile('Patient', 'family=Mül')).toEqual({
      $and: [{ deleted: { $ne: true } }, { 'sp.family.n': { $regex: '^mul' } }],
    });
  });

  it('compiles date eq to a same-value range condition, $elemMatch or the single-value form', async () => {
    const filter = await compile('Patient', 'birthdate=2024-03');
    const lo = new Date('2024-03-01T00:00:00Z');
    const hi = new Date('2024-04-01T00:00:00Z');
    expect(filter.$and[1]).toEqual({
      $or: [
        { 'sp.birthdate.one': true, 'sp.birthdate.lo': { $gte: lo }, 'sp.birthdate.hi': { $lte: hi } },
        { 'sp.birthdate': { $elemMatch: { lo: { $gte: lo }, hi: { $lte: hi } } } },
      ],
    });
  });

  it('uses positional paths where the engine lacks $elemMatch on sub-documents', () => {
    const filter = onElement('sp.x', { lo: { $gte: 1 }, hi: { $lte: 2 } }, false);
    expect(filter.$or).toHaveLength(13);
    expect(filter.$or[1]).toEqual({ 'sp.x.0.lo': { $gte: 1 }, 'sp.x.0.hi': { $lte: 2 } });
  });

  it('negates :not including resources without a value', async () => {
    const filter = await compile('Observation', 'status:not=final');
    expect(filter.$and[1]).toEqual({ $nor: [{ 'sp.status.c': 'final' }] });
  });

  it('maps _lastUpdated onto ts, shifting the exclusive end', async () => {
    const filter = await compile('Patient', '_lastUpdated=2024-05-01');
    expect(filter.$and[1]).toEqual({
      ts: { $gte: new Date('2024-05-01T00:00:00Z'), $lte: new Date('2024-05-01T23:59:59.999Z') },
    });
  });

  it('throws 400 for unknown parameters, or records them when lenient', async () => {
    await expect(compile('Patient', 'nope=1')).rejects.toBeInstanceOf(FhirError);
    const c = ctx(true);
    await compile('Patient', 'nope=1', c);
    expect(c.ignored.map((i) => i.name)).toEqual(['nope']);
  });

  it('splits on unescaped separators only', () => {
    expect(splitEscaped('a\\,b,c', ',')).toEqual(['a\\,b', 'c']);
    expect(unescapeValue('a\\,b\\$c\\|d')).toEqual('a,b$c|d');
  });

  it('parses result parameters', () => {
    const parsed = parseSearch(
      new URLSearchParams('_sort=-date,status&_count=5&_include:iterate=MedicationRequest:medication&_summary=count'),
    );
    expect(parsed.sort).toEqual([
      { code: 'date', descending: true },
      { code: 'status', descending: false },
    ]);
    expect(parsed.count).toBe(5);
    expect(parsed.includes[0]).toMatchObject({ sourceType: 'MedicationRequest', param: 'medication', iterate: true });
    expect(parsed.summary).toBe('count');
  });
});
