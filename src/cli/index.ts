// The client commands of the tapvip CLI, talking to a tapvip (or Kubernetes) API over HTTP.
export { applyMain, APPLY_USAGE } from "./apply.js";
export { getMain, GET_USAGE } from "./get.js";
export { deleteMain, DELETE_USAGE } from "./delete.js";
export { describeMain, DESCRIBE_USAGE } from "./describe.js";
export { DEFAULT_SERVER, type Io } from "./common.js";
