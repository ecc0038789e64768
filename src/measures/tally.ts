import type { PopulationCode } from './definition';
import type { PatientResult } from './evaluate';

/**
 * The running counts of an evaluation: per group, per population, and per stratum. Plain JSON, so an
 * asynchronous evaluation records it with its cursor and resumes from it after a restart.
 */
export interface PopulationCounts {
  counts: Partial<Record<PopulationCode, number>>;
}

export interface GroupTally extends PopulationCounts {
  /** Patient ids per population, kept for subject-list and subject reports only. */
  subjects?: Partial<Record<PopulationCode, string[]>>;
  /**
   * Per stratifier (in the group's order), the counts of each value met. Arrays rather than maps keyed by
   * value: values are data (a prescriber, a drug name), and stored document keys may not hold dots; an
   * object per stratifier, since FerretDB stores no arrays of arrays.
   */
  strata: { values: { value: string; counts: PopulationCounts['counts'] }[] }[];
}

export interface Tally {
  evaluated: number;
  groups: GroupTally[];
}

export function emptyTally(groups: number, withSubjects: boolean): Tally {
  return {
    evaluated: 0,
    groups: Array.from({ length: groups }, () => ({
      counts: {},
      strata: [],
      ...(withSubjects ? { subjects: {} } : {}),
    })),
  };
}

/** Adds one patient's result (results are added in patient id order, so subject lists come out sorted). */
export function addResult(tally: Tally, result: PatientResult): void {
  tally.evaluated++;
  result.groups.forEach((membership, g) => {
    const group = tally.groups[g];
    for (const code of membership.populations) {
      group.counts[code] = (group.counts[code] ?? 0) + 1;
      if (group.subjects) (group.subjects[code] ??= []).push(result.patient);
      membership.strata.forEach((value, i) => {
        const values = (group.strata[i] ??= { values: [] }).values;
        let stratum = values.find((v) => v.value === value);
        if (!stratum) values.push((stratum = { value, counts: {} }));
        stratum.counts[code] = (stratum.counts[code] ?? 0) + 1;
      });
    }
  });
}
