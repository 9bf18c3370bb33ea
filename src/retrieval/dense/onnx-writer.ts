// The ONNX writer lives in util/ (the model's native engine uses it too).
export * from "../../util/onnx-writer.js";
