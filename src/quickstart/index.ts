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
export { runQuickstart, type QuickstartOptions, type QuickstartRun } from "./pipeline.js";
export {
  quickstartPaths,
  QUICKSTART_STAGES,
  QUICKSTART_SYSTEMS,
  QUICKSTART_SYSTEM_SPECS,
  SYSTEM_INFO as QUICKSTART_SYSTEM_INFO,
  type QuickstartState,
  type QuickstartStage,
  type QuickstartSystem,
  type QuickstartSystemSpec,
  type StageRecord,
} from "./layout.js";
export { quickstartPrompts, type QuickstartPrompts } from "./data.js";
export { readQuickstartResults, type QuickstartResults, type SystemResult } from "./results.js";
export { renderReportHtml as renderQuickstartReport, lineChartSvg } from "./report.js";
