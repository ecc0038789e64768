import type {
  CarePlanActivityDetail,
  CodeableConcept,
  Coding,
  Condition,
  MedicationDispense,
  MedicationRequest,
  MedicationStatement,
  Patient,
  Resource,
} from '@medplum/fhirtypes';
import { fromDay, toDay } from './dates';
import type { MedicationClass, MedicationClassRegistry } from './classes';
import { type MedicationBearing, type MedicationInfo, indexResources, medicationOf, referenceKey } from './medications';
import { type MmeLine, mmeOfQuantity, mmeOfRequest, totalMme } from './mme';
import { type PdcResult, pdcFromSupplies, PDC_THRESHOLD } from './pdc';
import {
  type ClassMatcher,
  type ShiftedSupply,
  countCoveredDays,
  handedOverDay,
  isCoveredOn,
  shiftSupplies,
  suppliesOf,
} from './supplies';

/**
 * Everything the checks may ask about one patient as of the review date, computed lazily and memoised
 * per review: supplies and coverage per class, PDC, what is active, MME, new starts. The FHIRPath domain
 * functions (fhirpath-functions.ts) are thin adapters over this class.
 */

export const OUD_VALUE_SET = 'http://fhir.org/guides/cdc/opioid-cds/ValueSet/opioid-misuse-disorders';

export interface ReviewConfig {
  /** Grace days after the last covered day before a refill is late, per class key (default: the class's, else 7). */
  refillGraceDays?: Record<string, number>;
  defaultRefillGraceDays?: number;
  /** Follow-up window after a new start, per class key; a class with a window gets the new-start check. */
  followUpWindowDays?: Record<string, number>;
  /** A start is new when the class had no fill in this many previous days (default 120). */
  newStartLookbackDays?: number;
  /** Per-check parameter overrides: { 'missed-doses': { lookbackDays: 7 } }. */
  parameters?: Record<string, Record<string, string | number | boolean>>;
  pdcThreshold?: number;
  /** Let prescriptions stand in for missing dispenses (flagged prescription-based). Default true. */
  usePrescriptions?: boolean;
}

export interface NewStart {
  classKey: string;
  classTitle: string;
  start: string;
  windowDays: number;
  windowEnd: string;
  reference: string;
}

const ACTIVE_STATEMENT_RECENT_DAYS = 30;

export class ReviewContext {
  readonly index: Map<string, Resource>;
  readonly dateDay: number;
  readonly periodStartDay: number;
  readonly periodEndDay: number;
  private readonly dispenses: MedicationDispense[] = [];
  private readonly requests: MedicationRequest[] = [];
  private readonly statements: MedicationStatement[] = [];
  private readonly suppliesCache = new Map<string, ShiftedSupply[]>();
  private readonly pdcCache = new Map<string, PdcResult>();
  private readonly activeCache = new Map<string, boolean>();
  private mmeCache?: { total: number; lines: { reference: string; lines: MmeLine[] }[] };

  constructor(
    readonly patient: Patient,
    readonly resources: readonly Resource[],
    readonly date: string,
    readonly periodStart: string,
    readonly periodEnd: string,
    readonly classes: MedicationClassRegistry,
    readonly config: ReviewConfig = {},
  ) {
    this.index = indexResources(resources);
    this.dateDay = toDay(date)!;
    this.periodStartDay = toDay(periodStart)!;
    this.periodEndDay = toDay(periodEnd)!;
    for (const r of resources) {
      if (r.resourceType === 'MedicationDispense') this.dispenses.push(r);
      else if (r.resourceType === 'MedicationRequest') this.requests.push(r);
      else if (r.resourceType === 'MedicationStatement') this.statements.push(r);
    }
  }

  medication(resource: MedicationBearing): MedicationInfo {
    return medicationOf(resource, this.index);
  }

  requireClass(key: string): MedicationClass {
    const cls = this.classes.getClass(key);
    if (!cls) throw new Error(`Unknown medication class ${key}`);
    return cls;
  }

  /**
   * The test of a class key, or of several joined by commas (`'buprenorphine,methadone'`: any of them);
   * a key written `!key` takes its members out (`'opioid-analgesics,!buprenorphine'`). A ValueSet url
   * stands for the products it lists (sacubitril/valsartan within the RAS antagonists).
   */
  matcher(key: string): ClassMatcher {
    const urlOf = (k: string) =>
      this.classes.getClass(k)?.valueSetUrl ?? (this.classes.getValueSet(k) ? k : this.requireClass(k).valueSetUrl);
    const keys = key.split(',').map((k) => k.trim());
    const included = keys.filter((k) => !k.startsWith('!')).map(urlOf);
    const excluded = keys.filter((k) => k.startsWith('!')).map((k) => urlOf(k.slice(1)));
    const keyOf = keys.length === 1 ? (this.classes.getClass(key)?.key ?? key) : key;
    return {
      key: keyOf,
      matches: (m) =>
        included.some((url) => this.classes.containsAny(url, m.codings)) &&
        !excluded.some((url) => this.classes.containsAny(url, m.codings)),
    };
  }

  inClass(resource: MedicationBearing, key: string): boolean {
    return this.matcher(key).matches(this.medication(resource));
  }

  /**
   * Supplies of a class filled inside the review period, shifted among themselves only (PQA ignores
   * fills before the measurement period): what the population measures count.
   */
  periodSupplies(key: string): ShiftedSupply[] {
    const cacheKey = `period:${key}`;
    let s = this.suppliesCache.get(cacheKey);
    if (!s) {
      s = shiftSupplies(
        this.supplies(key).filter((x) => x.fillDay >= this.periodStartDay && x.fillDay <= this.periodEndDay),
      );
      this.suppliesCache.set(cacheKey, s);
    }
    return s;
  }

  /** Distinct fill dates of a class in the period. */
  fillDates(key: string): string[] {
    return [...new Set(this.periodSupplies(key).map((s) => s.fillDay))].map(fromDay);
  }

  /**
   * Distinct dates in the period (up to the review date) on which a dispense of the class was handed over,
   * with or without a days' supply, and with no prescription standing in: the "prescription claims for" a
   * drug that PQA's exclusions count (PDC-DR: insulin), where an insulin dispense often carries no days'
   * supply that fillDates could use.
   */
  dispenseDates(key: string): string[] {
    const cls = this.matcher(key);
    const last = Math.min(this.periodEndDay, this.dateDay);
    const days = new Set<number>();
    for (const d of this.dispenses) {
      const day = handedOverDay(d);
      if (day === undefined || day < this.periodStartDay || day > last) continue;
      if (cls.matches(this.medication(d))) days.add(day);
    }
    return [...days].sort((a, b) => a - b).map(fromDay);
  }

  /** Days supplied by the fills of a class in the period (as dispensed, before any cut at the period end). */
  daysSupplied(key: string): number {
    return this.periodSupplies(key).reduce((sum, s) => sum + s.days, 0);
  }

  /** Days of the period covered by both classes at once (concurrent use). */
  overlapDays(a: string, b: string): number {
    const days = (key: string) => {
      const set = new Set<number>();
      for (const s of this.periodSupplies(key)) {
        for (let d = Math.max(s.startDay, this.periodStartDay); d <= Math.min(s.endDay, this.periodEndDay); d++)
          set.add(d);
      }
      return set;
    };
    const first = days(a);
    let both = 0;
    for (const d of days(b)) if (first.has(d)) both++;
    return both;
  }

  /**
   * The longest treatment episode of a class in the period, in days from its first covered day to its
   * last (cut at the period end), where gaps of up to `maxGap` uncovered days do not end an episode.
   */
  continuousDays(key: string, maxGap: number): number {
    const intervals = this.periodSupplies(key)
      .map((s) => [s.startDay, Math.min(s.endDay, this.periodEndDay)] as const)
      .filter(([a, b]) => a <= b)
      .sort((x, y) => x[0] - y[0]);
    let longest = 0;
    let run: [number, number] | undefined;
    for (const [a, b] of intervals) {
      if (run && a - run[1] - 1 <= maxGap) run[1] = Math.max(run[1], b);
      else run = [a, b];
      longest = Math.max(longest, run[1] - run[0] + 1);
    }
    return longest;
  }

  /** The opioid episode of a class: its first fill in the period to its last covered day, cut at the period end. */
  episode(key: string): { start: number; end: number } | undefined {
    const s = this.periodSupplies(key);
    if (!s.length) return undefined;
    const end = Math.min(Math.max(...s.map((x) => x.endDay)), this.periodEndDay);
    return { start: s[0].fillDay, end };
  }

  /**
   * Average daily MME over the episode of a class (PQA OHD): each fill's MME spread evenly over its days
   * of supply, the days inside the episode summed, divided by the episode's length. Fills whose MME
   * cannot be computed (unknown strength) add nothing.
   */
  averageDailyMme(key: string): number {
    const episode = this.episode(key);
    if (!episode) return 0;
    let total = 0;
    for (const s of this.periodSupplies(key)) {
      const mme = this.supplyMme(s);
      if (mme === undefined) continue;
      const inside = Math.min(s.endDay, episode.end) - Math.max(s.startDay, episode.start) + 1;
      if (inside > 0) total += (mme / s.days) * inside;
    }
    return Math.round((total / (episode.end - episode.start + 1)) * 100) / 100;
  }

  /** MME of one supply: from the dispensed quantity, else the prescription's daily dose times the days. */
  private supplyMme(s: ShiftedSupply): number | undefined {
    const resource = this.index.get(s.reference) as MedicationDispense | MedicationRequest | undefined;
    if (!resource) return undefined;
    if (resource.resourceType === 'MedicationDispense' && resource.quantity?.value !== undefined) {
      const mme = mmeOfQuantity(s.medication, resource.quantity.value, s.days);
      if (mme !== undefined) return mme;
    }
    const request =
      resource.resourceType === 'MedicationRequest'
        ? resource
        : (this.index.get(referenceKey(resource.authorizingPrescription?.[0]?.reference) ?? '') as
            MedicationRequest | undefined);
    if (!request) return undefined;
    const lines = mmeOfRequest(request, s.medication);
    return lines.length ? totalMme(lines) * s.days : undefined;
  }

  /** The latest supply of any of the classes in the period (ties: the last by reference). */
  latestSupply(key: string): ShiftedSupply | undefined {
    const s = this.periodSupplies(key);
    return s.length ? s[s.length - 1] : undefined;
  }

  /** Which of the comma-separated classes the latest fill of any of them belongs to. */
  latestFillClass(keys: string): string | undefined {
    const latest = this.latestSupply(keys);
    if (!latest) return undefined;
    return keys
      .split(',')
      .map((k) => k.trim())
      .find((k) => this.matcher(k).matches(latest.medication));
  }

  /** The prescriber (`Practitioner/id`, ...) of the prescription behind the latest fill of a class in the period. */
  prescriberOf(key: string): string | undefined {
    const latest = this.latestSupply(key);
    if (!latest) return undefined;
    const resource = this.index.get(latest.reference) as MedicationDispense | MedicationRequest | undefined;
    const request =
      resource?.resourceType === 'MedicationRequest'
        ? resource
        : (this.index.get(referenceKey(resource?.authorizingPrescription?.[0]?.reference) ?? '') as
            MedicationRequest | undefined);
    return referenceKey(request?.requester?.reference);
  }

  /** Whole years of age on the review date; undefined without a birth date. */
  ageInYears(): number | undefined {
    const birth = this.patient.birthDate;
    if (!birth || birth.length < 10) return undefined;
    const date = this.date;
    const years = Number(date.slice(0, 4)) - Number(birth.slice(0, 4));
    return date.slice(5, 10) < birth.slice(5, 10) ? years - 1 : years;
  }

  /** Shifted supplies of a class, from every fill up to the review date (later fills have not happened yet). */
  supplies(key: string): ShiftedSupply[] {
    let s = this.suppliesCache.get(key);
    if (!s) {
      const all = suppliesOf({
        dispenses: this.dispenses,
        prescriptions: this.requests,
        index: this.index,
        cls: this.matcher(key),
        usePrescriptions: this.config.usePrescriptions,
      });
      s = shiftSupplies(all.filter((x) => x.fillDay <= this.dateDay));
      this.suppliesCache.set(key, s);
    }
    return s;
  }

  pdc(key: string): PdcResult {
    let p = this.pdcCache.get(key);
    if (!p) {
      p = pdcFromSupplies(
        key,
        this.supplies(key),
        { start: this.periodStart, end: this.periodEnd },
        this.config.pdcThreshold ?? PDC_THRESHOLD,
      );
      this.pdcCache.set(key, p);
    }
    return p;
  }

  lastCoveredDay(key: string): string | undefined {
    const s = this.supplies(key);
    return s.length ? fromDay(Math.max(...s.map((x) => x.endDay))) : undefined;
  }

  /** Days covered in the `days` days ending on the review date, or in the review period when days is undefined. */
  coveredDays(key: string, days?: number): number {
    const from = days === undefined ? this.periodStartDay : this.dateDay - days + 1;
    const to = days === undefined ? this.periodEndDay : this.dateDay;
    return countCoveredDays(this.supplies(key), from, to);
  }

  activeRequests(key?: string): MedicationRequest[] {
    return this.requests.filter((r) => {
      if (r.status !== 'active') return false;
      const authored = toDay(r.authoredOn);
      if (authored !== undefined && authored > this.dateDay) return false;
      const validEnd = toDay(r.dispenseRequest?.validityPeriod?.end);
      if (validEnd !== undefined && validEnd < this.dateDay) return false;
      return key === undefined || this.inClass(r, key);
    });
  }

  activeStatements(key?: string): MedicationStatement[] {
    return this.statements.filter((s) => {
      if (s.status !== 'active') return false;
      const start = toDay(s.effectivePeriod?.start ?? s.effectiveDateTime);
      const end = toDay(s.effectivePeriod?.end);
      if (start !== undefined && start > this.dateDay) return false;
      if (end !== undefined && end < this.dateDay) return false;
      if (s.effectiveDateTime && start !== undefined && this.dateDay - start > ACTIVE_STATEMENT_RECENT_DAYS)
        return false;
      return key === undefined || this.inClass(s, key);
    });
  }

  /** A class is active when it has an active prescription, a supply covering the review date or an active statement. */
  isActive(key: string): boolean {
    let a = this.activeCache.get(key);
    if (a === undefined) {
      a =
        this.activeRequests(key).length > 0 ||
        isCoveredOn(this.supplies(key), this.dateDay) ||
        this.activeStatements(key).length > 0;
      this.activeCache.set(key, a);
    }
    return a;
  }

  /** References to what makes a class active (prescriptions, covering dispenses, statements). */
  activeEvidence(key: string): string[] {
    const refs = [
      ...this.activeRequests(key).map((r) => `MedicationRequest/${r.id}`),
      ...this.supplies(key)
        .filter((s) => s.startDay <= this.dateDay && this.dateDay <= s.endDay)
        .map((s) => s.reference),
      ...this.activeStatements(key).map((s) => `MedicationStatement/${s.id}`),
    ];
    return [...new Set(refs)];
  }

  /** The most recent supplies of a class (up to `count`) and its active prescriptions. */
  fillEvidence(key: string, count = 3): string[] {
    const recent = this.supplies(key)
      .slice(-count)
      .map((s) => s.reference);
    return [...new Set([...recent, ...this.activeRequests(key).map((r) => `MedicationRequest/${r.id}`)])];
  }

  adherenceClasses(): MedicationClass[] {
    return this.classes.classes().filter((c) => c.adherence);
  }

  /** Adherence-tracked classes with at least one fill in the review period. */
  filledClasses(): string[] {
    return this.adherenceClasses()
      .filter((c) => this.pdc(c.key).fillCount > 0)
      .map((c) => c.key);
  }

  /** Adherence-tracked classes active on the review date. */
  activeClasses(): string[] {
    return this.adherenceClasses()
      .filter((c) => this.isActive(c.key))
      .map((c) => c.key);
  }

  graceDays(key: string): number {
    return (
      this.config.refillGraceDays?.[key] ??
      this.classes.getClass(key)?.refillGraceDays ??
      this.config.defaultRefillGraceDays ??
      7
    );
  }

  followUpWindow(key: string): number | undefined {
    return this.config.followUpWindowDays?.[key] ?? this.classes.getClass(key)?.followUpWindowDays;
  }

  /** New starts (no fill of the class in the previous 120 days) dated in the review period, up to the review date. */
  newStarts(): NewStart[] {
    const lookback = this.config.newStartLookbackDays ?? 120;
    const starts: NewStart[] = [];
    for (const cls of this.classes.classes()) {
      const window = this.followUpWindow(cls.key);
      if (window === undefined) continue;
      const supplies = this.supplies(cls.key);
      for (const s of supplies) {
        if (s.fillDay < this.periodStartDay || s.fillDay > this.dateDay) continue;
        const earlier = supplies.some((o) => o !== s && o.fillDay < s.fillDay && o.fillDay >= s.fillDay - lookback);
        const sameDayEarlier = supplies.some((o) => o !== s && o.fillDay === s.fillDay && o.reference < s.reference);
        if (earlier || sameDayEarlier) continue;
        starts.push({
          classKey: cls.key,
          classTitle: cls.title,
          start: fromDay(s.fillDay),
          windowDays: window,
          windowEnd: fromDay(s.fillDay + window),
          reference: s.reference,
        });
      }
    }
    return starts;
  }

  /** True when the patient has OUD: an active (or status-less) Condition coded in the CDC OUD value set. */
  hasOud(): boolean {
    return this.resources.some(
      (r) =>
        r.resourceType === 'Condition' &&
        this.inValueSet(OUD_VALUE_SET, (r as Condition).code) &&
        !['inactive', 'resolved', 'remission'].includes((r as Condition).clinicalStatus?.coding?.[0]?.code ?? ''),
    );
  }

  inValueSet(url: string, concept: CodeableConcept | Coding | undefined): boolean {
    if (!concept || !this.classes.getValueSet(url)) return false;
    const codings = 'coding' in concept ? (concept.coding ?? []) : [concept as Coding];
    return this.classes.containsAny(url, codings);
  }

  /** Buprenorphine or methadone prescribed for opioid use disorder: left out of MME (CDC). */
  private isOudTreatment(r: MedicationRequest): boolean {
    if (this.inClass(r, 'buprenorphine')) return true;
    if (!this.inClass(r, 'methadone')) return false;
    return (r.reasonCode ?? []).some((c) => this.inValueSet(OUD_VALUE_SET, c)) || this.hasOud();
  }

  mme(): { total: number; lines: { reference: string; lines: MmeLine[] }[] } {
    if (!this.mmeCache) {
      const lines = this.activeRequests('opioid-analgesics')
        .filter((r) => !this.isOudTreatment(r))
        .map((r) => ({ reference: `MedicationRequest/${r.id}`, lines: mmeOfRequest(r, this.medication(r)) }))
        .filter((l) => l.lines.length > 0);
      this.mmeCache = { total: totalMme(lines.flatMap((l) => l.lines)), lines };
    }
    return this.mmeCache;
  }

  /** A not-taken statement is about an active medication: same drug as an active prescription, or in an active class. */
  isActiveMedication(resource: MedicationBearing): boolean {
    const key = this.medication(resource).drugKey;
    if (this.activeRequests().some((r) => this.medication(r).drugKey === key)) return true;
    return this.classes.classes().some((c) => this.inClass(resource, c.key) && this.isActive(c.key));
  }
}

/** The clinically relevant day of a resource, as a FHIR date. */
export function clinicalDate(resource: Record<string, unknown>): string | undefined {
  const r = resource as {
    resourceType?: string;
    effectiveDateTime?: string;
    effectivePeriod?: { start?: string; end?: string };
    effectiveInstant?: string;
    issued?: string;
    dateAsserted?: string;
    whenHandedOver?: string;
    whenPrepared?: string;
    authoredOn?: string;
    period?: { start?: string; end?: string };
    occurrenceDateTime?: string;
    start?: string;
  };
  const value =
    r.effectiveDateTime ??
    r.effectivePeriod?.end ??
    r.effectivePeriod?.start ??
    r.effectiveInstant ??
    r.whenHandedOver ??
    r.whenPrepared ??
    r.period?.start ??
    r.occurrenceDateTime ??
    r.start ??
    r.issued ??
    r.dateAsserted ??
    r.authoredOn;
  return value?.slice(0, 10);
}

/** When a CarePlan activity is due: the end of its scheduled period, its last timing event or the bounds end. */
export function scheduledEnd(detail: CarePlanActivityDetail): string | undefined {
  const value =
    detail.scheduledPeriod?.end ??
    detail.scheduledPeriod?.start ??
    detail.scheduledTiming?.event?.slice().sort().pop() ??
    detail.scheduledTiming?.repeat?.boundsPeriod?.end;
  return value?.slice(0, 10);
}
