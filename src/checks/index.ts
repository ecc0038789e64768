/**
 * Adherence and follow-up checks: the database-free engine behind Patient/[id]/$medication-review.
 * The caller loads the patient's compartment (plus referenced Medications) and passes it in.
 */
export {
  ATC,
  MEDICATION_CLASS_EXTENSION,
  MEDICATION_CLASS_SYSTEM,
  classOptionsOf,
  RXNORM,
  type ClassOptions,
  type MedicationClass,
  MedicationClassRegistry,
  loadMedicationClasses,
} from './classes';
export { NDC, ndcProductKey } from './ndc';
export { PDC_THRESHOLD, type PdcOptions, type PdcResult, type Period, computePdc } from './pdc';
export type { ClassMatcher, ShiftedSupply, Supply } from './supplies';
export {
  CHECKS_SYSTEM,
  CHECK_FOR_EACH,
  CHECK_PARAMETER,
  CheckDefinitionError,
  CheckRegistry,
  type CompiledCheck,
  loadChecks,
} from './check-registry';
export { type ReviewConfig, OUD_VALUE_SET } from './context';
export { mmeOfRequest, type MmeLine } from './mme';
export {
  CheckEvaluationError,
  DEFAULT_PERIOD_DAYS,
  type ReviewInput,
  ReviewInputError,
  defaultPeriod,
  reviewAdherence,
  reviewFindings,
  reviewPatient,
  type SubjectFinding,
} from './review';
export { isIsoDate } from './dates';
