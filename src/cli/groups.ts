import type { Command } from "commander";

/** Parent commands shared by several command files (`searchrl serve ...`, `searchrl data ...`). */
export interface CommandGroups {
  serve: Command;
  data: Command;
  corpus: Command;
  index: Command;
  model: Command;
}

export type RegisterCommands = (program: Command, groups: CommandGroups) => void;
