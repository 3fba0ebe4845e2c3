// Debug-build bounds checks: the pipeline records the current frame's extent, and central
// read/write helpers assert that every access stays inside it. `assert` compiles away in the
// release build (asconfig noAssert), so these cost nothing there; in the debug build a bad
// access traps, which the fuzz tests would report.

export let frameLo: usize = 0;
export let frameHi: usize = 0;

export function setFrame(lo: usize, hi: usize): void {
  frameLo = lo;
  frameHi = hi;
}

// @ts-ignore: decorator
@inline export function inFrame(p: usize, n: u32): void {
  assert(p >= frameLo && p + n <= frameHi, "access outside the frame");
}
