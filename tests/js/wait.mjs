// Waiting in the JS tests: for an event, or for a condition. The deadlines only stop a broken
// test hanging; nothing is timed.

/** The next `event` from `emitter` matching `pred`. */
export function next(emitter, event, pred = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${event}`)), 20000);
    const handler = (payload) => {
      if (!pred(payload)) return;
      clearTimeout(timer);
      emitter.off(event, handler);
      resolve(payload);
    };
    emitter.on(event, handler);
  });
}

/** Waits until `check()` resolves truthy. */
export async function eventually(check, what) {
  const deadline = Date.now() + 20000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`never: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}
