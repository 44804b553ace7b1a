/**
 * @packageDocumentation
 * @iommufd-sim/cli: the `iommufd-sim` program, and the pieces it is made of
 * for programs that want them: read and validate a scenario, run it on the
 * model with every call traced, format the report, the strace-like trace and
 * the explanations, replay a trace, and draw the IOVA space.
 */

export { EXIT } from './cli/help.js';
export { type CliIo, main, processIo } from './cli/main.js';
export { type ExplainedFailure, explainFailures, formatExplanation } from './report/explain.js';
export { runReportJson } from './report/json.js';
export { formatRunReport } from './report/text.js';
export type { SnapshotRecord, StepResult, WalkRecord } from './run/records.js';
export { type RunOptions, type RunResult, runScenario } from './run/runner.js';
export { type FieldSpec, STEPS, type StepSpec } from './scenario/catalog.js';
export { type ParseOptions, type Problem, parseScenario, ScenarioError } from './scenario/parse.js';
export { formatStepReference, scenarioJsonSchema } from './scenario/reference.js';
export {
  DEFAULT_SCENARIO,
  defaultHost,
  loadScenario,
  SCENARIO_DIR,
  shippedScenarioNames,
  shippedScenarioPath,
} from './scenario/shipped.js';
export type { Scenario, Step } from './scenario/types.js';
export { iovaSvg } from './svg/iova-svg.js';
export { type Picture, runPictures } from './svg/pictures.js';
export { type Trace, type TraceEvent, type TraceHeader, traceToJsonl } from './trace/events.js';
export { formatTraceText } from './trace/format.js';
export {
  parseTraceJsonl,
  type ReplayDifference,
  type ReplayResult,
  replayTrace,
  TraceFileError,
} from './trace/replay.js';
