import type { BundleEntry } from '@medplum/fhirtypes';
import { batchWaves, entryLane, runLimited } from '../../../src/rest/batch-plan';

const post = (url: string, ifNoneExist?: string): BundleEntry => ({
  resource: { resourceType: 'Patient' },
  request: { method: 'POST', url, ...(ifNoneExist ? { ifNoneExist } : {}) },
});
const put = (url: string): BundleEntry => ({ resource: { resourceType: 'Patient' }, request: { method: 'PUT', url } });
const get = (url: string): BundleEntry => ({ request: { method: 'GET', url } });
const del = (url: string): BundleEntry => ({ request: { method: 'DELETE', url } });

describe('entryLane', () => {
  it('gives each plain create its own target, and a conditional create its condition in one spelling', () => {
    expect(entryLane(post('Patient'), 3)).toEqual({ kind: 'write', target: '#3' });
    expect(entryLane(post('Patient', 'identifier=s|1&birthdate=2000'), 0)).toEqual(
      entryLane(post('/Patient', 'birthdate=2000&identifier=s|1'), 1),
    );
  });

  it('names the resource of an instance write, and the condition of a conditional update', () => {
    expect(entryLane(put('Patient/abc'), 0)).toEqual({ kind: 'write', target: 'Patient/abc' });
    expect(entryLane(del('Patient/abc'), 1)).toEqual({ kind: 'write', target: 'Patient/abc' });
    expect(entryLane(put('Patient?identifier=s|1'), 2)).toEqual(entryLane(post('Patient', 'identifier=s|1'), 3));
  });

  it('runs alone what may touch anything or change what later entries mean', () => {
    for (const entry of [
      del('Patient?identifier=s|1'),
      post('Patient/$validate'),
      post(''),
      put('StructureDefinition/x'),
      post('SearchParameter'),
      put('Patient/abc/_history/2'),
      put('patient/abc'),
    ]) {
      expect(entryLane(entry, 0)).toEqual({ kind: 'alone' });
    }
  });
});

describe('batchWaves', () => {
  it('keeps independent writes in one wave and starts a new one at a repeated target', () => {
    const entries = [post('Patient'), put('Patient/a'), put('Patient/b'), put('Patient/a'), post('Patient')];
    expect(batchWaves(entries)).toEqual([
      [0, 1, 2],
      [3, 4],
    ]);
  });

  it('puts reads after the writes listed before them, and writes after the reads', () => {
    const entries = [post('Patient'), get('Patient/a'), get('Patient?name=x'), put('Patient/a'), get('Patient/a')];
    expect(batchWaves(entries)).toEqual([[0], [1, 2], [3], [4]]);
  });

  it('gives an entry that runs alone a wave of its own, between its neighbours', () => {
    const entries = [post('Patient'), put('SearchParameter/x'), post('Patient'), post('Patient')];
    expect(batchWaves(entries)).toEqual([[0], [1], [2, 3]]);
  });

  it('lists every entry exactly once, in order', () => {
    const entries = Array.from(
      { length: 50 },
      (_, i) => [post('Patient'), put(`Patient/p${i % 7}`), get('Patient'), del(`Patient?x=${i}`)][i % 4],
    );
    expect(batchWaves(entries).flat()).toEqual(entries.map((_, i) => i));
  });
});

describe('runLimited', () => {
  it('never runs more than the limit at once, and runs every item', async () => {
    let running = 0;
    let peak = 0;
    const done: number[] = [];
    await runLimited([1, 2, 3, 4, 5, 6, 7], 3, async (n) => {
      running++;
      peak = Math.max(peak, running);
      await new Promise((resolve) => setTimeout(resolve, 5 + (n % 3)));
      done.push(n);
      running--;
    });
    expect(peak).toBe(3);
    expect(done.sort()).toEqual([1, 2, 3, 4, 5, 6, 7]);
  });

  it('lets every task finish before it throws the first failure', async () => {
    const finished: number[] = [];
    const run = runLimited([1, 2, 3, 4], 2, async (n) => {
      await new Promise((resolve) => setTimeout(resolve, n * 3));
      if (n === 1) throw new Error('first');
      finished.push(n);
    });
    await expect(run).rejects.toThrow('first');
    expect(finished.sort()).toEqual([2, 3, 4]);
  });
});
