/**
 * The leak judge of `fixtures/growth.ts` on figures made up to the rule: a leak at the smallest
 * rate it must catch is reported, and what a runtime does on its own (growth once, in one half;
 * drift of a quarter of that rate through both halves; growth in A and B alike) is not.
 * @module
 */

import assert from "node:assert/strict";
import { type Growth, leaks } from "./fixtures/growth.ts";

const N = 60_000;
const RATE = 128; // bytes a round: the smallest leak the revocation churn must catch

function growth(a: number, b1: number, b2: number): Growth {
  return { n: N, a: { heapBytes: a }, b1: { heapBytes: b1 }, b2: { heapBytes: b2 } };
}

Deno.test("growth: a leak at the smallest rate, or above it, is reported with its figures", () => {
  const [a, half] = [RATE * N, 2 * RATE * N];
  assert.deepEqual(leaks(growth(a, half, half), { heapBytes: RATE }), [
    `heapBytes grew by ${a} over ${N} rounds, then by ${half} and ${half} over ${2 * N} each ` +
    `(limits ${2 * a + RATE * N} in all, ${RATE * N} each): it grows with the work`,
  ]);
  assert.equal(leaks(growth(4 * a, 4 * half, 4 * half), { heapBytes: RATE }).length, 1);
  // A leak whose batch A was hidden by a collection of the warm-up's garbage is still seen.
  assert.equal(leaks(growth(-34_000_000, half, half), { heapBytes: RATE }).length, 1);
});

Deno.test("growth: growth once, drift of a quarter of the rate, and growth in A and B alike are not leaks", () => {
  const none = (a: number, b1: number, b2: number) =>
    assert.deepEqual(leaks(growth(a, b1, b2), { heapBytes: RATE }), []);
  none(0, 14_000_000, -13_000_000); // a heap that swings between collections
  none(0, 9_000_000, 0); // grown once, in one half
  none(-34_646_253, 3_946_970, 4_007_389); // seen on Bun: ~33 bytes a round through both halves
  none(8_000_000, 8_000_000, 8_000_000); // the same growth in A and in each half: not with the work
});
