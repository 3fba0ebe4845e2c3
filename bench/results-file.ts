// bench/RESULTS.md is shared by several benchmark commands (dataplane microbenchmarks, DNS,
// side by side with the kernel). Each owns one section, delimited by HTML comment markers, and
// rewrites only its own; the other sections are kept as they are. A section missing from the
// file is appended at the end, in the order the commands first ran.
//
//   <!-- section:dns begin -->
//   ...markdown written by bench/dns.ts...
//   <!-- section:dns end -->

import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

/** The repository's bench/ folder, whether this runs as bench/*.ts or dist/bench/*.js. */
export function benchDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  return here.endsWith("/dist/bench") ? join(here, "../../bench") : here;
}

export const RESULTS_FILE = join(benchDir(), "RESULTS.md");

const HEADER =
  "# tapvip benchmark results\n\n" +
  "Each section below is written by one benchmark command, named in the section, and only that command rewrites it.\n";

const begin = (name: string) => `<!-- section:${name} begin -->`;
const end = (name: string) => `<!-- section:${name} end -->`;

/** Replaces (or appends) section `name` of `text` with `markdown`. Pure, for tests. */
export function replaceSection(text: string, name: string, markdown: string): string {
  if (!/^[a-z0-9-]+$/.test(name)) throw new Error(`section name ${JSON.stringify(name)}: use [a-z0-9-]`);
  const block = `${begin(name)}\n${markdown.trimEnd()}\n${end(name)}`;
  const b = text.indexOf(begin(name));
  const e = text.indexOf(end(name));
  if (b >= 0 && e > b) return text.slice(0, b) + block + text.slice(e + end(name).length);
  if (b >= 0 || e >= 0) throw new Error(`bench/RESULTS.md: section ${name} has only one of its markers; fix the file by hand`);
  const base = text.trim() === "" ? HEADER : text.trimEnd() + "\n";
  return `${base}\n${block}\n`;
}

/** Writes section `name` of bench/RESULTS.md (or of `file`), keeping every other section. */
export function writeSection(name: string, markdown: string, file = RESULTS_FILE): void {
  const old = existsSync(file) ? readFileSync(file, "utf8") : "";
  // A file from before sections existed is one unmarked report: start afresh.
  const text = old.includes("<!-- section:") ? old : "";
  writeFileSync(file, replaceSection(text, name, markdown));
}
