export * from "./common.js";
