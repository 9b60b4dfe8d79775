/**
 * The quick-start demo: a virtio-style block device reads a request, takes an IOTLB miss answered
 * over a real socket, fills a scattered buffer from a file, is refused a write and loses a slice,
 * all on real memory; it prints each step and draws the address space. `--help` explains it.
 *
 * Run with `deno task demo` (or `npx -y deno@2 task demo`).
 * @module
 */

import { DemoUsageError, HELP, parseDemoArgs } from "./demo/options.ts";
import { runDemo } from "./demo/scenario.ts";

async function main(args: string[]): Promise<number> {
  let options;
  try {
    options = parseDemoArgs(args);
  } catch (e) {
    if (!(e instanceof DemoUsageError)) throw e;
    console.error(`demo: ${e.message}`);
    return 2;
  }
  if (options.help) {
    console.log(HELP);
    return 0;
  }
  try {
    await runDemo(options);
    return 0;
  } catch (e) {
    const message = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    console.error(`demo failed: ${message.split("\n")[0]}`);
    return 1;
  }
}

Deno.exit(await main(Deno.args));
