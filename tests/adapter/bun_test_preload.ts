/**
 * `bun test` preload: installs the `Deno` shim and maps `Deno.test` (all three call forms,
 * `ignore`, `only`, and `t.step`) onto `bun:test`, so test files written for `deno test` run
 * unchanged. Deno sets no per-test timeout; each test gets ten minutes here instead of Bun's five
 * seconds. Used by `deno task test:bun`.
 * @module
 */

import { installDenoShim } from "./deno_shim.ts";
import { registerNpmImports } from "./npm_imports.ts";

type TestFn = (t: TestContext) => unknown;

/** The part of Deno's `TestContext` the tests use. */
interface TestContext {
  name: string;
  origin: string;
  step(nameOrDef: string | StepDefinition | TestFn, fn?: TestFn): Promise<boolean>;
}

interface StepDefinition {
  name?: string;
  fn: TestFn;
  ignore?: boolean;
}

interface TestDefinition extends StepDefinition {
  only?: boolean;
}

interface BunTest {
  (name: string, fn: () => unknown, timeoutMs?: number): void;
  skip(name: string, fn: () => unknown): void;
  only(name: string, fn: () => unknown, timeoutMs?: number): void;
}

const TIMEOUT_MS = 10 * 60 * 1000;

/**
 * Tests that check something only Deno has, skipped on Bun with the reason printed. Matched by
 * name, so test files stay free of runtime checks.
 */
const DENO_ONLY: readonly { name: RegExp; reason: string }[] = [
  { name: /--allow-all/, reason: "it checks Deno's permission flags; Bun has no permission model" },
  { name: /deno task/, reason: "it runs Deno's task runner (deno.json tasks), which has no Bun equivalent" },
];

/** Deno's three call forms as one definition. */
function definition(a: string | TestDefinition | TestFn, b?: Partial<TestDefinition> | TestFn, c?: TestFn) {
  if (typeof a === "function") return { name: a.name, fn: a };
  if (typeof a === "object") return { ...a, name: a.name ?? a.fn.name };
  if (typeof b === "function") return { name: a, fn: b };
  return { ...b, name: a, fn: c as TestFn };
}

function context(name: string): TestContext {
  return {
    name,
    origin: "bun",
    async step(nameOrDef, fn) {
      const def = definition(nameOrDef, fn);
      if (def.ignore) return false;
      await def.fn(context(def.name));
      return true;
    },
  };
}

interface BunTestModule {
  test: BunTest;
  mock: { module(specifier: string, factory: () => unknown): void };
}

const spec = "bun:test"; // not a literal: `deno check` must not try to resolve Bun's module
const { test, mock } = await import(spec) as BunTestModule;
const deno = installDenoShim();
const meta = import.meta as ImportMeta & { require: (id: string) => unknown };
for (const [name, file] of registerNpmImports()) mock.module(name, () => meta.require(file));
deno.test = (...args: [string | TestDefinition | TestFn, (Partial<TestDefinition> | TestFn)?, TestFn?]) => {
  const def = definition(...args);
  const run = () => def.fn(context(def.name));
  const denoOnly = DENO_ONLY.find((d) => d.name.test(def.name));
  if (denoOnly !== undefined) console.log(`skipped on Bun: "${def.name}": ${denoOnly.reason}`);
  if (def.ignore || denoOnly !== undefined) test.skip(def.name, run);
  else if ((def as TestDefinition).only) test.only(def.name, run, TIMEOUT_MS);
  else test(def.name, run, TIMEOUT_MS);
};
