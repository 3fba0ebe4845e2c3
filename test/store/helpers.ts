// Shared builders for the store tests.
import { expect } from "vitest";
import { defaultService } from "../../src/store/defaults.js";
import type { FieldError } from "../../src/store/validation.js";
import { validateService } from "../../src/store/validation.js";
import type { Service, ServiceSpec } from "../../src/store/types.js";

export function svc(spec: ServiceSpec, name = "x", extra: Partial<Service["metadata"]> = {}): Service {
  return { apiVersion: "v1", kind: "Service", metadata: { name, namespace: "default", ...extra }, spec };
}

/** Defaults then validates, as the API does. */
export function check(spec: ServiceSpec, name = "x"): FieldError[] {
  return validateService(defaultService(svc(spec, name)));
}

export function expectError(errs: FieldError[], field: string, fragment: string, type?: FieldError["type"]): void {
  const hit = errs.find((e) => e.field === field && e.message.includes(fragment) && (!type || e.type === type));
  expect(hit, `expected ${field} ~ ${JSON.stringify(fragment)} in:\n${errs.map((e) => e.message).join("\n")}`).toBeDefined();
}

export function expectNoError(errs: FieldError[], field?: string): void {
  const bad = field ? errs.filter((e) => e.field === field) : errs;
  expect(bad.map((e) => e.message)).toEqual([]);
}

export const P80 = [{ port: 80 }];
