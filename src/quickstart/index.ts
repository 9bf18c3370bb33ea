// Public API of src/quickstart (re-exported by src/index.ts).
export {
  QUICKSTART_PRESETS,
  QUICKSTART_PRESET_NAMES,
  QuickstartConfigSchema,
  quickstartConfig,
  parseQuickstartConfig,
  mergeQuickstartConfig,
  type QuickstartConfig,
  type QuickstartConfigInput,
  type QuickstartRlStage,
} from "./presets.js";
export {
  runQuickstart,
  quickstartPaths,
  QUICKSTART_STAGES,
  QUICKSTART_SYSTEMS,
  type QuickstartOptions,
  type QuickstartRun,
  type QuickstartState,
  type QuickstartStage,
  type QuickstartSystem,
  type StageRecord,
} from "./pipeline.js";
export { quickstartPrompts, type QuickstartPrompts } from "./data.js";
export {
  readQuickstartResults,
  SYSTEM_INFO as QUICKSTART_SYSTEM_INFO,
  type QuickstartResults,
  type SystemResult,
} from "./results.js";
export { renderReportHtml as renderQuickstartReport, lineChartSvg } from "./report.js";
