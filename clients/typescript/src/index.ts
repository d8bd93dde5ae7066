// @imageeditor/client: the client (client.ts), typed errors (errors.ts) and the generated
// messages and enums (gen/, made by `npm run generate`; never edited by hand).
export {
  type BatchRequest,
  type ClientOptions,
  ImageEditorClient,
  isTerminal,
  type ListRequest,
  type SubmitRequest,
} from "./client.js";
export { create } from "@bufbuild/protobuf";
export { Code, codeName, type FieldViolation, ImageEditorError } from "./errors.js";
export * from "./gen/imageeditor/v1/image_editor_service_pb.js";
export * from "./gen/imageeditor/v1/operations_pb.js";
export * from "./gen/imageeditor/v1/task_pb.js";
export * from "./gen/imageeditor/v1/callback_pb.js";
