import type { RegisterCommands } from "../groups.js";

/** Placeholder: this command group is not implemented yet. */
export const register: RegisterCommands = () => {};
