/**
 * The worker behind `bun_epoll_waiter.ts`: makes the blocking `epoll_wait` it is asked for and
 * posts the events back. Runs on Bun only.
 * @module
 */

import { loadBunBinding } from "./bun_binding.ts";
import type { EpollWaitAnswer, EpollWaitRequest } from "./bun_epoll_waiter.ts";

const binding = loadBunBinding();
const scope = globalThis as unknown as {
  onmessage: ((event: MessageEvent<EpollWaitRequest>) => void) | null;
  postMessage(message: EpollWaitAnswer): void;
};

scope.onmessage = (event) => {
  const { epfd, max, timeoutMs } = event.data;
  const events = new Int32Array(2 * Math.max(1, Math.min(max, 64)));
  const n = binding.epollWait(epfd, events, timeoutMs);
  scope.postMessage({ n, events });
};
